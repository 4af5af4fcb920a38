# mPLUG-2 ViT-L/14 video encoder (with its local temporal modules) in
# mmaction2's Recognizer3D: shared model, pipelines, loader settings and
# optimiser of the Kinetics configs in this folder.
#
# Frames / resolution: 8 frames sampled uniformly (UniformSample, one segment
# per frame) at 224x224, the setting the paper reports for the ViT-L/14 model
# ("u8"); a 16-frame variant only needs clip_len=16 in the three
# UniformSample steps (the encoder has no temporal position table, so the
# same weights take any number of frames).
_base_ = ['mmaction::_base_/default_runtime.py']

default_scope = 'mmaction'
custom_imports = dict(
    imports=[
        'mplug2.models.backbones.mplug2_vit_adapters',
        'mplug2.engine.optimizers',
    ],
    allow_failed_imports=False)

num_frames = 8

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='mplug2.MPLUG2VideoBackbone',
        arch='l/14',
        img_size=224,
        drop_path_rate=0.2,
        with_cp=True,
        # token 0: the mean over frames of the frame CLS tokens -> (N, 1024)
        out_type='cls_token',
        # Start from mPLUG-2: the `vision_encoder.*` weights of a checkpoint
        # (converted official release or one of ours) map 1:1 onto the
        # backbone. Override with
        # --cfg-options model.backbone.init_cfg.checkpoint=PATH
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mplug2_vit-l14_pretrain.pth',
            prefix='vision_encoder.')),
    cls_head=dict(
        type='TimeSformerHead',
        in_channels=1024,
        num_classes=400,
        dropout_ratio=0.5,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        # CLIP normalisation (RGB, 0-255 scale), the encoder's pre-training one
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        format_shape='NCTHW'))

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='UniformSample', clip_len=num_frames, num_clips=1,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
# Multi-view testing: 4 temporal clips x 3 spatial crops, scores averaged.
test_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='UniformSample', clip_len=num_frames, num_clips=4,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]

# Loader settings; the Kinetics configs set the datasets.
train_dataloader = dict(
    batch_size=8,  # x 32 GPUs = 256
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# AdamW; layer_decay_rate=1.0 keeps one lr for the whole encoder and only
# applies the weight-decay rules (none for norms, biases, embeddings).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    constructor='mplug2.LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0),
    clip_grad=dict(max_norm=20, norm_type=2))

default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3),
    logger=dict(interval=100))
