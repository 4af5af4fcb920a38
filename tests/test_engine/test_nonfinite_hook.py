"""NonFiniteLossHook: a non-finite loss or gradient norm stops training, and no checkpoint of
non-finite weights is ever written (issue 10)."""
import glob
import logging
import os
import subprocess
import sys
import warnings
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mplug2.engine.hooks import NonFiniteLossError, NonFiniteLossHook, nonfinite_reason
from mplug2.utils.checkpoint import load_checkpoint_file
from tests.data.toy_model import ToyRegressionDataset, ToyRegressor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'tests', 'data', 'configs', 'toy_regression.py')
NAN = float('nan')
INF = float('inf')


class NaNAtCallToyRegressor(ToyRegressor):
    """The toy regressor whose loss (or only a logged term) is NaN from the ``nan_at``-th call on;
    it keeps a copy of its parameters as they were at that call (before that iteration's step)."""

    def __init__(self, nan_at: int, logged_only: bool = False):
        super().__init__()
        self.nan_at, self.logged_only, self.calls, self.before_nan = nan_at, logged_only, 0, None

    def forward(self, inputs, targets=None, mode='tensor'):
        out = super().forward(inputs, targets, mode)
        if mode == 'loss':
            self.calls += 1
            if self.calls >= self.nan_at:
                if self.before_nan is None:
                    self.before_nan = {k: v.detach().clone() for k, v in self.state_dict().items()}
                key = 'global_mse' if self.logged_only else 'loss'
                out[key] = out[key] * NAN
        return out


def _runner(work_dir, model=None, lr=0.05, max_iters=6, by_epoch=False, hook=dict(), clip_grad=None):
    """The toy regression run through the MMEngine Runner, a checkpoint after every iteration
    (epoch when ``by_epoch``), with the default runtime's custom hooks."""
    runtime = Config.fromfile(os.path.join(ROOT, 'configs', '_base_', 'default_runtime.py'))
    custom_hooks = [dict(h, **hook) if h['type'] == 'mplug2.NonFiniteLossHook' else h
                    for h in runtime.custom_hooks]
    optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01))
    if clip_grad:
        optim_wrapper['clip_grad'] = clip_grad
    return Runner(
        model=model if model is not None else ToyRegressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(batch_size=4, num_workers=0, dataset=ToyRegressionDataset(length=8 if by_epoch else 32),
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=3) if by_epoch else dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=optim_wrapper,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=by_epoch),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks,
        default_scope='mplug2',
        log_level='WARNING',
        randomness=dict(seed=0),
        experiment_name=f'nonfinite_{os.path.basename(str(work_dir))}',
    )


def _checkpoints_are_finite(work_dir):
    paths = sorted(glob.glob(os.path.join(str(work_dir), '*.pth')))
    for path in paths:
        state = load_checkpoint_file(path, map_location='cpu')['state_dict']  # weights-only
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()), path
    return [os.path.basename(p) for p in paths]


# ----------------------------------------------------------------------------- runs
def test_default_runtime_enables_the_hook():
    runtime = Config.fromfile(os.path.join(ROOT, 'configs', '_base_', 'default_runtime.py'))
    assert dict(type='mplug2.NonFiniteLossHook') in runtime.custom_hooks


def test_huge_lr_stops_with_message_and_no_nonfinite_checkpoint(tmp_path):
    runner = _runner(tmp_path, lr=1e10, max_iters=8)
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert 'at iteration 4 (epoch 1' in message and 'loss=inf' in message and 'global_mse=inf' in message
    assert runner.iter == 3  # stopped in the 4th iteration, no later one ran
    saved = _checkpoints_are_finite(tmp_path)
    assert saved == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth']
    params = [p for p in runner.model.parameters()]
    assert all(torch.isfinite(p).all() for p in params)  # the NaN gradients were never applied


@pytest.mark.parametrize('clip_grad', [None, dict(max_norm=1.0)], ids=['own_norm', 'clip_grad_norm'])
def test_nan_loss_stops_before_the_update(tmp_path, clip_grad):
    model = NaNAtCallToyRegressor(nan_at=3)
    runner = _runner(tmp_path, model=model, clip_grad=clip_grad)
    with pytest.raises(NonFiniteLossError, match=r'at iteration 3 \(epoch 1.*loss=nan.*gradient norm \(nan\)'):
        runner.train()
    assert _checkpoints_are_finite(tmp_path) == ['iter_1.pth', 'iter_2.pth']
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in model.before_nan.items())  # step applied nothing


def test_nan_in_a_logged_term_stops(tmp_path):
    model = NaNAtCallToyRegressor(nan_at=2, logged_only=True)
    runner = _runner(tmp_path, model=model, hook=dict(check_grad_norm=False))
    expected = r'at iteration 2 \(epoch 1, batch 2\): non-finite loss \(global_mse=nan\)'
    with pytest.raises(NonFiniteLossError, match=expected) as info:
        runner.train()
    assert 'loss=' in str(info.value)  # every term is listed
    assert _checkpoints_are_finite(tmp_path) == ['iter_1.pth']


