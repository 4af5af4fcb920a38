# Tiny version of the Kinetics-400 config for CPU tests: a 2-block encoder on
# 4-frame 32x32 clips of a square moving left or right (2 classes). The test
# fills in the VideoDataset annotation lists it generates.
_base_ = [
    '../../../configs/action_recognition/'
    'mplug2_vit-l14_k710-pre_u8_kinetics400-rgb.py'
]

num_frames = 4
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, width=32, layers=2, heads=2, patch_size=8),
        img_size=32,
        drop_path_rate=0.,
        with_cp=False,
        init_cfg=None),
    cls_head=dict(in_channels=32, num_classes=2, dropout_ratio=0.))

# No horizontal flip: it would turn "moving left" into "moving right".
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=2,
         test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
data_root = 'data/moving_shapes/videos'
ann_file = 'data/moving_shapes/train_list_videos.txt'
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        ann_file=ann_file, data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        ann_file=ann_file, data_prefix=dict(video=data_root),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=100)
param_scheduler = []
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    constructor='mplug2.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(layer_decay_rate=1.0))
default_hooks = dict(
    checkpoint=dict(interval=-1, save_best=None), logger=dict(interval=1))
log_processor = dict(by_epoch=False)
