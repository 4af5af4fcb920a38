"""The mPLUG-2 dual-vision encoder as a backbone of the OpenMMLab host libraries.

mPLUG-2 (Xu et al., ICML 2023, Sec. 4.4) evaluates its vision encoder on
uni-modal vision tasks: video action recognition (Kinetics), image
classification (ImageNet-1K) and COCO detection / instance segmentation. The
three adapters below are thin subclasses of
:class:`~mplug2.models.backbones.DualVisionEncoder`, so they keep its parameter
names exactly (``conv1.weight``, ``transformer.resblocks.{i}.*``, ...). Starting
a host model from an mPLUG-2 checkpoint of ours (keys ``vision_encoder.*``) is
then a prefix strip that mmengine's ``PretrainedInit`` already does::

    backbone=dict(
        type='mplug2.MPLUG2VideoBackbone',
        init_cfg=dict(type='Pretrained', checkpoint=PATH,
                      prefix='vision_encoder.'))

================================  ===============  ==========================
adapter                           host             output
================================  ===============  ==========================
:class:`MPLUG2VideoBackbone`      mmaction2        ``(N, D)`` video feature
:class:`MPLUG2ImageBackbone`      mmpretrain       ``((N, D),)`` image feature
:class:`MPLUG2ViTDetBackbone`     mmdet            ``((N, D, H/p, W/p),)``
================================  ===============  ==========================

Parameters a path never uses (the local temporal modules on images, ``ln_post``
in the detector) are kept, so that checkpoints load without missing keys, but
frozen (``requires_grad=False``): optimisers skip them and distributed training
needs no ``find_unused_parameters``.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mplug2.registry import MODELS
from .dual_vision_encoder import (DualVisionEncoder, MultiheadSelfAttention,
                                  ResidualAttentionBlock)

__all__ = [
    'MPLUG2VideoBackbone', 'MPLUG2ImageBackbone', 'MPLUG2ViTDetBackbone',
    'window_partition', 'window_unpartition'
]

_POOLING_TYPES = ('cls_token', 'avg_featmap')


def _pool(tokens: Tensor, out_type: str) -> Tensor:
    """``(B, 1+L, D)`` -> ``(B, D)``: the CLS token or the mean of the others."""
    if out_type == 'cls_token':
        return tokens[:, 0]
    return tokens[:, 1:].mean(dim=1)


def _check_out_type(out_type: str) -> str:
    if out_type not in _POOLING_TYPES:
        raise ValueError(f'out_type must be one of {_POOLING_TYPES}, '
                         f'got {out_type!r}')
    return out_type


def _freeze(*modules: Union[nn.Module, nn.Parameter]) -> None:
    for module in modules:
        module.requires_grad_(False)


@MODELS.register_module()
class MPLUG2VideoBackbone(DualVisionEncoder):
    """Video path of the dual-vision encoder for mmaction2's ``Recognizer3D``.

    Runs every block with its two local temporal modules on a clip
    ``(N, 3, T, H, W)`` (the layout ``Recognizer3D`` passes after folding the
    views into the batch) and returns one feature per clip, the form
    ``TimeSformerHead`` takes.

    Args:
        out_type: ``'cls_token'`` (default): token 0 of the encoder output, the
            mean over frames of the per-frame CLS tokens after ``ln_post``
            (the video feature of mPLUG-2); ``'avg_featmap'``: the mean of all
            ``T*N`` patch tokens after ``ln_post``.
        **kwargs: :class:`DualVisionEncoder` arguments (``arch``,
            ``img_size``, ``drop_path_rate``, ``with_cp``, ``init_cfg``...);
            ``out_indices`` is not supported.

    Returns from :meth:`forward`: a tensor ``(N, D)``.
    """

    def __init__(self, out_type: str = 'cls_token', **kwargs) -> None:
        if kwargs.get('out_indices') is not None:
            raise ValueError('MPLUG2VideoBackbone returns a pooled feature; '
                             'out_indices is not supported')
        super().__init__(**kwargs)
        self.out_type = _check_out_type(out_type)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError('MPLUG2VideoBackbone expects NCTHW clips, got '
                             f'{tuple(x.shape)}')
        return _pool(super().forward(x), self.out_type)


@MODELS.register_module()
class MPLUG2ImageBackbone(DualVisionEncoder):
    """Image path of the dual-vision encoder for mmpretrain's ``ImageClassifier``.

    Images ``(N, 3, H, W)`` take the spatial modules only (the local temporal
    modules are video-only and are frozen here). Optionally the visual tokens
    then pass through the universal layers, as in the paper's ablation of the
    universal module on uni-modal image classification (Table 16).

    Args:
        out_type: ``'cls_token'`` (default) or ``'avg_featmap'`` (mean of the
            patch tokens), read after ``ln_post`` or, with universal layers,
            after their output ``Dropout(LN(V + U))``.
        universal_layers: ``None`` (default) or the config of
            :class:`~mplug2.models.necks.UniversalLayers` (``type`` optional;
            its width must equal the encoder width). Its weights come from the
            ``universal_layers.*`` keys of an mPLUG-2 checkpoint through its
            own ``init_cfg=dict(type='Pretrained', checkpoint=PATH,
            prefix='universal_layers.')``.
        **kwargs: :class:`DualVisionEncoder` arguments; ``out_indices`` is not
            supported.

    Returns from :meth:`forward`: a one-element tuple ``((N, D),)``, the
    format of mmpretrain backbones consumed by ``LinearClsHead``.
    """

    def __init__(self,
                 out_type: str = 'cls_token',
                 universal_layers: Optional[dict] = None,
                 **kwargs) -> None:
        if kwargs.get('out_indices') is not None:
            raise ValueError('MPLUG2ImageBackbone returns a pooled feature; '
                             'out_indices is not supported')
        super().__init__(**kwargs)
        self.out_type = _check_out_type(out_type)
        for block in self.transformer.resblocks:
            _freeze(block.lmhra1, block.lmhra2)
        self.universal_layers = None
        if universal_layers is not None:
            # Imported here (registers it for `type='mplug2.UniversalLayers'`)
            # so that the other adapters do not depend on the text modules.
            from mplug2.models.necks.universal_layers import UniversalLayers
            cfg = dict(universal_layers)
            cfg.setdefault('type', UniversalLayers)
            self.universal_layers = MODELS.build(cfg)
            width = self.universal_layers.config.hidden_size
            if width != self.width:
                raise ValueError(f'universal layers of width {width} cannot '
                                 f'follow an encoder of width {self.width}')

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        if x.dim() != 4:
            raise ValueError('MPLUG2ImageBackbone expects NCHW images, got '
                             f'{tuple(x.shape)}')
        tokens = super().forward(x)  # (N, 1 + h*w, D)
        if self.universal_layers is not None:
            tokens = self.universal_layers.forward_vision(tokens)
        return (_pool(tokens, self.out_type), )


# ---------------------------------------------------------------------------
# ViTDet: windowed attention in a plain ViT (Li et al., ECCV 2022).
# ---------------------------------------------------------------------------
def window_partition(x: Tensor, window_size: int
                     ) -> Tuple[Tensor, Optional[Tensor], Tuple[int, int]]:
    """Split a token map into non-overlapping windows, padding at the end.

    Args:
        x: Token map ``(B, h, w, D)``.
        window_size: Window side ``s``.

    Returns:
        ``windows`` ``(B * nW, s*s, D)`` (windows in row-major order per
        image), ``valid`` ``(B * nW, s*s)`` boolean mask of the real (unpadded)
        tokens or ``None`` when nothing was padded, and the padded grid
        ``(hp, wp)``.
    """
    batch, h, w, dim = x.shape
    pad_h, pad_w = (-h) % window_size, (-w) % window_size
    hp, wp = h + pad_h, w + pad_w
    valid = None
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        valid = x.new_zeros((1, hp, wp, 1), dtype=torch.bool)
        valid[:, :h, :w] = True

    def split(t: Tensor) -> Tensor:
        t = t.view(t.shape[0], hp // window_size, window_size,
                   wp // window_size, window_size, t.shape[-1])
        return t.permute(0, 1, 3, 2, 4, 5).reshape(
            -1, window_size * window_size, t.shape[-1])

    windows = split(x)
    if valid is not None:
        valid = split(valid).squeeze(-1).repeat(batch, 1)
    return windows, valid, (hp, wp)


def window_unpartition(windows: Tensor, window_size: int,
                       padded_grid: Tuple[int, int],
                       grid: Tuple[int, int]) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B*nW, s*s, D)`` -> ``(B, h, w, D)``."""
    hp, wp = padded_grid
    num_windows = (hp // window_size) * (wp // window_size)
    batch = windows.shape[0] // num_windows
    x = windows.view(batch, hp // window_size, wp // window_size, window_size,
                     window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, -1)
    return x[:, :grid[0], :grid[1]]


def masked_self_attention(attn: MultiheadSelfAttention, x: Tensor,
                          valid: Optional[Tensor] = None) -> Tensor:
    """The encoder's self-attention on ``(B, L, D)`` with padded keys hidden.

    ``valid`` ``(B, L)`` marks the real tokens (``None``: all real). Uses the
    block's own ``in_proj``/``out_proj`` parameters, so it equals
    ``attn(x)`` when nothing is masked.
    """
    if valid is None:
        return attn(x)
    batch, length, width = x.shape
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(batch, length, 3, attn.heads, -1).permute(
        2, 0, 3, 1, 4).unbind(0)
    x = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None])
    return attn.out_proj(x.transpose(1, 2).reshape(batch, length, width))


