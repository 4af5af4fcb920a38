"""Hooks of mplug2 (registered in ``mplug2.registry.HOOKS``)."""
from .bad_sample_hook import BadSampleReportHook, collect_skipped_samples
from .distill_alpha_hook import DistillAlphaWarmupHook
from .nonfinite_hook import NonFiniteLossError, NonFiniteLossHook, nonfinite_reason

__all__ = ['BadSampleReportHook', 'collect_skipped_samples', 'DistillAlphaWarmupHook', 'NonFiniteLossHook',
           'NonFiniteLossError', 'nonfinite_reason']
