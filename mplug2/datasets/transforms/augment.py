"""Temporally consistent RandAugment of the official mPLUG-2 video training pipeline.

The official video transforms (``dataset/__init__.py``, ``video_train_transform``) run
``TemporalConsistentRandomAugment(N=2, M=5)`` after the random crop and the flip: per clip,
N distinct operations are drawn from the list and applied, with the same parameters, to
every frame. The released fine-tuning scripts use it (they do not pass ``--no_randaug``).

Operations and magnitudes follow the official ``randaugment_video.py`` (level ``M`` out of
``MAX_LEVEL = 10``; every op is applied, the official ``p`` is 0; signs are never flipped):

================  ============================================================
``Identity``      no change
``Contrast``      blend with the frame's weighted mean grey, factor ``M/10*1.8+0.1``
``Brightness``    scale by the same factor
``Sharpness``     blend with a 3x3 smoothed frame (interior pixels), same factor
``ShearX/Y``      shear by ``M/10*0.3``, bilinear, grey (128) fill
``TranslateX/Y``  shift content by ``M/10*10`` pixels towards the origin, grey fill
``Rotate``        rotate by ``M/10*30`` degrees counter-clockwise about the centre
``HorizontalFlip``  mirror (in the official pre-training list only)
================  ============================================================

At ``M = 5`` the enhancement factor is exactly 1, so Contrast, Brightness and Sharpness
leave the frames unchanged (as in the official code). Every op gives the official pixels:
the lookup-table ops and the smoothing run on all frames at once, the warps frame by frame.
"""
from typing import Optional, Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mplug2.registry import TRANSFORMS

__all__ = ['TemporalConsistentRandAugment']

MAX_LEVEL = 10
FILL = 128
#: The fine-tuning list of the official video training transform.
FINETUNE_OPS = ('Identity', 'Contrast', 'Brightness', 'Sharpness', 'ShearX', 'ShearY',
                'TranslateX', 'TranslateY', 'Rotate')


def _enhance_factor(level: float) -> float:
    return level / MAX_LEVEL * 1.8 + 0.1


