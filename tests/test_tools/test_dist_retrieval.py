"""Retrieval testing on two CPU processes (dist_test.sh, gloo) equals one process.

Each rank keeps the visual tokens of its own videos and re-scores only their candidate pairs
(the partial scores are summed over the ranks), and an odd number of videos makes the
distributed sampler pad rank 1 with a duplicate that must be counted once.
"""
import os
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mplug2.datasets.moving_shapes import generate_moving_shapes
from mplug2.registry import MODELS
from tests.conftest import TINY_VOCAB, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, 'configs', 'demo', 'mplug2-tiny_moving-shapes_videoretrieval.py')
METRIC = re.compile(r'retrieval/(\w+): ([-0-9.]+)')


def _run(args, port=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHON'] = sys.executable
    env.pop('CUDA_VISIBLE_DEVICES', None)
    if port is not None:
        env['PORT'] = str(port)
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    metrics = dict(METRIC.findall(output))
    assert metrics, output[-4000:]
    return {key: float(value) for key, value in metrics.items()}


@pytest.fixture(scope='module')
def retrieval_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist_retrieval')
    generate_moving_shapes(str(root / 'data'), num_train=2, num_test=5, num_frames=4, size=32,
                           seed=2)
    vocab = write_vocab(root / 'vocab.txt')
    config = root / 'config.py'
    vocab_size = dict(arch=dict(vocab_size=len(TINY_VOCAB)))
    config.write_text(
        f"_base_ = [{DEMO!r}]\n"
        f"model = dict(k_test=3, tokenizer=dict(vocab_file={vocab!r}, vocab_size={len(TINY_VOCAB)}),\n"
        f"             universal_layers={vocab_size!r}, text_encoder={vocab_size!r},\n"
        f"             fusion={vocab_size!r})\n"
        f"test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,\n"
        f"                       dataset=dict(data_root={str(root / 'data')!r}))\n")
    cfg = Config.fromfile(str(config))
    # A random tiny retriever: any fixed weights show whether the sharded ranking is exact.
    with DefaultScope.overwrite_default_scope('mplug2'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    checkpoint = root / 'random.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    return root, str(config), str(checkpoint)


def test_two_processes_rank_like_one(retrieval_setup):
    root, config, checkpoint = retrieval_setup
    single = _run([sys.executable, 'tools/test.py', config, checkpoint,
                   '--work-dir', str(root / 'single')])
    double = _run(['bash', 'tools/dist_test.sh', config, checkpoint, '2',
                   '--work-dir', str(root / 'double')], port=29700 + os.getpid() % 200)
    assert set(single) >= {'t2v_R1', 'v2t_R1', 't2v_MeanR', 'v2t_MeanR', 'R_mean'}
    assert double == pytest.approx(single, abs=1e-4)