@MODELS.register_module()
class MPLUG2ViTDetBackbone(DualVisionEncoder):
    """Image path of the dual-vision encoder as a ViTDet plain backbone (mmdet).

    ViTDet recipe on the mPLUG-2 encoder: most blocks attend within
    non-overlapping ``window_size`` x ``window_size`` windows of the patch
    grid, a few evenly spaced blocks attend globally; the absolute position
    table of the pre-training resolution is interpolated to the input grid;
    the last block's patch tokens are returned as a single feature map for a
    :class:`~mplug2.models.necks.SimpleFPN`. Grids that are not a multiple of
    the window are zero-padded at the bottom/right and the padded tokens are
    masked out of the attention keys.

    The pre-trained CLS token is kept by default (``use_cls_token=True``), so
    the blocks see the token layout they were pre-trained on: global blocks
    attend over ``[CLS, patches]``; in windowed blocks every window attends
    over ``[CLS, its patches]`` and the new CLS token is the mean over the
    windows. With a single window covering the grid this is exactly the
    encoder's global attention. ``use_cls_token=False`` drops it (the
    original ViTDet, whose MAE backbone had no use for it).

    Args:
        window_size: Window side in patches (ViTDet: 14 for a 64x64 grid).
        global_attn_indexes: Blocks with global attention; default: ViTDet's
            four evenly spaced blocks, ``L/4-1, L/2-1, 3L/4-1, L-1`` (2, 5, 8,
            11 for 12 blocks; 5, 11, 17, 23 for 24).
        use_cls_token: Keep the CLS token (see above).
        out_stride: ``None`` (default): return the stride-``p`` map
            ``(B, D, H/p, W/p)``. An int (e.g. 16 for ViT-L/14) resamples it
            bilinearly to ``(ceil(H/s), ceil(W/s))`` so that the detector sees
            the power-of-two strides its anchors and RoI extractors expect.
        final_norm: Apply ``ln_post`` to the output (default ``False``: the
            neck normalises, as in ViTDet; ``ln_post`` is then frozen).
        **kwargs: :class:`DualVisionEncoder` arguments (``arch``, ``img_size``
            = the pre-training resolution that sizes the position table,
            ``drop_path_rate``, ``with_cp``, ``init_cfg``...); ``out_indices``
            is not supported.

    Returns from :meth:`forward`: a one-element tuple ``((B, D, h, w),)``.
    """

    def __init__(self,
                 window_size: int = 14,
                 global_attn_indexes: Optional[Sequence[int]] = None,
                 use_cls_token: bool = True,
                 out_stride: Optional[int] = None,
                 final_norm: bool = False,
                 **kwargs) -> None:
        if kwargs.get('out_indices') is not None:
            raise ValueError('MPLUG2ViTDetBackbone returns the last feature '
                             'map; out_indices is not supported')
        super().__init__(**kwargs)
        if window_size < 1:
            raise ValueError(f'window_size must be positive, got {window_size}')
        self.window_size = window_size
        if global_attn_indexes is None:
            quarter = self.layers / 4
            global_attn_indexes = sorted(
                {max(round(quarter * k) - 1, 0) for k in (1, 2, 3, 4)})
        self.global_attn_indexes = tuple(
            sorted({index % self.layers for index in global_attn_indexes}))
        self.use_cls_token = use_cls_token
        self.out_stride = out_stride
        self.final_norm = final_norm

        for block in self.transformer.resblocks:
            _freeze(block.lmhra1, block.lmhra2)  # video-only
        if not final_norm:
            _freeze(self.ln_post)
        if not use_cls_token:
            _freeze(self.class_embedding)

    def _attention(self, attn: MultiheadSelfAttention, x: Tensor,
                   grid: Tuple[int, int], windowed: bool) -> Tensor:
        """Global or windowed self-attention on normalised tokens."""
        if not windowed:
            return attn(x)
        num_prefix = 1 if self.use_cls_token else 0
        batch, _, width = x.shape
        patches = x[:, num_prefix:].reshape(batch, *grid, width)
        windows, valid, padded = window_partition(patches, self.window_size)
        num_windows = windows.shape[0] // batch
        if self.use_cls_token:
            cls_token = x[:, :1].repeat_interleave(num_windows, dim=0)
            windows = torch.cat([cls_token, windows], dim=1)
            if valid is not None:
                valid = torch.cat([valid.new_ones(valid.shape[0], 1), valid],
                                  dim=1)
        windows = masked_self_attention(attn, windows, valid)
        if self.use_cls_token:
            cls_token = windows[:, 0].view(batch, num_windows, width).mean(
                dim=1, keepdim=True)
            windows = windows[:, 1:]
        patches = window_unpartition(windows, self.window_size, padded, grid)
        patches = patches.reshape(batch, -1, width)
        if self.use_cls_token:
            return torch.cat([cls_token, patches], dim=1)
        return patches

    def _block_forward(self, block: ResidualAttentionBlock, x: Tensor,
                       grid: Tuple[int, int], windowed: bool) -> Tensor:
        """A pre-LN block (attention then MLP) without the temporal modules."""
        x = x + block.drop_path(
            self._attention(block.attn, block.ln_1(x), grid, windowed))
        return x + block.drop_path(block.mlp(block.ln_2(x)))

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        if x.dim() != 4:
            raise ValueError('MPLUG2ViTDetBackbone expects NCHW images, got '
                             f'{tuple(x.shape)}')
        in_size = x.shape[-2:]
        x = self.conv1(x.unsqueeze(2)).squeeze(2)  # (B, D, h, w)
        batch, width, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, h*w, D), row-major
        pos_embed = self.get_pos_embed((h, w))
        x = x + pos_embed[1:]
        if self.use_cls_token:
            cls_token = (self.class_embedding + pos_embed[0]).expand(
                batch, 1, width)
            x = torch.cat([cls_token.to(x.dtype), x], dim=1)
        x = self.ln_pre(x)

        for index, block in enumerate(self.transformer.resblocks):
            windowed = index not in self.global_attn_indexes
            if self.with_cp and torch.is_grad_enabled():
                x = checkpoint(self._block_forward, block, x, (h, w), windowed,
                               use_reentrant=False)
            else:
                x = self._block_forward(block, x, (h, w), windowed)

        if self.final_norm:
            x = self.ln_post(x)
        if self.use_cls_token:
            x = x[:, 1:]
        feature_map = x.transpose(1, 2).reshape(batch, width, h, w)
        if self.out_stride is not None:
            size = tuple(math.ceil(s / self.out_stride) for s in in_size)
            if size != (h, w):
                feature_map = F.interpolate(
                    feature_map, size=size, mode='bilinear',
                    align_corners=False)
        return (feature_map, )
