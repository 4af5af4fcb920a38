"""Warm-up of the ITC distillation weight (ALBEF / mPLUG ramp alpha over the first epoch)."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mplug2.registry import HOOKS

__all__ = ['DistillAlphaWarmupHook']


@HOOKS.register_module()
class DistillAlphaWarmupHook(Hook):
    """Ramp the distillation weight of every ITC head of the model linearly from 0 to its
    ``alpha`` over the first ``warmup_iters`` training iterations.

    Before each training iteration it sets ``alpha_factor = min(1, iter / warmup_iters)``
    on each :class:`~mplug2.models.heads.ITCHead` of the model: the model never reads the
    runner's state, the schedule comes from here.

    Args:
        warmup_iters: length of the ramp in iterations (> 0); the official recipe ramps
            over the first epoch.
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: int) -> None:
        if warmup_iters <= 0:
            raise ValueError(f'warmup_iters must be positive, got {warmup_iters}')
        self.warmup_iters = warmup_iters

    @staticmethod
    def _heads(runner):
        from mplug2.models.heads import ITCHead
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        heads = [module for module in model.modules() if isinstance(module, ITCHead)]
        if not heads:
            raise RuntimeError('DistillAlphaWarmupHook: the model has no ITCHead')
        return heads

    def before_train(self, runner) -> None:
        self._heads(runner)  # fail early on a model without an ITC head

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        factor = min(1.0, runner.iter / self.warmup_iters)
        for head in self._heads(runner):
            head.alpha_factor = factor
