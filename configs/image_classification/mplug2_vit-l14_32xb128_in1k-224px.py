# ImageNet-1K fine-tuning of the mPLUG-2 ViT-L/14 vision encoder (image path:
# spatial modules only, the local temporal modules are unused and frozen) in
# mmpretrain's ImageClassifier with a linear head on the CLS token.
#
# Paper recipe: RandomResizedCrop + flip + RandAugment + RandomErasing (the
# pipeline of mmpretrain's imagenet_bs64_swin_224 base), AdamW with lr 6e-5 at
# batch 4096 (32 GPUs x 128), 30 epochs, layer-wise lr decay.
# Assumptions (not stated in the paper): layer decay 0.75, weight decay 0.05,
# 5 warm-up epochs then cosine decay, label smoothing 0.1, drop path 0.2.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

default_scope = 'mmpretrain'
custom_imports = dict(
    imports=[
        'mplug2.models.backbones.mplug2_vit_adapters',
        'mplug2.engine.optimizers',
    ],
    allow_failed_imports=False)

# CLIP normalisation, the encoder's pre-training one (RGB, 0-255 scale).
data_preprocessor = dict(
    num_classes=1000,
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mplug2.MPLUG2ImageBackbone',
        arch='l/14',
        img_size=224,
        drop_path_rate=0.2,
        out_type='cls_token',
        # Paper ablation (Table 16): `universal_layers=dict(...)` puts the
        # universal layers after the encoder, see
        # mplug2_vit-l14-universal_32xb128_in1k-224px.py.
        # Start from mPLUG-2: `vision_encoder.*` of the checkpoint -> backbone.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mplug2_vit-l14_pretrain.pth',
            prefix='vision_encoder.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=2e-5)))

train_dataloader = dict(batch_size=128, num_workers=8)  # x 32 GPUs = 4096
val_dataloader = dict(batch_size=128, num_workers=8)
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mplug2.LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=6e-5, weight_decay=0.05, eps=1e-8,
        betas=(0.9, 0.999)),
    paramwise_cfg=dict(layer_decay_rate=0.75),
    clip_grad=dict(max_norm=5.0))

max_epochs = 30
warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-7, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
auto_scale_lr = dict(base_batch_size=4096)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))
