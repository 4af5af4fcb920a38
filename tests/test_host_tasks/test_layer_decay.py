"""Layer-wise lr decay constructor: hand-computed lr / weight decay per block."""
import pytest
import torch
from torch import nn

from .conftest import TINY_ARCH


class TinyDetector(nn.Module):
    """backbone (2-block mPLUG-2 encoder) + neck + head, host-model naming."""

    def __init__(self):
        super().__init__()
        from mplug2.models.backbones.mplug2_vit_adapters import \
            MPLUG2ViTDetBackbone
        self.backbone = MPLUG2ViTDetBackbone(arch=TINY_ARCH, img_size=32,
                                             window_size=2)
        self.neck = nn.Conv2d(32, 8, 1)
        self.head = nn.Linear(8, 2)


def build(paramwise_cfg, model):
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='mplug2.LayerDecayOptimWrapperConstructor',
        optim_wrapper_cfg=dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        paramwise_cfg=paramwise_cfg))
    optim_wrapper = constructor(model)
    lr, wd = {}, {}
    for group in optim_wrapper.optimizer.param_groups:
        for name in group['param_names']:
            lr[name] = group['lr']
            wd[name] = group['weight_decay']
    return optim_wrapper, lr, wd


def test_layer_decay_rates_by_hand():
    """L = 2 blocks, r = 0.5: embeddings 0.5^3, block 0 0.5^2, block 1 0.5,
    neck/head 1; no weight decay for biases, norms, class/position tables."""
    model = TinyDetector()
    optim_wrapper, lr, wd = build(dict(layer_decay_rate=0.5), model)
    expected_lr = {
        'backbone.conv1.weight': 0.125,
        'backbone.class_embedding': 0.125,
        'backbone.positional_embedding': 0.125,
        'backbone.ln_pre.weight': 0.125,
        'backbone.transformer.resblocks.0.attn.in_proj_weight': 0.25,
        'backbone.transformer.resblocks.0.mlp.c_fc.bias': 0.25,
        'backbone.transformer.resblocks.1.attn.out_proj.weight': 0.5,
        'backbone.transformer.resblocks.1.ln_2.weight': 0.5,
        'neck.weight': 1.0,
        'head.bias': 1.0,
    }
    for name, value in expected_lr.items():
        assert lr[name] == pytest.approx(value), name
    expected_wd = {
        'backbone.conv1.weight': 0.05,
        'backbone.class_embedding': 0.0,
        'backbone.positional_embedding': 0.0,
        'backbone.ln_pre.weight': 0.0,
        'backbone.transformer.resblocks.0.attn.in_proj_weight': 0.05,
        'backbone.transformer.resblocks.0.attn.in_proj_bias': 0.0,
        'backbone.transformer.resblocks.1.ln_2.weight': 0.0,
        'neck.weight': 0.05,
        'head.bias': 0.0,
    }
    for name, value in expected_wd.items():
        assert wd[name] == value, name
    # frozen, unused parameters are left out; all trainable ones are in
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(lr) == trainable
    assert not any('lmhra' in n or 'ln_post' in n for n in lr)
    # groups carry their scale; an optimisation step runs
    scales = sorted({g['lr_scale'] for g in optim_wrapper.optimizer.param_groups})
    assert scales == pytest.approx([0.125, 0.25, 0.5, 1.0])
    loss = model.head(model.neck(model.backbone(torch.randn(1, 3, 32, 32))[0])
                      .mean((2, 3))).sum()
    optim_wrapper.update_params(loss)


def test_layer_decay_prefix_and_num_layers():
    """Our own multimodal models keep the encoder under `vision_encoder.`;
    an explicit num_layers overrides the count."""
    from mplug2.models.backbones.dual_vision_encoder import DualVisionEncoder
    model = nn.Module()
    model.vision_encoder = DualVisionEncoder(arch=TINY_ARCH, img_size=32)
    model.text = nn.Linear(4, 4)
    _, lr, _ = build(dict(layer_decay_rate=0.9,
                          encoder_prefix='vision_encoder.'), model)
    assert lr['vision_encoder.conv1.weight'] == pytest.approx(0.9**3)
    assert lr['vision_encoder.transformer.resblocks.1.lmhra2.up_proj.weight'] \
        == pytest.approx(0.9)
    assert lr['vision_encoder.ln_post.weight'] == 1.0
    assert lr['text.weight'] == 1.0
    _, lr, _ = build(dict(layer_decay_rate=0.9, num_layers=4,
                          encoder_prefix='vision_encoder.'), model)
    assert lr['vision_encoder.transformer.resblocks.0.attn.in_proj_weight'] \
        == pytest.approx(0.9**4)


def test_layer_decay_rejects_unknown_keys():
    with pytest.raises(KeyError, match='custom_keys'):
        build(dict(layer_decay_rate=0.5, custom_keys={}), TinyDetector())
