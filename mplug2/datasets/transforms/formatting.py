"""Packing a pipeline result into ``dict(inputs=uint8 tensor, data_samples=DataSample)``."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mplug2.registry import TRANSFORMS
from mplug2.structures import DataSample

__all__ = ['PackMultimodalInputs', 'PackTextInputs', 'frames_to_tensor']

#: Annotation fields, stored as data fields of the DataSample.
DEFAULT_DATA_KEYS = ('question', 'gt_answer', 'answer_weight', 'gt_caption', 'text', 'text_id',
                     'question_type')
#: Identifiers and geometry, stored as metainfo.
DEFAULT_META_KEYS = ('video_id', 'sample_idx', 'question_id', 'video_idx', 'filename',
                     'frame_inds', 'total_frames', 'clip_len', 'img_shape', 'original_shape',
                     'flip', 'flip_direction')


def frames_to_tensor(frames) -> torch.Tensor:
    """Video frames in any layout the pipeline produces -> ``(C, T, H, W)`` tensor.

    Accepted: a list of ``H x W x C`` arrays, a ``(T, H, W, C)`` array, or mmaction2's
    ``FormatShape('NCTHW')`` output ``(1, C, T, H, W)``. The dtype is kept (uint8).
    """
    if isinstance(frames, (list, tuple)):
        array = np.stack([np.asarray(f) for f in frames])  # T, H, W, C
        return torch.from_numpy(np.ascontiguousarray(array.transpose(3, 0, 1, 2)))
    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.ndim == 5:
        if array.shape[0] != 1:
            raise ValueError(f'expected one clip (1, C, T, H, W), got shape {array.shape}')
        return torch.from_numpy(np.ascontiguousarray(array[0]))
    if array.ndim == 4:
        return torch.from_numpy(np.ascontiguousarray(array.transpose(3, 0, 1, 2)))
    raise ValueError(f'cannot format video frames of shape {array.shape}')


@TRANSFORMS.register_module()
class PackMultimodalInputs(BaseTransform):
    """Pack ``imgs`` (video) or ``img`` (image) and the annotations.

    Output: ``dict(inputs=<uint8 tensor (C, T, H, W) or (C, H, W)>, data_samples=DataSample)``.
    Keys of ``data_keys`` present in the results become data fields of the sample, keys of
    ``meta_keys`` metainfo; absent keys are skipped. ``skipped_samples`` is added later by
    the dataset (``on_error='skip'``).

    Args:
        data_keys: annotation keys (``question``, ``gt_answer``, ``gt_caption``, ``text`` ...).
        meta_keys: identifier keys (``video_id``, ``sample_idx``, ``frame_inds`` ...).
        uint8: cast the frames to uint8 (after mmaction2 transforms that output float).
    """

    def __init__(self, data_keys: Sequence[str] = DEFAULT_DATA_KEYS,
                 meta_keys: Sequence[str] = DEFAULT_META_KEYS, uint8: bool = True) -> None:
        self.data_keys = tuple(data_keys)
        self.meta_keys = tuple(meta_keys)
        self.uint8 = uint8

    def _inputs(self, results: dict) -> torch.Tensor:
        if 'imgs' in results:
            inputs = frames_to_tensor(results['imgs'])
        elif 'img' in results:
            image = np.asarray(results['img'])
            if image.ndim == 2:
                image = image[..., None]
            inputs = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        else:
            raise KeyError("PackMultimodalInputs needs 'imgs' (video) or 'img' (image) in the "
                           f'results; got keys {sorted(results)}')
        if self.uint8 and inputs.dtype != torch.uint8:
            inputs = inputs.round().clamp(0, 255).to(torch.uint8)
        return inputs

    def transform(self, results: dict) -> dict:
        data_sample = DataSample()
        data_sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        for key in self.data_keys:
            if key in results:
                data_sample.set_field(results[key], key)
        return dict(inputs=self._inputs(results), data_samples=data_sample)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(data_keys={self.data_keys}, meta_keys={self.meta_keys}, '
                f'uint8={self.uint8})')


@TRANSFORMS.register_module()
class PackTextInputs(PackMultimodalInputs):
    """Pack a text-only sample (GLUE, text QA, summarization): ``dict(inputs=None,
    data_samples=DataSample)``, the fields as :class:`PackMultimodalInputs` packs them.

    Args:
        data_keys: annotation keys stored as data fields.
        meta_keys: identifier keys stored as metainfo.
    """

    def __init__(self, data_keys: Sequence[str] = DEFAULT_DATA_KEYS,
                 meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        super().__init__(data_keys=data_keys, meta_keys=meta_keys, uint8=False)

    def _inputs(self, results: dict) -> None:
        return None

    def __repr__(self) -> str:
        return f'{type(self).__name__}(data_keys={self.data_keys}, meta_keys={self.meta_keys})'
