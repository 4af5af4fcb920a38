"""Dual-vision encoder of mPLUG-2 (Xu et al., ICML 2023, Sec. 3.2).

One CLIP ViT encodes both images and videos. The *spatial* modules (patch
embedding, position table, self-attention and MLP of every block) are shared by
the two modalities. Each block also holds two *local temporal* (LT) modules,
which are used only for videos:

    patches += LT1(patches)          # lmhra1, video only
    x       += MHSA(ln_1(x))         # spatial attention within each frame
    patches += LT2(patches)          # lmhra2, video only
    x       += MLP(ln_2(x))

This is the block order of the official release (two LT modules per block; the
paper's Fig. 2b draws only the first). LT modules touch the patch tokens only;
the CLS token bypasses them. Their up-projection starts at zero, so a freshly
built (or CLIP-initialised) encoder processes every frame exactly like an image.

Token layout:

* image ``(B, 3, H, W)``   -> ``(B, 1 + N, D)``: ``[CLS, patches]``.
* video ``(B, 3, T, H, W)`` -> ``(B, 1 + T*N, D)``: ``[mean_t(CLS_t), patches of
  frame 0, ..., patches of frame T-1]``. Frames share the spatial position
  table; there is no temporal position embedding.

Both end with ``ln_post``; CLIP's output projection is not part of the encoder.

Parameter names follow CLIP and the official checkpoint
(``visual_encoder.visual.*``), so converting an mPLUG-2 checkpoint is a prefix
rename: ``conv1.weight`` (Conv3d ``(D, 3, 1, p, p)``), ``class_embedding``,
``positional_embedding``, ``ln_pre``, ``transformer.resblocks.{i}.{attn.in_proj_weight,
attn.in_proj_bias, attn.out_proj, ln_1, mlp.c_fc, mlp.c_proj, ln_2,
lmhra{1,2}.{ln, down_proj, conv, up_proj}}``, ``ln_post``.
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from timm.layers import DropPath
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mplug2.registry import MODELS

#: CLIP ViT presets: width D, number of blocks, attention heads, patch size p.
ARCH_SETTINGS: Dict[str, Dict[str, int]] = {
    'b/16': dict(width=768, layers=12, heads=12, patch_size=16),
    'l/14': dict(width=1024, layers=24, heads=16, patch_size=14),
}


class LayerNorm(nn.LayerNorm):
    """CLIP LayerNorm (eps 1e-5) computed in float32, returned in the input dtype.

    Keeps fp16/bf16 residual streams (half-precision modules or autocast) in
    their dtype while normalising with full-precision statistics.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5) -> None:
        super().__init__(normalized_shape, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.float(), self.normalized_shape,
                            self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU: ``x * sigmoid(1.702 x)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def resize_pos_embed(pos_embed: Tensor,
                     src_grid: Tuple[int, int],
                     dst_grid: Tuple[int, int],
                     mode: str = 'bicubic') -> Tensor:
    """Resize a ViT position table ``(1 + h*w, D)`` to another patch grid.

    The CLS entry (row 0) is kept; the patch rows, laid out row-major on the
    ``src_grid`` ``(h, w)``, are resized to ``dst_grid`` with
    ``F.interpolate(mode, align_corners=False)`` in float32. CLIP and timm use
    ``'bicubic'``; the official mPLUG-2 fine-tuning loader uses ``'bilinear'``
    (both are a no-op at its 224 training resolution).

    Returns ``pos_embed`` itself when the grids match, otherwise a new tensor of
    shape ``(1 + H*W, D)`` in the input dtype (differentiable).
    """
    src_grid, dst_grid = tuple(src_grid), tuple(dst_grid)
    num_tokens, dim = pos_embed.shape
    if num_tokens != 1 + src_grid[0] * src_grid[1]:
        raise ValueError(f'position table of {num_tokens} rows does not match '
                         f'a CLS token plus a {src_grid} patch grid')
    if src_grid == dst_grid:
        return pos_embed
    cls_pos, patch_pos = pos_embed[:1], pos_embed[1:]
    patch_pos = patch_pos.float().reshape(1, *src_grid, dim).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(
        patch_pos, size=dst_grid, mode=mode, align_corners=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(-1, dim)
    return torch.cat([cls_pos, patch_pos.to(pos_embed.dtype)], dim=0)


def _pointwise(conv: nn.Conv3d, x: Tensor) -> Tensor:
    """Apply a 1x1x1 ``Conv3d`` to channels-last tokens ``(..., C_in)``.

    A 1x1x1 convolution is a linear map over channels; running it as
    ``F.linear`` on the flattened kernel avoids channels-first copies while the
    module keeps the official Conv3d parameter shape.
    """
    return F.linear(x, conv.weight.flatten(1), conv.bias)


class LocalTemporal(nn.Module):
    """Local temporal (LT) module (paper Sec. 3.2, "local temporal modeling").

    Bottleneck ``LN -> 1x1x1 down -> depthwise temporal conv (k=3) -> QuickGELU
    -> 1x1x1 up`` over the patch tokens of a video; the caller adds the result as
    a residual. ``up_proj`` starts at zero, so the module outputs exactly zero at
    initialisation. The "multi-group" temporal relation of the paper is the
    depthwise convolution (one group per bottleneck channel).

    Args:
        width: Token width D.
        bottleneck_ratio: Bottleneck width as a fraction of D (official: 0.5).
    """

    def __init__(self, width: int, bottleneck_ratio: float = 0.5) -> None:
        super().__init__()
        hidden = int(width * bottleneck_ratio)
        self.ln = LayerNorm(width)
        self.down_proj = nn.Conv3d(width, hidden, kernel_size=1)
        self.conv = nn.Conv3d(
            hidden, hidden, kernel_size=(3, 1, 1), padding=(1, 0, 0),
            groups=hidden)
        self.act = QuickGELU()
        self.up_proj = nn.Conv3d(hidden, width, kernel_size=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch defaults, except a zero ``up_proj`` (identity residual)."""
        self.ln.reset_parameters()
        self.down_proj.reset_parameters()
        self.conv.reset_parameters()
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Map patch tokens ``(B, T, N, D)`` to a residual of the same shape."""
        x = _pointwise(self.down_proj, self.ln(x))
        # Depthwise convolution over time: (B, T, N, C) -> (B, C, T, N, 1).
        x = self.conv(x.permute(0, 3, 1, 2).unsqueeze(-1))
        x = self.act(x.squeeze(-1).permute(0, 2, 3, 1))
        return _pointwise(self.up_proj, x)


class MultiheadSelfAttention(nn.Module):
    """Self-attention with ``nn.MultiheadAttention``'s parameter layout.

    Stores q/k/v as one ``in_proj_weight`` ``(3D, D)`` / ``in_proj_bias``
    ``(3D,)`` plus ``out_proj`` (CLIP key names), and computes with the fused
    ``F.scaled_dot_product_attention`` on batch-first tokens ``(B, L, D)``.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f'width {width} not divisible by {heads} heads')
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        # (B, L, 3D) -> 3 x (B, heads, L, head_dim)
        q, k, v = qkv.view(batch, length, 3, self.heads, -1).permute(
            2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(x.transpose(1, 2).reshape(batch, length, width))


class ResidualAttentionBlock(nn.Module):
    """CLIP pre-LN block with the two LT modules of mPLUG-2 (``TemporalBlock``).

    Args:
        width: Token width D.
        heads: Attention heads.
        lt_bottleneck_ratio: Bottleneck ratio of the LT modules.
        drop_path: Stochastic-depth rate of this block's residual branches.
    """

    def __init__(self,
                 width: int,
                 heads: int,
                 lt_bottleneck_ratio: float = 0.5,
                 drop_path: float = 0.) -> None:
        super().__init__()
        self.lmhra1 = LocalTemporal(width, lt_bottleneck_ratio)
        self.ln_1 = LayerNorm(width)
        self.attn = MultiheadSelfAttention(width, heads)
        self.lmhra2 = LocalTemporal(width, lt_bottleneck_ratio)
        self.ln_2 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(width, 4 * width)),
            ('gelu', QuickGELU()),
            ('c_proj', nn.Linear(4 * width, width)),
        ]))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def local_temporal(self, lt: LocalTemporal, x: Tensor,
                       num_frames: int) -> Tensor:
        """Add ``lt`` over time to the patch tokens of ``x`` ``(B*T, 1+N, D)``.

        Frames are the minor index of the batch (b-major, as in the official
        code); the CLS token is passed through unchanged.
        """
        cls_token, patches = x[:, :1], x[:, 1:]
        frames, num_patches, width = patches.shape
        video = patches.view(frames // num_frames, num_frames, num_patches,
                             width)
        residual = self.drop_path(lt(video)).view_as(patches)
        return torch.cat([cls_token, patches + residual], dim=1)

    def forward(self, x: Tensor, num_frames: Optional[int] = None) -> Tensor:
        """Run the block on per-frame tokens ``(B*T, 1+N, D)``.

        ``num_frames`` is T for videos; ``None`` marks images, which skip the LT
        modules (temporal modelling needs a time axis).
        """
        if num_frames is not None:
            x = self.local_temporal(self.lmhra1, x, num_frames)
        x = x + self.drop_path(self.attn(self.ln_1(x)))
        if num_frames is not None:
            x = self.local_temporal(self.lmhra2, x, num_frames)
        return x + self.drop_path(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):
    """Container of the blocks, kept as ``transformer.resblocks`` (CLIP keys)."""

    def __init__(self, width: int, heads: int, lt_bottleneck_ratio: float,
                 drop_path_rates: Sequence[float]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(width, heads, lt_bottleneck_ratio, rate)
            for rate in drop_path_rates)


@MODELS.register_module()
class DualVisionEncoder(BaseModule):
    """mPLUG-2 dual-vision encoder: a CLIP ViT shared by images and videos.

    Args:
        arch: ``'b/16'``, ``'l/14'`` (mPLUG-2 large) or a dict with keys
            ``width``, ``layers``, ``heads`` and ``patch_size``.
        img_size: Training resolution ``H`` or ``(H, W)``; it fixes the size of
            the position table. Other input sizes are handled by resizing the
            table on the fly.
        lt_bottleneck_ratio: Bottleneck width of the LT modules relative to D.
        drop_path_rate: Largest stochastic-depth rate; block ``i`` uses
            ``rate * i / (layers - 1)``.
        out_indices: ``None`` (default) to return the token sequence; a sequence
            of block indices (negative counts from the end) to return feature
            maps of those blocks instead, e.g. for a detection neck.
        with_cp: Gradient checkpointing of every block.
        interpolate_mode: ``F.interpolate`` mode used to resize the position
            table (at run time and when loading CLIP weights).
        init_cfg: MMEngine init config, applied by ``init_weights()`` over the
            random initialisation of the constructor:
            ``dict(type='PretrainedCLIP', checkpoint=PATH)`` loads CLIP weights
            (OpenAI ``.pt`` or Hugging Face directory, see
            :mod:`mplug2.checkpoints.clip`; ``'mplug2.PretrainedCLIP'`` from a
            host-library config), ``dict(type='PretrainedMPLUG2',
            checkpoint=PATH, prefix='vision_encoder.')`` a checkpoint of ours.

    Forward contract (:meth:`forward`):

    * ``out_indices=None``: a tensor, after ``ln_post``: ``(B, 1 + N, D)`` for
      images ``(B, 3, H, W)`` and ``(B, 1 + T*N, D)`` for videos
      ``(B, 3, T, H, W)``, where ``N = (H/p) * (W/p)``.
    * ``out_indices`` set: a tuple, in increasing block order, of the blocks'
      patch tokens (no CLS, no ``ln_post``) as feature maps ``(B, D, H/p, W/p)``
      for images and ``(B, D, T, H/p, W/p)`` for videos. Blocks after the last
      requested index are not run.
    """

    def __init__(self,
                 arch: Union[str, Dict[str, int]] = 'l/14',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 lt_bottleneck_ratio: float = 0.5,
                 drop_path_rate: float = 0.,
                 out_indices: Optional[Sequence[int]] = None,
                 with_cp: bool = False,
                 interpolate_mode: str = 'bicubic',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch.lower() not in ARCH_SETTINGS:
                raise KeyError(f'unknown arch {arch!r}; choose from '
                               f'{sorted(ARCH_SETTINGS)} or pass a dict')
            arch = ARCH_SETTINGS[arch.lower()]
        missing = {'width', 'layers', 'heads', 'patch_size'} - set(arch)
        if missing:
            raise KeyError(f'arch dict lacks {sorted(missing)}')
        self.width = width = arch['width']
        self.layers = layers = arch['layers']
        self.patch_size = patch_size = arch['patch_size']
        if isinstance(img_size, int):
            img_size = (img_size, img_size)
        self.img_size = img_size = tuple(img_size)
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.interpolate_mode = interpolate_mode
        self.with_cp = with_cp
        self.out_indices = None if out_indices is None else tuple(
            sorted({index % layers for index in out_indices}))

        # Patchify as a Conv3d with a (1, p, p) kernel: the official parameter
        # shape (D, 3, 1, p, p); images run through it as one-frame clips.
        self.conv1 = nn.Conv3d(
            3, width, kernel_size=(1, patch_size, patch_size),
            stride=(1, patch_size, patch_size), bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        num_positions = 1 + self.grid_size[0] * self.grid_size[1]
        self.positional_embedding = nn.Parameter(
            torch.empty(num_positions, width))
        self.ln_pre = LayerNorm(width)
        drop_path_rates = [
            drop_path_rate * i / max(layers - 1, 1) for i in range(layers)
        ]
        self.transformer = Transformer(width, arch['heads'],
                                       lt_bottleneck_ratio, drop_path_rates)
        self.ln_post = LayerNorm(width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random CLIP-style initialisation; LT modules start as identity.

        Embeddings ~ N(0, D^-1/2); attention and MLP weights use CLIP's
        depth-scaled normal stds; biases zero; LayerNorm (1, 0).
        """
        width, layers = self.width, self.layers
        attn_std = width**-0.5
        proj_std = attn_std * (2 * layers)**-0.5
        fc_std = (2 * width)**-0.5
        self.conv1.reset_parameters()
        nn.init.normal_(self.class_embedding, std=attn_std)
        nn.init.normal_(self.positional_embedding, std=attn_std)
        for norm in (self.ln_pre, self.ln_post):
            norm.reset_parameters()
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.zeros_(block.attn.in_proj_bias)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
            for linear in (block.attn.out_proj, block.mlp.c_fc,
                           block.mlp.c_proj):
                nn.init.zeros_(linear.bias)
            for module in (block.ln_1, block.ln_2, block.lmhra1, block.lmhra2):
                module.reset_parameters()

    def get_pos_embed(self, grid: Tuple[int, int]) -> Tensor:
        """Position table ``(1 + h*w, D)`` for a ``grid`` ``(h, w)`` of patches."""
        return resize_pos_embed(self.positional_embedding, self.grid_size, grid,
                                self.interpolate_mode)

    def _run_block(self, block: ResidualAttentionBlock, x: Tensor,
                   num_frames: Optional[int]) -> Tensor:
        if self.with_cp and torch.is_grad_enabled():
            return checkpoint(block, x, num_frames, use_reentrant=False)
        return block(x, num_frames)

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        """Encode images ``(B, 3, H, W)`` or videos ``(B, 3, T, H, W)``.

        See the class docstring for the returned shapes.
        """
        if x.dim() not in (4, 5):
            raise ValueError(f'expected NCHW or NCTHW input, got {tuple(x.shape)}')
        is_video = x.dim() == 5
        # Images take the video path as one-frame clips, without LT modules.
        num_frames = x.shape[2] if is_video else None
        x = self.conv1(x if is_video else x.unsqueeze(2))  # (B, D, T, h, w)
        batch, width, frames, h, w = x.shape
        # Frames become batch entries, t the minor index: (B*T, h*w, D).
        x = x.permute(0, 2, 3, 4, 1).reshape(batch * frames, h * w, width)
        cls_token = self.class_embedding.expand(batch * frames, 1, width)
        x = torch.cat([cls_token, x], dim=1) + self.get_pos_embed((h, w))
        x = self.ln_pre(x)

        feature_maps = []
        for index, block in enumerate(self.transformer.resblocks):
            x = self._run_block(block, x, num_frames)
            if self.out_indices is not None and index in self.out_indices:
                patches = x[:, 1:].reshape(batch, frames, h, w, width)
                patches = patches.permute(0, 4, 1, 2, 3)  # (B, D, T, h, w)
                feature_maps.append(patches if is_video else patches.squeeze(2))
                if index == self.out_indices[-1]:
                    return tuple(feature_maps)

        if is_video:
            # [mean_t(CLS_t), patches of frame 0, ..., frame T-1]
            x = x.view(batch, frames, 1 + h * w, width)
            cls_token = x[:, :, 0].mean(dim=1, keepdim=True)
            patches = x[:, :, 1:].reshape(batch, frames * h * w, width)
            x = torch.cat([cls_token, patches], dim=1)
        return self.ln_post(x)
