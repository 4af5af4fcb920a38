# Tiny version of the ImageNet-1K config for CPU tests: a 2-block encoder on
# 32x32 crops of synthetic images in mmpretrain's CustomDataset folder format
# (one sub-folder per class). The test fills in the data root.
_base_ = [
    '../../../configs/image_classification/'
    'mplug2_vit-l14_32xb128_in1k-224px.py'
]

data_preprocessor = dict(num_classes=2)
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, width=32, layers=2, heads=2, patch_size=8),
        img_size=32,
        drop_path_rate=0.,
        init_cfg=None),
    head=dict(num_classes=2, in_channels=32, topk=(1, )))

# The paper's augmentations at 32 px.
bgr_mean = [104.09373615, 116.7460125, 122.770938]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2,
         total_level=10, magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean],
                      interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3, fill_color=bgr_mean),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=32, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
data_root = 'data/shapes'
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True, type='CustomDataset', data_root=data_root,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=100)
param_scheduler = []
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(lr=1e-3), clip_grad=None)
default_hooks = dict(checkpoint=dict(interval=-1), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
