"""Stop training at the first non-finite loss or gradient norm, before anything non-finite is saved."""
import math
from numbers import Number
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict

from mplug2.registry import HOOKS

__all__ = ['NonFiniteLossHook', 'NonFiniteLossError', 'nonfinite_reason']


class NonFiniteLossError(FloatingPointError):
    """Raised by :class:`NonFiniteLossHook`; the message names the iteration, epoch and values."""


def _fmt(value: float) -> str:
    return f'{value:.6g}'


def nonfinite_reason(loss_terms: Mapping[str, float],
                     grad_norm: Optional[float] = None,
                     scaler_skipped_step: bool = False) -> Optional[str]:
    """The decision of :class:`NonFiniteLossHook` for one iteration: why to stop, or ``None``.

    Args:
        loss_terms: every value the model returned (``loss`` and each term), as floats.
        grad_norm: the total gradient norm of the update of this iteration, or ``None`` when none
            is known (no update this iteration, or the grad check is off).
        scaler_skipped_step: the AMP loss scaler found inf/NaN gradients in this iteration and
            skipped the optimizer step (and lowered its scale).

    Rules:
        * a non-finite loss term always stops, with or without AMP: the loss is computed in fp32
          (autocast runs reductions and losses in fp32), so it is non-finite only when the forward
          itself broke (an fp16 activation overflow included), which no loss scale can repair;
        * a non-finite gradient norm stops, unless the loss scaler skipped the step: then nothing
          was applied, the scaler lowers its scale and retries -- its normal operation (the first
          steps of every fp16 run are skipped this way).
    """
    bad = {name: value for name, value in loss_terms.items() if not math.isfinite(value)}
    if bad:
        return 'non-finite loss (' + ', '.join(f'{k}={_fmt(v)}' for k, v in bad.items()) + ')'
    if grad_norm is not None and not math.isfinite(grad_norm) and not scaler_skipped_step:
        return f'non-finite gradient norm ({_fmt(grad_norm)})'
    return None


def _nonfinite_names(named_tensors: Iterable[Tuple[str, torch.Tensor]]) -> List[str]:
    """Names of the floating-point tensors holding an inf or NaN (one reduction per tensor)."""
    return [name for name, t in named_tensors
            if torch.is_tensor(t) and (t.is_floating_point() or t.is_complex())
            and not bool(torch.isfinite(t).all())]


def _total_norm(tensors: List[torch.Tensor]) -> float:
    """The 2-norm of all tensors together: fused per device and dtype, one device sync."""
    if hasattr(torch.nn.utils, 'get_total_norm'):  # torch >= 2.6
        return float(torch.nn.utils.get_total_norm(tensors))
    device = tensors[0].device
    return float(torch.linalg.vector_norm(torch.stack([n.to(device) for n in torch._foreach_norm(tensors)])))


def _wrappers(optim_wrapper) -> Dict[str, OptimWrapper]:
    if isinstance(optim_wrapper, OptimWrapperDict):
        return dict(optim_wrapper.items())
    if isinstance(optim_wrapper, OptimWrapper):
        return {'': optim_wrapper}
    return {}


def _clip_norm_is_logged(wrapper: OptimWrapper) -> bool:
    """``clip_grad`` by norm: mmengine logs the total norm as ``train/grad_norm`` before the step."""
    return bool(getattr(wrapper, 'clip_grad_kwargs', None)) and getattr(wrapper, 'grad_name', '') == 'grad_norm'