def _lookup(frames: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.clip(table, 0, 255).astype(np.uint8)[frames]


def _contrast(frames: np.ndarray, level: float) -> np.ndarray:
    factor = _enhance_factor(level)
    # The official mean: channel means weighted (0.114, 0.587, 0.299) in channel order, one
    # mean per frame.
    weights = np.array([0.114, 0.587, 0.299])
    means = (frames.reshape(len(frames), -1, 3).mean(axis=1) * weights).sum(axis=1)  # (T,)
    values = np.arange(256, dtype=np.float64)
    tables = (values[None] - means[:, None]) * factor + means[:, None]  # (T, 256)
    tables = np.clip(tables, 0, 255).astype(np.uint8)
    return np.take_along_axis(tables, frames.reshape(len(frames), -1).astype(np.int64),
                              axis=1).reshape(frames.shape)


def _brightness(frames: np.ndarray, level: float) -> np.ndarray:
    return _lookup(frames, np.arange(256, dtype=np.float32) * _enhance_factor(level))


def _sharpness(frames: np.ndarray, level: float) -> np.ndarray:
    factor = _enhance_factor(level)
    if factor == 1.0:
        return frames
    kernel = np.ones((3, 3), dtype=np.float32)
    kernel[1, 1] = 5
    kernel /= 13
    stacked = _stack(frames)
    degenerate = _unstack(cv2.filter2D(stacked, -1, kernel), frames.shape)
    if factor == 0.0:
        return degenerate
    out = frames.astype(np.float32)
    inner = degenerate[:, 1:-1, 1:-1].astype(np.float32)
    out[:, 1:-1, 1:-1] = inner + factor * (out[:, 1:-1, 1:-1] - inner)
    return out.astype(np.uint8)


def _stack(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, C) -> (H, W, T*C), contiguous, for one OpenCV call over all frames."""
    num_frames, height, width, channels = frames.shape
    return np.ascontiguousarray(frames.transpose(1, 2, 0, 3).reshape(height, width,
                                                                     num_frames * channels))


def _unstack(stacked: np.ndarray, shape) -> np.ndarray:
    num_frames, height, width, channels = shape
    return np.ascontiguousarray(
        stacked.reshape(height, width, num_frames, channels).transpose(2, 0, 1, 3))


def _warp(frames: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    # One OpenCV call per frame (a few ms for 16 frames at 224): OpenCV rounds bilinear
    # warps of more than 4 channels differently, so warping the stacked frames would not
    # give the official pixels.
    height, width = frames.shape[1:3]
    matrix = matrix.astype(np.float32)
    return np.stack([
        cv2.warpAffine(np.ascontiguousarray(frame), matrix, (width, height),
                       flags=cv2.INTER_LINEAR, borderValue=(FILL, ) * 3) for frame in frames
    ])


def _shear_x(frames: np.ndarray, level: float) -> np.ndarray:
    return _warp(frames, np.array([[1, level / MAX_LEVEL * 0.3, 0], [0, 1, 0]]))


def _shear_y(frames: np.ndarray, level: float) -> np.ndarray:
    return _warp(frames, np.array([[1, 0, 0], [level / MAX_LEVEL * 0.3, 1, 0]]))


def _translate_x(frames: np.ndarray, level: float) -> np.ndarray:
    return _warp(frames, np.array([[1, 0, -level / MAX_LEVEL * 10], [0, 1, 0]]))


def _translate_y(frames: np.ndarray, level: float) -> np.ndarray:
    return _warp(frames, np.array([[1, 0, 0], [0, 1, -level / MAX_LEVEL * 10]]))


def _rotate(frames: np.ndarray, level: float) -> np.ndarray:
    height, width = frames.shape[1:3]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), level / MAX_LEVEL * 30, 1)
    return _warp(frames, matrix)


def _horizontal_flip(frames: np.ndarray, level: float) -> np.ndarray:
    return np.ascontiguousarray(frames[:, :, ::-1])


OPS = {
    'Identity': lambda frames, level: frames,
    'Contrast': _contrast,
    'Brightness': _brightness,
    'Sharpness': _sharpness,
    'ShearX': _shear_x,
    'ShearY': _shear_y,
    'TranslateX': _translate_x,
    'TranslateY': _translate_y,
    'Rotate': _rotate,
    'HorizontalFlip': _horizontal_flip,
}


@TRANSFORMS.register_module()
class TemporalConsistentRandAugment(BaseTransform):
    """RandAugment with one draw per clip, applied identically to all of its frames.

    Required keys: ``imgs`` (list of ``H x W x 3`` uint8 frames). Modified: ``imgs``.
    Added: ``randaug_ops`` (the names of the operations applied).

    Args:
        num_ops: N, operations per clip, drawn without replacement (official: 2).
        magnitude: M, on a 0-10 scale (official fine-tuning: 5).
        ops: names of the candidate operations (default: the official fine-tuning list;
            ``'HorizontalFlip'`` is also available, as in the official pre-training list).
        seed: seed of a private random generator (None: numpy's global one, reseeded per
            worker by the data loader).
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 5,
                 ops: Sequence[str] = FINETUNE_OPS, seed: Optional[int] = None) -> None:
        unknown = sorted(set(ops) - set(OPS))
        if unknown:
            raise ValueError(f'unknown RandAugment ops {unknown}; choose from {sorted(OPS)}')
        if not 0 <= num_ops <= len(ops):
            raise ValueError(f'num_ops must be in [0, {len(ops)}], got {num_ops}')
        if not 0 <= magnitude <= MAX_LEVEL:
            raise ValueError(f'magnitude must be in [0, {MAX_LEVEL}], got {magnitude}')
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.ops = tuple(ops)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _choose(self) -> list:
        if self._rng is not None:
            picks = self._rng.choice(len(self.ops), self.num_ops, replace=False)
        else:
            picks = np.random.choice(len(self.ops), self.num_ops, replace=False)
        return [self.ops[i] for i in picks]

    def transform(self, results: dict) -> dict:
        frames = np.stack(results['imgs'])
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError('TemporalConsistentRandAugment expects H x W x 3 uint8 frames, got '
                             f'{frames.shape[1:]} {frames.dtype}')
        names = self._choose()
        for name in names:
            frames = OPS[name](frames, self.magnitude)
        results['imgs'] = list(frames)
        results['randaug_ops'] = names
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_ops={self.num_ops}, magnitude={self.magnitude}, '
                f'ops={self.ops}, seed={self.seed})')
