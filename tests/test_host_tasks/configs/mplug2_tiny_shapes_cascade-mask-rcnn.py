# Tiny version of the COCO Cascade Mask R-CNN config for CPU tests: a 2-block
# encoder (patch 16, windows of 2x2 patches, block 1 global), 16-channel
# neck and heads, 64x64 images with LSJ, a 2-class COCO json the test writes.
_base_ = [
    '../../../configs/detection/'
    'mplug2_vit-l14_cascade-mask-rcnn_simplefpn_lsj-100e_coco.py'
]

image_size = (64, 64)
channels = 16
classes = ('square', 'triangle')
norm_cfg = dict(type='mplug2.LN2d', requires_grad=True)
cascade_target_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                       [0.033, 0.033, 0.067, 0.067]]

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)
    ]),
    backbone=dict(
        arch=dict(_delete_=True, width=32, layers=2, heads=2, patch_size=16),
        img_size=32,
        window_size=2,
        global_attn_indexes=(1, ),
        out_stride=None,
        drop_path_rate=0.,
        with_cp=False,
        init_cfg=None),
    neck=dict(
        backbone_channel=32, in_channels=[8, 16, 32, 32],
        out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=[
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=channels,
                conv_out_channels=channels,
                fc_out_channels=32,
                roi_feat_size=7,
                num_classes=len(classes),
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
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            in_channels=channels, conv_out_channels=channels,
            num_classes=len(classes))),
    # keep every detection so that predict returns masks to check
    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=10)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.25),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
data_root = 'data/shapes_coco/'
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations.json',
        data_prefix=dict(img='images/'),
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations.json')
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=100)
param_scheduler = []
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(layer_decay_rate=0.7))
default_hooks = dict(checkpoint=dict(interval=-1), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
