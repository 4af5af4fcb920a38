"""ViTDet adapter (windowed attention) and SimpleFPN neck."""
import pytest
import torch

from .conftest import TINY_ARCH, randomised_encoder


def vitdet_from(encoder, **kwargs):
    from mplug2.models.backbones.mplug2_vit_adapters import \
        MPLUG2ViTDetBackbone
    backbone = MPLUG2ViTDetBackbone(arch=TINY_ARCH, img_size=32, **kwargs)
    backbone.load_state_dict(encoder.state_dict())
    return backbone.eval()


@pytest.mark.parametrize('window_size', [4, 5, 7])
def test_window_covering_grid_equals_global_encoder(window_size):
    """A window covering the whole 4x4 grid (exactly, or padded to 5x5 / 7x7
    with the padding masked) reproduces the global-attention encoder."""
    encoder = randomised_encoder(TINY_ARCH, 32)
    encoder.out_indices = (TINY_ARCH['layers'] - 1, )
    backbone = vitdet_from(encoder, window_size=window_size,
                           global_attn_indexes=(1, ))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        (expected, ) = encoder(images)  # (B, D, 4, 4), last block
        (feature_map, ) = backbone(images)
    assert feature_map.shape == expected.shape == (2, 32, 4, 4)
    torch.testing.assert_close(feature_map, expected, rtol=1e-5, atol=1e-5)


def test_smaller_windows_differ_and_without_cls_token():
    encoder = randomised_encoder(TINY_ARCH, 32, std=0.2)  # peaked attention
    encoder.out_indices = (TINY_ARCH['layers'] - 1, )
    images = torch.randn(1, 3, 40, 48)  # 5x6 grid: position table resized
    with torch.no_grad():
        (expected, ) = encoder(images)
        (windowed, ) = vitdet_from(encoder, window_size=2,
                                   global_attn_indexes=(1, ))(images)
        # without the CLS token: all-global equals big windows
        no_cls_global = vitdet_from(encoder, use_cls_token=False,
                                    global_attn_indexes=(0, 1))(images)[0]
        no_cls_window = vitdet_from(encoder, use_cls_token=False,
                                    window_size=6,
                                    global_attn_indexes=())(images)[0]
    assert windowed.shape == expected.shape == (1, 32, 5, 6)
    assert (windowed - expected).abs().max() > 1e-2
    torch.testing.assert_close(no_cls_window, no_cls_global, rtol=1e-5,
                               atol=1e-5)
    assert (no_cls_global - expected).abs().max() > 1e-2


def test_window_partition_roundtrip():
    from mplug2.models.backbones.mplug2_vit_adapters import (
        window_partition, window_unpartition)
    x = torch.randn(2, 5, 7, 3)
    windows, valid, padded = window_partition(x, 3)
    assert windows.shape == (2 * 2 * 3, 9, 3) and padded == (6, 9)
    assert valid.shape == (12, 9) and valid.sum() == 2 * 5 * 7
    assert (windows[~valid] == 0).all()
    torch.testing.assert_close(window_unpartition(windows, 3, padded, (5, 7)), x)
    assert window_partition(x[:, :3, :6], 3)[1] is None


def test_default_global_blocks_and_out_stride():
    from mplug2.models.backbones.mplug2_vit_adapters import \
        MPLUG2ViTDetBackbone
    with torch.device('meta'):
        b12 = MPLUG2ViTDetBackbone(arch='b/16')
        l24 = MPLUG2ViTDetBackbone(arch='l/14')
    assert b12.global_attn_indexes == (2, 5, 8, 11)
    assert l24.global_attn_indexes == (5, 11, 17, 23)
    arch14 = dict(width=32, layers=2, heads=2, patch_size=14)
    backbone = MPLUG2ViTDetBackbone(arch=arch14, img_size=28, window_size=4,
                                    out_stride=16)
    # 100 px / 14 = 7 patches -> resampled to ceil(100 / 16) = 7; 130 -> 9
    assert backbone(torch.randn(1, 3, 100, 130))[0].shape == (1, 32, 7, 9)
    assert backbone(torch.randn(1, 3, 128, 128))[0].shape == (1, 32, 8, 8)


def test_simple_fpn_strides_and_ln2d():
    from mplug2.models.necks.simple_fpn import LN2d, SimpleFPN
    neck = SimpleFPN(backbone_channel=32, out_channels=16, num_outs=5)
    assert neck.in_channels == [8, 16, 32, 32]
    outs = neck((torch.randn(2, 32, 8, 8), ))
    assert [tuple(o.shape) for o in outs] == [
        (2, 16, 32, 32), (2, 16, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4),
        (2, 16, 2, 2)]
    assert isinstance(neck.lateral_convs[0].norm, LN2d)
    # LN2d normalises over channels at every position
    norm = LN2d(4)
    x = torch.randn(2, 4, 3, 5)
    expected = torch.nn.functional.layer_norm(
        x.permute(0, 2, 3, 1), (4, ), eps=norm.eps).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected)
