"""QA and captioning tested on two CPU processes (tools/dist_test.sh, gloo) equal one process.

Five test samples on two ranks: the distributed sampler pads rank 1 with a duplicate of sample 0.
The gathered predictions must be the five samples once each, in dataset order, and the metric must
count five samples: the QA answers are set so that the accuracy over the five samples (2/5 = 40%)
differs from the accuracy with the duplicate counted (3/6 = 50%).

The model is a random tiny mPLUG-2 (any fixed weights show whether gathering is exact); its
single-process predictions, computed here first, decide which test answers are right.
"""
import json
import os
import pickle
import re
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import DumpResults
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import mplug2  # noqa: F401  compatibility layer first
from mplug2.datasets.moving_shapes import generate_moving_shapes
from mplug2.evaluation import VideoQAAccuracy, java_available
from mplug2.registry import DATASETS, MODELS
from tests.conftest import TINY_VOCAB, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, 'configs', 'demo', 'mplug2-tiny_moving-shapes_{}.py')
METRIC = re.compile(r'(videoqa|caption)/(\w+): ([-0-9.]+)')
NUM_SAMPLES = 5
RIGHT = (0, 3)  # the samples answered right; 0 is also the one the sampler pads rank 1 with
JAVA_MISSING = java_available()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _write_jsonl(path, records):
    path.write_text(''.join(json.dumps(record) + '\n' for record in records))


def _config(root, task, ann_file, evaluator=None):
    vocab = str(root / 'vocab.txt')
    arch = dict(arch=dict(vocab_size=len(TINY_VOCAB)))
    modules = ('universal_layers', 'text_decoder') + (('text_encoder', 'fusion') if task == 'videoqa' else ())
    lines = [f'_base_ = [{DEMO.format(task)!r}]',
             f'model = dict(tokenizer=dict(vocab_file={vocab!r}, vocab_size={len(TINY_VOCAB)}), '
             + ', '.join(f'{module}={arch!r}' for module in modules) + ')',
             'test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,',
             f'                       dataset=dict(data_root={str(root / "data")!r}, ann_file={ann_file!r}))']
    if evaluator is not None:
        lines.append(f'test_evaluator = {evaluator!r}')
    path = root / f'{task}.py'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def _predict_in_process(config, checkpoint):
    """Predictions of the whole test set in one batch (the reference the ranks must match)."""
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mplug2'):
        model = MODELS.build(cfg.model)
        model.load_state_dict(torch.load(checkpoint, weights_only=True)['state_dict'])
        model.eval()
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        samples = [dataset[index] for index in range(len(dataset))]
        with torch.no_grad():
            return model.test_step(pseudo_collate(samples))


def _single_process(config, checkpoint, work_dir):
    """tools/test.py's evaluation in this process: the metrics and the dumped predictions."""
    cfg = Config.fromfile(config)
    cfg.work_dir = str(work_dir)
    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    out = os.path.join(str(work_dir), 'single.pkl')
    runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
    metrics = runner.test()
    with open(out, 'rb') as f:
        return metrics, pickle.load(f)


