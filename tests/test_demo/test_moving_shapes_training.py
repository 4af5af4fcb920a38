"""The demo config trains through the Runner on generated moving-shapes videos and its loss decreases."""
import json
import os

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mplug2.datasets.moving_shapes import generate_moving_shapes
from tests.conftest import TINY_VOCAB, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'configs', 'demo', 'mplug2-tiny_moving-shapes_videoqa.py')


@pytest.fixture(scope='module')
def shapes_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_moving_shapes(str(root), num_train=16, num_test=4, num_frames=4, size=32, seed=0)
    words = set()
    with open(root / 'annotations' / 'qa_train.jsonl') as f:
        for line in f:
            record = json.loads(line)
            words.update(record['question'].replace('?', ' ').split() + [record['answer']])
    vocab = TINY_VOCAB + sorted(words - set(TINY_VOCAB))
    write_vocab(root / 'vocab.txt', vocab)
    return root, len(vocab)


def test_demo_config_loss_decreases(shapes_data, tmp_path):
    root, vocab_size = shapes_data
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = str(tmp_path)
    cfg.model.tokenizer.vocab_file = str(root / 'vocab.txt')
    cfg.model.tokenizer.vocab_size = vocab_size
    for module in ('universal_layers', 'text_encoder', 'fusion', 'text_decoder'):
        cfg.model[module].arch.vocab_size = vocab_size
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.data_prefix = dict(video=str(root / 'videos'))
    cfg.train_dataloader.dataset.ann_file = str(root / 'annotations' / 'qa_train.jsonl')
    cfg.test_dataloader.dataset.ann_file = str(root / 'annotations' / 'qa_test.jsonl')
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.2, by_epoch=False, begin=0, end=5)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=12)
    cfg.log_processor = dict(window_size=1, by_epoch=True)

    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.get_scalar('train/loss')._log_history
    assert len(history) == 12 * 3  # 48 questions / batch 16 x 12 epochs
    first, last = history[:3].mean(), history[-3:].mean()
    assert last < 0.5 * first, (first, last)

    metrics = runner.test()
    assert 0 <= metrics['videoqa/acc'] <= 100
