# Stage 1 of the paper's video classification schedule: fine-tune mPLUG-2
# ViT-L/14 on Kinetics-710 (the union of the K400, K600 and K700 training
# sets, 710 classes, validation videos of all three removed) for 40 epochs.
# Stage 2 then fine-tunes for 5 epochs per dataset:
# mplug2_vit-l14_k710-pre_u8_kinetics{400,600,700}-rgb.py.
#
# Annotations: VideoDataset lists ("<video path> <label>") whose labels are
# already K710 class ids, one list per source dataset (mmaction2's
# tools/data/kinetics710 layout).
_base_ = ['./_base_/mplug2_vit-l14_u8_recognizer3d.py']

model = dict(cls_head=dict(num_classes=710))

k710_root = 'data/kinetics710/'
sources = dict(
    k400=('data/kinetics400/videos_train', 'data/kinetics400/videos_val'),
    k600=('data/kinetics600/videos', 'data/kinetics600/videos'),
    k700=('data/kinetics700/videos', 'data/kinetics700/videos'))


def _video_set(split, root, pipeline, test_mode=False):
    return dict(
        type='VideoDataset',
        ann_file=split,
        data_prefix=dict(video=root),
        pipeline=pipeline,
        test_mode=test_mode)


train_dataloader = dict(
    batch_size=8,  # x 32 GPUs = 256
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            _video_set(f'{k710_root}{name}_train_list_videos.txt', roots[0],
                       {{_base_.train_pipeline}})
            for name, roots in sources.items()
        ]))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            _video_set(f'{k710_root}{name}_val_list_videos.txt', roots[1],
                       {{_base_.val_pipeline}}, test_mode=True)
            for name, roots in sources.items()
        ]))
test_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            _video_set(f'{k710_root}{name}_val_list_videos.txt', roots[1],
                       {{_base_.test_pipeline}}, test_mode=True)
            for name, roots in sources.items()
        ]))

max_epochs = 40
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1,
    val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, eta_min_ratio=0.01,
         by_epoch=True, begin=5, end=max_epochs, convert_to_iter_based=True),
]
optim_wrapper = dict(optimizer=dict(lr=1e-5))
auto_scale_lr = dict(enable=False, base_batch_size=256)
