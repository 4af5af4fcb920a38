"""Data transforms of mplug2 (registered in ``mplug2.registry.TRANSFORMS``).

Crops and flips are mmaction2's, reached across scopes from configs
(``mmaction.RandomResizedCrop``, ``mmaction.Flip``); :class:`VideoResize` is the torch
resize of the official pipeline and :class:`TemporalConsistentRandAugment` its
per-clip RandAugment (see docs/datasets.md for the train and test pipelines).
"""
from .augment import TemporalConsistentRandAugment
from .formatting import PackMultimodalInputs, PackTextInputs, frames_to_tensor
from .loading import (LoadVideoFrames, SampleVideoFrames, VideoDecode, VideoInit, open_video,
                      sample_frame_indices)
from .processing import VideoResize
from .text import CleanCaption, CleanQuestion, pre_caption, pre_question

__all__ = [
    'sample_frame_indices', 'open_video', 'VideoInit', 'SampleVideoFrames', 'VideoDecode',
    'LoadVideoFrames', 'VideoResize', 'PackMultimodalInputs', 'PackTextInputs', 'frames_to_tensor',
    'TemporalConsistentRandAugment', 'CleanQuestion', 'CleanCaption', 'pre_question', 'pre_caption'
]