def test_nan_at_the_last_iteration_of_an_epoch_saves_no_epoch_checkpoint(tmp_path):
    model = NaNAtCallToyRegressor(nan_at=4)  # 2 iterations per epoch: the end of epoch 2
    runner = _runner(tmp_path, model=model, by_epoch=True)
    with pytest.raises(NonFiniteLossError, match=r'at iteration 4 \(epoch 2, batch 2\)'):
        runner.train()
    assert _checkpoints_are_finite(tmp_path) == ['epoch_1.pth']


def test_a_finite_run_is_not_affected(tmp_path):
    runner = _runner(tmp_path, max_iters=4)
    hooks = [h for h in runner.hooks if isinstance(h, NonFiniteLossHook)]
    assert len(hooks) == 1
    runner.train()
    assert runner.iter == 4
    assert _checkpoints_are_finite(tmp_path) == [f'iter_{i}.pth' for i in range(1, 5)]
    assert not hooks[0]._handles  # the optimizer pre-hook is removed after training


# ----------------------------------------------------------------------------- checkpoints
def _fake_runner(model, optim_wrapper=None):
    logger = logging.getLogger('mplug2.tests.nonfinite')
    logger.setLevel(logging.CRITICAL)
    return SimpleNamespace(model=model, optim_wrapper=optim_wrapper, iter=0, epoch=0, logger=logger)


def test_checkpoint_guard_and_start_check():
    model = torch.nn.Linear(2, 2)
    model.register_buffer('mask', torch.tensor([0.0, -INF]))  # intentionally non-finite: ignored
    hook = NonFiniteLossHook(check_grad_norm=False)
    runner = _fake_runner(model)
    hook.before_train(runner)
    hook.before_save_checkpoint(runner, dict(state_dict=model.state_dict()))
    with torch.no_grad():
        model.weight[0, 0] = INF
    with pytest.raises(NonFiniteLossError, match=r'refusing to save.*state_dict\.weight'):
        hook.before_save_checkpoint(runner, dict(state_dict=model.state_dict()))
    with pytest.raises(NonFiniteLossError, match='starts training with non-finite parameters'):
        hook.before_train(runner)


# ----------------------------------------------------------------------------- AMP
def test_decision_rules():
    assert nonfinite_reason(dict(loss=1.0, acc=0.5), grad_norm=3.0) is None
    assert nonfinite_reason(dict(loss=1.0), grad_norm=None) is None
    assert 'loss=nan' in nonfinite_reason(dict(loss=NAN, loss_itc=1.0))
    assert 'gradient norm (inf)' in nonfinite_reason(dict(loss=1.0), grad_norm=INF)
    # AMP: inf/NaN gradients the loss scaler detected and skipped are its normal operation ...
    assert nonfinite_reason(dict(loss=1.0), grad_norm=INF, scaler_skipped_step=True) is None
    assert nonfinite_reason(dict(loss=1.0), grad_norm=NAN, scaler_skipped_step=True) is None
    # ... but a non-finite loss is not: the forward itself broke.
    assert 'loss=inf' in nonfinite_reason(dict(loss=INF), grad_norm=INF, scaler_skipped_step=True)


def test_amp_skipped_scaler_step_is_not_a_failure():
    """mmengine's AmpOptimWrapper with a (CPU) dynamic GradScaler: inf gradients make the scaler
    skip the step and halve its scale; the hook lets that pass, but stops on an inf loss."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    model = torch.nn.Linear(2, 1)
    with mock.patch.object(amp_optimizer_wrapper, 'is_cuda_available', lambda: True), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        wrapper = amp_optimizer_wrapper.AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 8)
    wrapper.initialize_count_status(model, 0, 10)
    runner = _fake_runner(model, wrapper)
    hook = NonFiniteLossHook()
    hook.before_train(runner)
    x = torch.ones(1, 2)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    hook.before_train_iter(runner, 0)
    loss = model(x).sum() * 1e38  # finite loss, but the scaled backward overflows to inf
    wrapper.update_params(loss)
    assert wrapper.loss_scaler.get_scale() == 2.0 ** 7  # skipped
    hook.after_train_iter(runner, 0, outputs=dict(loss=loss.detach()))  # no failure
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())

    hook.before_train_iter(runner, 1)
    loss = model(x).sum()
    wrapper.update_params(loss)
    assert not torch.equal(model.weight, before['weight'])  # a normal step
    hook.after_train_iter(runner, 1, outputs=dict(loss=loss.detach()))

    hook.before_train_iter(runner, 2)
    loss = (model(x).sum() ** 2 + 1) * INF
    wrapper.update_params(loss)
    with pytest.raises(NonFiniteLossError, match='loss=inf'):
        hook.after_train_iter(runner, 2, outputs=dict(loss=loss.detach()))
    hook.after_train(runner)


# ----------------------------------------------------------------------------- tools/train.py
def test_train_tool_exits_non_zero(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.pop('CUDA_VISIBLE_DEVICES', None)
    result = subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path),
         '--cfg-options', 'optim_wrapper.optimizer.lr=1e10', 'default_hooks.checkpoint.interval=1'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert 'NonFiniteLossError' in output and 'at iteration 4' in output and 'loss=inf' in output
    assert _checkpoints_are_finite(tmp_path) == ['iter_1.pth', 'iter_2.pth', 'iter_3.pth']
