"""ViTDet's simple feature pyramid (Li et al., ECCV 2022, Sec. 3) for mmdet.

A plain ViT gives one feature map of stride 16 (or the patch size). ViTDet builds
the pyramid from that map alone, with no top-down or lateral fusion between
levels:

    stride  4: deconv 2x2/2 -> LN2d -> GELU -> deconv 2x2/2   (D -> D/2 -> D/4)
    stride  8: deconv 2x2/2                                   (D -> D/2)
    stride 16: identity                                       (D)
    stride 32: max-pool 2x2/2                                 (D)

then each level gets a 1x1 conv + LN2d and a 3x3 conv + LN2d to ``out_channels``,
and extra levels (stride 64, ...) are max-pools (kernel 1, stride 2) of the last
one, as mmdet's ``FPN`` does for ``num_outs`` > 4.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from mplug2.registry import MODELS

__all__ = ['LN2d', 'SimpleFPN']


@MODELS.register_module()
class LN2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` map (ViTDet's LN2d).

    Usable as ``norm_cfg=dict(type='mplug2.LN2d')`` in mmcv's ``ConvModule``
    and mmdet heads; parameters are ``weight``/``bias`` of shape ``(C,)``.
    """

    _abbr_ = 'ln'  # name of the norm layer inside mmcv's ConvModule

    def __init__(self, num_channels: int, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(num_channels, eps=eps, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


@MODELS.register_module()
class SimpleFPN(BaseModule):
    """Simple feature pyramid of ViTDet from a single backbone map.

    Args:
        backbone_channel: Channels D of the backbone map.
        in_channels: Channels of the four pyramid inputs before the output
            convolutions; default ``[D/4, D/2, D, D]`` (what the stride 4, 8,
            16 and 32 branches produce).
        out_channels: Channels of every output level.
        num_outs: Number of outputs (>= 4); levels past 4 are max-pools.
        norm_cfg: Norm of the branches and output convolutions; default
            :class:`LN2d`. In configs: ``dict(type='mplug2.LN2d')``.
        act_cfg: Activation between the two stride-4 deconvolutions.
        init_cfg: MMEngine init config.

    :meth:`forward` takes the map ``(B, D, h, w)`` (or a tuple/list whose last
    item is that map) and returns ``num_outs`` maps of strides 4, 8, 16, 32,
    64, ... relative to a stride-16 input.
    """

    def __init__(self,
                 backbone_channel: int,
                 out_channels: int,
                 in_channels: Optional[Sequence[int]] = None,
                 num_outs: int = 5,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        dim = backbone_channel
        if in_channels is None:
            in_channels = [dim // 4, dim // 2, dim, dim]
        if len(in_channels) != 4:
            raise ValueError('SimpleFPN has four branches; got in_channels '
                             f'{list(in_channels)}')
        if num_outs < 4:
            raise ValueError(f'num_outs must be at least 4, got {num_outs}')
        if norm_cfg is None:
            norm_cfg = dict(type=LN2d)
        self.backbone_channel = dim
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs

        # The four scale branches (x4, x2, x1, x0.5 of the input resolution).
        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 2, kernel_size=2, stride=2),
            build_norm_layer(norm_cfg, dim // 2)[1],
            build_activation_layer(act_cfg),
            nn.ConvTranspose2d(dim // 2, in_channels[0], kernel_size=2,
                               stride=2))
        self.fpn2 = nn.ConvTranspose2d(dim, in_channels[1], kernel_size=2,
                                       stride=2)
        self.fpn3 = nn.Identity() if in_channels[2] == dim else nn.Conv2d(
            dim, in_channels[2], kernel_size=1)
        self.fpn4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Identity() if in_channels[3] == dim else nn.Conv2d(
                dim, in_channels[3], kernel_size=1))

        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
            for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1,
                       norm_cfg=norm_cfg, act_cfg=None)
            for _ in in_channels)

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, ...]:
        if not isinstance(x, Tensor):
            x = x[-1]
        inputs = [self.fpn1(x), self.fpn2(x), self.fpn3(x), self.fpn4(x)]
        outs = [
            fpn_conv(lateral_conv(feat)) for feat, lateral_conv, fpn_conv in
            zip(inputs, self.lateral_convs, self.fpn_convs)
        ]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)

