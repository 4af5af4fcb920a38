"""A run killed mid-epoch and resumed from its last checkpoint equals the uninterrupted run
exactly, with random frame sampling in persistent dataloader workers (SeededSampler)."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mplug2.datasets import SeededIndex, SeededSampler, VideoQADataset, sample_seed
from mplug2.datasets.moving_shapes import generate_moving_shapes
from mplug2.registry import HOOKS
from tests.conftest import TINY_VOCAB, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, 'configs', 'demo', 'mplug2-tiny_moving-shapes_videoqa.py')


class Killed(RuntimeError):
    pass


@HOOKS.register_module(force=True)
class KillAtIterHook(Hook):
    """Stands for a killed process: raises before training iteration ``at``."""

    def __init__(self, at: int):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            raise Killed(f'killed before iteration {self.at}')


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes12')
    # 12-frame clips, 4 frames sampled at random in training: the sampled frames differ per draw
    generate_moving_shapes(str(root), num_train=4, num_test=2, num_frames=12, size=32, seed=0)
    write_vocab(root / 'vocab.txt', TINY_VOCAB)
    return root


def _config(root, work_dir, sampler, kill_at=None):
    cfg = Config.fromfile(DEMO)
    cfg.work_dir = str(work_dir)
    cfg.model.tokenizer.vocab_file = str(root / 'vocab.txt')
    cfg.model.tokenizer.vocab_size = len(TINY_VOCAB)
    for module in ('universal_layers', 'text_encoder', 'fusion', 'text_decoder'):
        cfg.model[module].arch.vocab_size = len(TINY_VOCAB)
    # one persistent worker: its numpy state would run on from epoch to epoch
    cfg.train_dataloader.update(batch_size=4, num_workers=1, persistent_workers=True)
    cfg.train_dataloader.sampler = dict(type=sampler, shuffle=True)
    cfg.train_dataloader.dataset.data_root = str(root)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    if kill_at is not None:
        cfg.custom_hooks = [*cfg.custom_hooks, dict(type='KillAtIterHook', at=kill_at)]
    return cfg


def _straight_and_resumed(root, tmp_path, sampler):
    straight = Runner.from_cfg(_config(root, tmp_path / 'straight', sampler))
    straight.train()
    # 12 samples (3 questions x 4 videos) at batch 4: 3 iterations per epoch; killed in epoch 2
    work = tmp_path / 'killed'
    with pytest.raises(Killed, match='killed before iteration 4'):
        Runner.from_cfg(_config(root, work, sampler, kill_at=4)).train()
    assert 'epoch_1.pth' in os.listdir(work) and 'epoch_2.pth' not in os.listdir(work)
    cfg = _config(root, work, sampler)
    cfg.resume, cfg.load_from = True, str(work / 'epoch_1.pth')
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    return straight.model.state_dict(), resumed.model.state_dict()


def test_killed_and_resumed_run_equals_the_straight_run(shapes, tmp_path):
    expected, got = _straight_and_resumed(shapes, tmp_path, 'SeededSampler')
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_without_per_sample_seeds_the_resumed_run_differs(shapes, tmp_path):
    """The defect SeededSampler removes: numpy's state in persistent workers."""
    expected, got = _straight_and_resumed(shapes, tmp_path, 'DefaultSampler')
    assert any(not torch.equal(expected[key], got[key]) for key in expected)


def test_seeds_depend_on_seed_epoch_and_index_only(shapes):
    dataset = VideoQADataset(str(shapes / 'annotations' / 'qa_train.jsonl'),
                             data_prefix=dict(video=str(shapes / 'videos')),
                             pipeline=[dict(type='mplug2.LoadVideoFrames', num_frames=4)])
    sampler = SeededSampler(dataset, shuffle=True, seed=7)
    sampler.set_epoch(2)
    indices = list(sampler)
    assert all(isinstance(index, SeededIndex) for index in indices)
    assert sorted(int(i) for i in indices) == list(range(len(dataset)))
    assert [index.seed for index in indices] == [sample_seed(7, 2, int(i)) for i in indices]
    assert sample_seed(7, 2, 1) != sample_seed(7, 3, 1) != sample_seed(8, 2, 1)
    # the same seeded index draws the same frames, whatever was drawn before
    index = SeededIndex(1, seed=sample_seed(7, 2, 1))
    first = dataset[index]['frame_inds'].tolist()
    dataset[SeededIndex(2, seed=5)]
    assert dataset[index]['frame_inds'].tolist() == first
    # plain indices keep drawing from the global state, which a seeded one leaves untouched
    state = torch.get_rng_state(), __import__('numpy').random.get_state()[1].copy()
    dataset[index]
    assert (__import__('numpy').random.get_state()[1] == state[1]).all()
    import pickle
    assert pickle.loads(pickle.dumps(index)).seed == index.seed
