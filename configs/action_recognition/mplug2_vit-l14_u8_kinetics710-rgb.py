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


def _k710_set(split, pipeline):
    """The K400, K600 and K700 lists of one split ('train' or 'val') as one dataset."""
    test_mode = split == 'val'
    return dict(
        type='ConcatDataset',
        datasets=[
            dict(
                type='VideoDataset',
                ann_file=f'{k710_root}{name}_{split}_list_videos.txt',
                data_prefix=dict(video=roots[1] if test_mode else roots[0]),
                pipeline=pipeline,
                test_mode=test_mode) for name, roots in sources.items()
        ])


train_dataloader = dict(dataset=_k710_set('train', {{_base_.train_pipeline}}))
val_dataloader = dict(dataset=_k710_set('val', {{_base_.val_pipeline}}))
# Test: the validation lists with the multi-view test pipeline.
test_dataloader = dict(dataset=_k710_set('val', {{_base_.test_pipeline}}))

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
