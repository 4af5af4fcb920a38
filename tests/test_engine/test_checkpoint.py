"""Checkpoints are untrusted input: weights-only loading with an allowlist, exact resume."""
import copy
import os
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner, load_checkpoint

import mplug2  # noqa: F401
from mplug2.utils.checkpoint import UnsafeCheckpointError, load_checkpoint_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY_CONFIG = os.path.join(ROOT, 'tests', 'data', 'configs', 'toy_regression.py')


class _RunsCode:
    """Unpickling this calls ``os.system``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _GetattrEscape:
    """Unpickling this calls ``getattr(HistoryBuffer, '__init__')``: an allowed name, a forbidden use."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'payload': _RunsCode(str(marker))}, path)
    return path, marker


def test_malicious_checkpoint_is_refused(malicious_checkpoint):
    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert str(path) in message and 'posix.system' in message
    assert not marker.exists()


def test_malicious_checkpoint_is_refused_through_mmengine(malicious_checkpoint):
    """``load_from``/``init_cfg=Pretrained`` go through mmengine's loader, which compat replaced."""
    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))
    assert not marker.exists()


def test_getattr_is_restricted(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrEscape()}, path)
    with pytest.raises(UnsafeCheckpointError, match='__init__'):
        load_checkpoint_file(path)


def test_legacy_format_is_refused(tmp_path):
    path = tmp_path / 'legacy.pth'
    marker = tmp_path / 'pwned'
    torch.save({'payload': _RunsCode(str(marker))}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_plain_pickle_is_not_unpickled_unsafely(tmp_path):
    path = tmp_path / 'plain.pkl'
    marker = tmp_path / 'pwned'
    with open(path, 'wb') as f:
        pickle.dump(_RunsCode(str(marker)), f)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint_file(tmp_path / 'nope.pth')


def _build_runner(work_dir, **overrides):
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def _optimizer_state(runner):
    state = runner.optim_wrapper.state_dict()['state']
    return {key: {name: value.clone() for name, value in entry.items() if torch.is_tensor(value)}
            for key, entry in state.items()}


def test_own_checkpoint_loads_and_resumes_exactly(tmp_path):
    # Uninterrupted: 8 iterations, checkpoints at 4 and 8.
    full = _build_runner(tmp_path / 'full')
    full.train()
    full_params = copy.deepcopy(full.model.state_dict())
    full_optim = _optimizer_state(full)

    # The checkpoint holds mmengine's own types (HistoryBuffer, numpy, ...) and loads weights-only.
    ckpt = load_checkpoint_file(tmp_path / 'full' / 'iter_4.pth')
    assert ckpt['meta']['iter'] == 4
    assert 'train/loss' in ckpt['message_hub']['log_scalars']

    # Resume from iteration 4 in a fresh runner and finish.
    resumed = _build_runner(tmp_path / 'resumed', resume=True, load_from=str(tmp_path / 'full' / 'iter_4.pth'))
    resumed.train()
    assert resumed.iter == 8
    for name, value in full_params.items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0)
    resumed_optim = _optimizer_state(resumed)
    assert resumed_optim.keys() == full_optim.keys()
    for key in full_optim:
        for name, value in full_optim[key].items():
            torch.testing.assert_close(resumed_optim[key][name], value, rtol=0, atol=0)
    # The scheduler continued from where it stopped, too.
    assert resumed.optim_wrapper.get_lr()['lr'] == pytest.approx(full.optim_wrapper.get_lr()['lr'])


def test_resume_restores_iteration_and_optimizer(tmp_path):
    first = _build_runner(tmp_path / 'a', train_cfg=dict(type='IterBasedTrainLoop', max_iters=4))
    first.train()
    saved_optim = _optimizer_state(first)

    again = _build_runner(tmp_path / 'b', resume=True, load_from=str(tmp_path / 'a' / 'iter_4.pth'))
    again.load_or_resume()
    assert again.iter == 4
    restored = _optimizer_state(again)
    for key in saved_optim:
        for name, value in saved_optim[key].items():
            torch.testing.assert_close(restored[key][name], value, rtol=0, atol=0)
