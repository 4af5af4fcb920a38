"""Hooks of mplug2 (registered in ``mplug2.registry.HOOKS``)."""
from .bad_sample_hook import BadSampleReportHook, collect_skipped_samples

__all__ = ['BadSampleReportHook', 'collect_skipped_samples']
