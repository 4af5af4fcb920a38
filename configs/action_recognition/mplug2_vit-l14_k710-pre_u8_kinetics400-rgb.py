# Stage 2 of the paper's video classification schedule: starting from the
# Kinetics-710 model (mplug2_vit-l14_u8_kinetics710-rgb.py), fine-tune 5 epochs
# on Kinetics-400. The backbone is initialised from the K710 checkpoint (keys
# `backbone.*`); the 400-way head starts from scratch.
_base_ = ['./_base_/mplug2_vit-l14_u8_recognizer3d.py']

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/mplug2_vit-l14_u8_kinetics710-rgb/'
            'epoch_40.pth',
            prefix='backbone.')),
    cls_head=dict(num_classes=400))

dataset_type = 'VideoDataset'
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline={{_base_.val_pipeline}},
        test_mode=True))
# Test: the validation videos with the multi-view test pipeline.
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], pipeline={{_base_.test_pipeline}}))

max_epochs = 5
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1,
    val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min_ratio=0.01,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
optim_wrapper = dict(optimizer=dict(lr=2e-6))
auto_scale_lr = dict(enable=False, base_batch_size=256)