def _two_processes(config, checkpoint, work_dir):
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHON'] = sys.executable
    env['PORT'] = str(_free_port())
    env.pop('CUDA_VISIBLE_DEVICES', None)
    out = os.path.join(str(work_dir), 'double.pkl')
    result = subprocess.run(['bash', 'tools/dist_test.sh', config, checkpoint, '2',
                             '--work-dir', str(work_dir), '--out', out],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    metrics = {f'{prefix}/{name}': float(value) for prefix, name, value in METRIC.findall(output)}
    assert metrics, output[-4000:]
    with open(out, 'rb') as f:
        return metrics, pickle.load(f), output


def _setup_task(root, task, ann_name, rewrite, evaluator=None):
    """Random checkpoint, its in-process predictions, annotations rewritten from them; then the
    single-process and the two-process evaluations."""
    config = _config(root, task, f'annotations/{ann_name}', evaluator)
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mplug2'):
        model = MODELS.build(cfg.model)
    checkpoint = str(root / f'{task}.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    predictions = _predict_in_process(config, checkpoint)
    rewrite(predictions)
    single, single_out = _single_process(config, checkpoint, root / f'{task}_single')
    double, double_out, log = _two_processes(config, checkpoint, root / f'{task}_double')
    return dict(predictions=predictions, single=single, single_out=single_out, double=double,
                double_out=double_out, log=log)


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist_eval')
    generate_moving_shapes(str(root / 'data'), num_train=2, num_test=NUM_SAMPLES, num_frames=4,
                           size=32, seed=1)
    write_vocab(root / 'vocab.txt')
    return root


@pytest.fixture(scope='module')
def qa_runs(shapes):
    ann_dir = shapes / 'data' / 'annotations'
    with open(ann_dir / 'qa_test.jsonl') as f:
        records = [json.loads(line) for line in f][:NUM_SAMPLES]  # 5 questions of 2 videos
    _write_jsonl(ann_dir / 'qa_test5.jsonl', records)

    def rewrite(predictions):
        for index, (record, sample) in enumerate(zip(records, predictions)):
            record['answer'] = sample.pred_answer if index in RIGHT else sample.pred_answer + ' wrong'
        _write_jsonl(ann_dir / 'qa_test5.jsonl', records)

    return _setup_task(shapes, 'videoqa', 'qa_test5.jsonl', rewrite)


@pytest.fixture(scope='module')
def caption_runs(shapes):
    ann_dir = shapes / 'data' / 'annotations'
    with open(ann_dir / 'caption_test.jsonl') as f:
        records = [json.loads(line) for line in f]
    assert len(records) == NUM_SAMPLES  # one test sample per video

    def rewrite(predictions):
        for index, (record, sample) in enumerate(zip(records, predictions)):
            assert sample.pred_caption.strip(), 'an empty caption cannot be a reference'
            if index in RIGHT:
                record['golden_captions'] = [sample.pred_caption, record['golden_captions'][0]]
        _write_jsonl(ann_dir / 'caption_test.jsonl', records)

    # No METEOR: its Java start-up costs seconds and adds nothing to what is tested here.
    evaluator = dict(type='CaptionMetric', scorers=['BLEU', 'ROUGE_L', 'CIDEr'])
    return _setup_task(shapes, 'videocaption', 'caption_test.jsonl', rewrite, evaluator)


def _check_gathered(runs, pred_key):
    # the run really had two ranks, and each saw 3 samples (rank 1: samples 1, 3 and the pad, 0)
    assert 'Distributed training: True' in runs['log'], runs['log'][-3000:]
    assert re.search(r'Epoch\(test\) \[2/2\]', runs['log']), runs['log'][-3000:]
    reference = [sample.get(pred_key) for sample in runs['predictions']]
    assert len(reference) == NUM_SAMPLES
    for dumped in (runs['single_out'], runs['double_out']):
        assert len(dumped) == NUM_SAMPLES  # the padded duplicate is dropped
        assert [sample['sample_idx'] for sample in dumped] == list(range(NUM_SAMPLES))
        assert [sample[pred_key] for sample in dumped] == reference


def test_qa_two_processes_gather_five_answers(qa_runs):
    _check_gathered(qa_runs, 'pred_answer')


def test_qa_metric_counts_five_samples_like_one_process(qa_runs):
    single, double = qa_runs['single'], qa_runs['double']
    assert single['videoqa/acc'] == pytest.approx(100 * len(RIGHT) / NUM_SAMPLES)  # 40, not 3/6
    assert double == pytest.approx(single, abs=1e-4)
    assert set(double) >= {'videoqa/acc', 'videoqa/acc_color', 'videoqa/acc_shape',
                           'videoqa/acc_direction'}
    # what the metric would say with the padded duplicate of sample 0 counted: a different value
    metric = VideoQAAccuracy()
    samples = [dict(sample) for sample in qa_runs['double_out']]
    metric.process(None, samples + samples[:1])
    assert metric.compute_metrics(metric.results)['acc'] == pytest.approx(50.0)


@pytest.mark.skipif(JAVA_MISSING is not None, reason=f'Java is needed: {JAVA_MISSING}')
def test_caption_two_processes_gather_five_captions(caption_runs):
    _check_gathered(caption_runs, 'pred_caption')


@pytest.mark.skipif(JAVA_MISSING is not None, reason=f'Java is needed: {JAVA_MISSING}')
def test_caption_metric_like_one_process(caption_runs):
    single, double = caption_runs['single'], caption_runs['double']
    assert set(single) == {'caption/BLEU_1', 'caption/BLEU_2', 'caption/BLEU_3', 'caption/BLEU_4',
                           'caption/ROUGE_L', 'caption/CIDEr'}
    assert 0 < single['caption/CIDEr'] and 0 < single['caption/BLEU_1'] < 100
    assert double == pytest.approx(single, abs=1e-4)