def _logged_grad_norm(wrapper: OptimWrapper) -> Optional[float]:
    if not _clip_norm_is_logged(wrapper):
        return None
    hub = wrapper.message_hub
    if 'train/grad_norm' not in hub.log_scalars:
        return None
    return float(hub.get_scalar('train/grad_norm').current())


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first non-finite loss term or gradient norm, with a message naming
    the iteration, the epoch and the values, and never let a checkpoint of non-finite weights
    be written. On by default (``configs/_base_/default_runtime.py``).

    What it checks, and when:

    * **Before each optimizer step** (a ``torch.optim.Optimizer`` step pre-hook, registered in
      ``before_train``): the total gradient norm of the update. With ``clip_grad`` by norm it is
      the norm mmengine has just computed and logged (``train/grad_norm``, no extra cost);
      otherwise one fused ``get_total_norm`` over the gradients (a single device sync). When it
      is inf or NaN the gradients are dropped (``grad = None``), so the step applies nothing:
      **the weights in memory are never updated with a non-finite gradient**, they stay those of
      the last good iteration. A norm that overflows float32 (gradients above ~1e19) counts as
      non-finite, as for ``clip_grad_norm_``.
    * **AMP** (``AmpOptimWrapper``): ``GradScaler.step`` calls the optimizer only when every
      gradient is finite; a step it skips (inf/NaN gradients of the scaled fp16 backward; the
      scaler lowers its scale and goes on) is **not** a failure, and the pre-hook never sees it.
      The scaler has already checked the gradients of a step it does take, so the pre-hook
      computes no norm under AMP. A non-finite *loss* still stops an AMP run (see
      :func:`nonfinite_reason`).
    * **After each iteration** (priority ``ABOVE_NORMAL``: before the ``LoggerHook``, the
      ``EMAHook`` and the ``CheckpointHook``, which saves in ``after_train_iter`` /
      ``after_train_epoch`` at ``VERY_LOW``): every value the model returned (``loss`` and each
      term, logged-only ones included) and the gradient verdict above go through
      :func:`nonfinite_reason`; on failure it logs the message and raises
      :class:`NonFiniteLossError`. MMEngine's ``Runner`` does not catch exceptions of hooks, so
      the run stops there and ``tools/train.py`` exits non-zero; no later hook (checkpoint,
      epoch end) runs. A NaN at the last iteration of an epoch therefore stops the run before
      the epoch-end save, and its NaN gradients were never applied (pre-step check).
    * **Before each checkpoint save** (``before_save_checkpoint``, ``check_checkpoint``): the
      last guard, for what the checks above cannot see (a finite but huge update that overflows
      the weights; with ``check_grad_norm=False``, non-finite gradients of a finite loss): every
      tensor of the
      checkpoint's ``state_dict`` (and ``ema_state_dict``) that was finite when training began
      must still be finite, else it raises before the file is written. Parameters must be finite
      at the start too (``before_train``, after loading / resuming); buffers that start
      non-finite (e.g. ``-inf`` attention masks) are intentional and left alone.

    Distributed: DDP averages the gradients before the step, so a NaN loss on one rank gives
    NaN gradients on all and every rank stops at the same iteration. A non-finite value that
    reaches no gradient (a logged-only term) stops its own rank; the launcher (torchrun) then
    ends the others.

    Args:
        check_grad_norm: check the gradient norm before each optimizer step (above).
        check_checkpoint: check the weights at the start and in every checkpoint (above).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, check_grad_norm: bool = True, check_checkpoint: bool = True) -> None:
        self.check_grad_norm = check_grad_norm
        self.check_checkpoint = check_checkpoint
        self._handles: list = []
        self._step_norms: Dict[str, Optional[float]] = {}  # wrapper name -> norm of this step
        self._finite_at_start: Optional[set] = None

    # ----------------------------------------------------------------- set-up
    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        self._remove_handles()
        if self.check_grad_norm:
            for name, wrapper in _wrappers(runner.optim_wrapper).items():
                self._handles.append(
                    wrapper.optimizer.register_step_pre_hook(self._make_pre_step(name, wrapper)))
        if self.check_checkpoint:
            model = self._model(runner)
            bad = _nonfinite_names(model.named_parameters())
            if bad:
                raise NonFiniteLossError(
                    f'NonFiniteLossHook: the model starts training with non-finite parameters '
                    f'({len(bad)} tensors: {", ".join(bad[:10])}{" ..." if len(bad) > 10 else ""}); '
                    'was it loaded or resumed from a checkpoint of a diverged run?')
            state = model.state_dict()
            bad_buffers = set(_nonfinite_names(state.items()))
            self._finite_at_start = {k for k in state if k not in bad_buffers}

    def after_train(self, runner) -> None:
        self._remove_handles()

    def _remove_handles(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _make_pre_step(self, name: str, wrapper: OptimWrapper):
        is_amp = hasattr(wrapper, 'loss_scaler')

        def pre_step(optimizer, args, kwargs):
            norm = _logged_grad_norm(wrapper)
            if norm is None and not is_amp:
                # Under AMP, GradScaler calls step only after finding every gradient finite.
                grads = [p.grad for group in optimizer.param_groups for p in group['params']
                         if p.grad is not None]
                norm = _total_norm(grads) if grads else 0.0
            self._step_norms[name] = norm  # None: stepped, norm not computed (AMP)
            if norm is not None and not math.isfinite(norm):
                # Drop the gradients: the optimizer skips parameters without one, so this step
                # applies nothing; after_train_iter raises with the full message.
                for group in optimizer.param_groups:
                    for param in group['params']:
                        param.grad = None
            return None

        return pre_step

    # ----------------------------------------------------------------- per iteration
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._step_norms = {}

    @staticmethod
    def _loss_terms(outputs) -> Dict[str, float]:
        terms = {}
        if not isinstance(outputs, Mapping):
            return terms
        for key, value in outputs.items():
            if torch.is_tensor(value) and (value.is_floating_point() or value.is_complex()):
                if value.numel() == 1:
                    terms[key] = float(value.detach().reshape(()).real)
                elif value.numel() and not bool(torch.isfinite(value.detach()).all()):
                    terms[key] = math.nan
            elif isinstance(value, Number) and not isinstance(value, bool):
                terms[key] = float(value.real) if isinstance(value, complex) else float(value)
        return terms

    def _grad_verdicts(self, runner) -> Dict[str, Tuple[Optional[float], bool]]:
        """Per optimizer wrapper: (grad norm of this iteration or None, scaler skipped the step)."""
        verdicts = {}
        if not self.check_grad_norm:
            return verdicts
        for name, wrapper in _wrappers(runner.optim_wrapper).items():
            if name in self._step_norms:
                verdicts[name] = (self._step_norms[name], False)
            elif hasattr(wrapper, 'loss_scaler') and wrapper.should_update():
                # An update was due but the optimizer did not step: the scaler skipped it.
                verdicts[name] = (_logged_grad_norm(wrapper), True)
        return verdicts

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        terms = self._loss_terms(outputs)
        reasons = []
        reason = nonfinite_reason(terms)
        if reason:
            reasons.append(reason)
        for name, (norm, skipped) in self._grad_verdicts(runner).items():
            reason = nonfinite_reason({}, norm, skipped)
            if reason:
                reasons.append(reason + (f' of optimizer "{name}"' if name else ''))
        if not reasons:
            return
        values = ', '.join(f'{k}={_fmt(v)}' for k, v in terms.items()) or 'none returned'
        norms = ', '.join(f'{n or "grad_norm"}={_fmt(v)}' for n, v in self._step_norms.items()
                          if v is not None)
        message = (f'NonFiniteLossHook: at iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                   f'batch {batch_idx + 1}): {"; ".join(reasons)}. Loss terms: {values}'
                   + (f'; gradient norm: {norms}' if norms else '')
                   + '. Training stopped: no update with non-finite gradients was applied and no '
                   'checkpoint of this iteration is written. Lower the learning rate, add '
                   'optim_wrapper.clip_grad, or check the data of this batch.')
        runner.logger.error(message)
        raise NonFiniteLossError(message)

    # ----------------------------------------------------------------- checkpoints
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_checkpoint:
            return
        bad = []
        for key in ('state_dict', 'ema_state_dict'):
            state = checkpoint.get(key)
            if not isinstance(state, Mapping):
                continue
            expected = self._finite_at_start
            named = ((k, v) for k, v in state.items() if expected is None or k in expected)
            bad += [f'{key}.{name}' for name in _nonfinite_names(named)]
        if bad:
            message = (f'NonFiniteLossHook: refusing to save a checkpoint at iteration {runner.iter + 1} '
                       f'(epoch {runner.epoch + 1}): {len(bad)} tensors are non-finite '
                       f'({", ".join(bad[:10])}{" ..." if len(bad) > 10 else ""}). Training stopped.')
            runner.logger.error(message)
            raise NonFiniteLossError(message)
