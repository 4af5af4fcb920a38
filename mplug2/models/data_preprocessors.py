"""Batch pre-processing on the device: stack, cast, normalise images and videos."""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from mplug2.registry import MODELS

__all__ = ['MPLUG2DataPreprocessor', 'CLIP_MEAN', 'CLIP_STD']

#: CLIP's normalisation, on the 0-255 scale.
CLIP_MEAN = tuple(255 * m for m in (0.48145466, 0.4578275, 0.40821073))
CLIP_STD = tuple(255 * s for s in (0.26862954, 0.26130258, 0.27577711))


@MODELS.register_module()
class MPLUG2DataPreprocessor(BaseDataPreprocessor):
    """Turn ``dict(inputs=[uint8 tensors], data_samples=[...])`` into a normalised batch.

    ``inputs`` is a list of ``(C, H, W)`` images or ``(C, T, H, W)`` videos (or an already
    stacked tensor). They are stacked, moved to the device, cast to float and normalised
    per channel, ``(x - mean) / std``, on the 0-255 scale, in one broadcast operation for
    both ``NCHW`` and ``NCTHW``. ``data_samples`` pass through (moved to the device).
    Text-only batches (no ``inputs``, or ``inputs`` all None) give ``inputs=None``.

    Args:
        mean: per-channel mean, 0-255 scale (CLIP's by default).
        std: per-channel standard deviation, 0-255 scale (CLIP's by default).
        non_blocking: asynchronous host-to-device copies.
    """

    def __init__(self, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                 non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if len(mean) != len(std):
            raise ValueError(f'mean and std must have the same length, got {len(mean)} and '
                             f'{len(std)}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32), persistent=False)

    def normalize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalise an ``(N, C, H, W)`` or ``(N, C, T, H, W)`` batch (float32 result)."""
        if inputs.dim() not in (4, 5):
            raise ValueError(f'expected NCHW or NCTHW inputs, got shape {tuple(inputs.shape)}')
        channels = inputs.shape[1]
        if channels != self.mean.numel():
            raise ValueError(f'inputs have {channels} channels but mean/std have '
                             f'{self.mean.numel()}')
        view = (1, channels) + (1, ) * (inputs.dim() - 2)
        return (inputs.float() - self.mean.view(view)) / self.std.view(view)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs: Union[None, torch.Tensor, Sequence[torch.Tensor]] = data.get('inputs')
        if inputs is None or (isinstance(inputs, (list, tuple)) and all(x is None for x in inputs)):
            inputs = None  # text-only tasks: no media
        elif not isinstance(inputs, torch.Tensor):
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) != 1:
                raise ValueError(f'cannot stack inputs of different shapes {sorted(shapes)}; '
                                 'resize them to one size in the pipeline')
            inputs = torch.stack(list(inputs))
        if inputs is not None:
            inputs = self.normalize(self.cast_data(inputs))
        data_samples: Optional[list] = data.get('data_samples')
        if data_samples is not None:
            data_samples = self.cast_data(data_samples)
        return dict(inputs=inputs, data_samples=data_samples)
