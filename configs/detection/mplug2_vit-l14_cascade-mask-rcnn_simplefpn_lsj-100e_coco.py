# COCO detection and instance segmentation with the mPLUG-2 ViT-L/14 vision
# encoder as a ViTDet plain backbone in mmdet's Cascade Mask R-CNN:
#   backbone: image path of the encoder, windowed attention in all blocks but
#             four global ones, the 224-px position table interpolated to the
#             input grid, last map resampled from stride 14 to stride 16;
#   neck:     SimpleFPN with LN2d (strides 4, 8, 16, 32 + max-pool 64);
#   heads:    RPN with 2 convs; three cascade stages of Shared4Conv1FCBBoxHead
#             and an FCN mask head, all normalised with LN2d (channels-first
#             LayerNorm, ViTDet's "LN" for conv heads);
#   data:     large-scale jitter (LSJ) at 1024x1024, BatchFixedSizePad,
#             100 epochs (mmdet's lsj-100e: RepeatDataset x4, 25 epochs);
#   optim:    AdamW lr 1e-4, weight decay 0.1, layer-wise lr decay 0.8 (ViTDet
#             uses 0.7 for ViT-B, 0.8 for ViT-L, 0.9 for ViT-H), drop path 0.4.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::common/lsj-100e_coco-instance.py',
]

default_scope = 'mmdet'
custom_imports = dict(
    imports=[
        'mplug2.models.backbones.mplug2_vit_adapters',
        'mplug2.models.necks.simple_fpn',
        'mplug2.engine.optimizers',
    ],
    allow_failed_imports=False)

image_size = (1024, 1024)
norm_cfg = dict(type='mplug2.LN2d', requires_grad=True)
batch_augments = [dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]

# Box-regression target stds of the three cascade stages (mmdet defaults).
cascade_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                       [0.033, 0.033, 0.067, 0.067]]

model = dict(
    data_preprocessor=dict(
        # CLIP normalisation, the encoder's pre-training one (RGB, 0-255).
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        batch_augments=batch_augments),
    backbone=dict(
        _delete_=True,
        type='mplug2.MPLUG2ViTDetBackbone',
        arch='l/14',
        img_size=224,  # pre-training resolution: size of the position table
        window_size=16,  # the 16x16 grid the encoder was pre-trained on
        global_attn_indexes=(5, 11, 17, 23),
        use_cls_token=True,
        out_stride=16,  # 73x73 stride-14 map -> 64x64 stride-16 map
        drop_path_rate=0.4,
        with_cp=True,
        # Start from mPLUG-2: `vision_encoder.*` of the checkpoint -> backbone.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mplug2_vit-l14_pretrain.pth',
            prefix='vision_encoder.')),
    neck=dict(
        _delete_=True,
        type='mplug2.SimpleFPN',
        backbone_channel=1024,
        in_channels=[256, 512, 1024, 1024],
        out_channels=256,
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=[
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                norm_cfg=norm_cfg,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=target_stds),
                reg_class_agnostic=True,
                loss_cls=dict(
                    type='CrossEntropyLoss', use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for target_stds in cascade_target_stds
        ],
        mask_head=dict(norm_cfg=norm_cfg)))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='mplug2.LayerDecayOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.8))

max_epochs = 25  # x RepeatDataset(times=4) = 100 COCO epochs
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[22, 24], gamma=0.1),
]
train_cfg = dict(max_epochs=max_epochs)
# batch 64 = 32 GPUs x 2 images (mmdet's LSJ base)
auto_scale_lr = dict(base_batch_size=64)

# Test at the training scale (longer side 1024), as ViTDet.
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
