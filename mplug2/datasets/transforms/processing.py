"""Spatial resizing of video clips with torch, as the official pipeline does it.

The official test transform resizes with ``torch.nn.functional.interpolate`` in
``nearest`` mode to 224x224 without keeping the aspect ratio; its RandomResizedCrop
resizes the crop with torch ``bicubic`` and truncates back to integers. OpenCV's nearest
neighbour (``mmaction.Resize``) picks a different source pixel for a few output pixels
of some sizes (e.g. 0.4% of them for 480x360 -> 224x224), so this transform exists for
exact parity. Crops and flips are mmaction2's (``mmaction.RandomResizedCrop``,
``mmaction.Flip``).
"""
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from mplug2.registry import TRANSFORMS

__all__ = ['VideoResize']


@TRANSFORMS.register_module()
class VideoResize(BaseTransform):
    """Resize every frame of ``imgs`` to ``scale`` with ``torch.nn.functional.interpolate``.

    Required keys: ``imgs`` (list of ``H x W x C`` uint8 arrays). Modified: ``imgs``,
    ``img_shape``; added: ``scale_factor`` (w, h).

    Args:
        scale: output ``(width, height)`` or an int for a square (224 officially). The
            aspect ratio is not kept.
        interpolation: ``'nearest'`` (official test), ``'bilinear'`` or ``'bicubic'``
            (official train, after the random crop).
        round_output: for bilinear / bicubic, round to the nearest integer (True) or
            truncate as the official ``.long()`` cast does (False). Values are clamped
            to [0, 255] either way (the official code does not clamp; uint8 needs it).
    """

    def __init__(self, scale: Union[int, Sequence[int]] = 224, interpolation: str = 'nearest',
                 round_output: bool = False) -> None:
        if interpolation not in ('nearest', 'bilinear', 'bicubic'):
            raise ValueError(f'unsupported interpolation {interpolation!r}')
        self.scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        self.interpolation = interpolation
        self.round_output = round_output

    def transform(self, results: dict) -> dict:
        frames = np.stack(results['imgs'])  # T, H, W, C
        height, width = frames.shape[1:3]
        out_w, out_h = self.scale
        if (height, width) != (out_h, out_w):
            video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # T, C, H, W
            kwargs = {} if self.interpolation == 'nearest' else dict(align_corners=False)
            video = F.interpolate(video, size=(out_h, out_w), mode=self.interpolation, **kwargs)
            if self.interpolation != 'nearest':
                video = video.clamp(0, 255)
                video = video.round() if self.round_output else video.floor()
            frames = video.to(torch.uint8).permute(0, 2, 3, 1).numpy()
        results['imgs'] = list(frames)
        results['img_shape'] = (out_h, out_w)
        results['scale_factor'] = np.array([out_w / width, out_h / height], dtype=np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, interpolation={self.interpolation!r}, '
                f'round_output={self.round_output})')
