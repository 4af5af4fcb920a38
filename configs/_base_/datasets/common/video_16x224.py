# What the video-text dataset bases (configs/_base_/datasets/*.py) share: the official mPLUG-2
# video-task frames and transforms (16 frames at 224) and the dataloader settings. A dataset base
# inherits this file, puts its text-cleaning transform (CleanQuestion / CleanCaption) in front of
# the pipelines it cleans, and sets the dataset of each loader (type, data_root, ann_file,
# data_prefix).

# Official training transforms (random segment frames, RandomResizedCrop(224, scale 0.5-1),
# horizontal flip, temporally consistent RandAugment N=2 M=5; drop it for the official
# --no_randaug). CLIP mean/std are applied by MPLUG2DataPreprocessor.
train_pipeline = [
    dict(type='LoadVideoFrames', num_frames=16),
    dict(type='mmaction.RandomResizedCrop', area_range=(0.5, 1.0),
         aspect_ratio_range=(3 / 4, 4 / 3)),
    dict(type='VideoResize', scale=224, interpolation='bicubic'),
    dict(type='mmaction.Flip', flip_ratio=0.5),
    dict(type='TemporalConsistentRandAugment', num_ops=2, magnitude=5),
    dict(type='PackMultimodalInputs'),
]
# Official test transforms: the middle frame of each of 16 segments, torch nearest resize to
# 224x224 (aspect ratio not kept).
test_pipeline = [
    dict(type='LoadVideoFrames', num_frames=16, test_mode=True),
    dict(type='VideoResize', scale=224, interpolation='nearest'),
    dict(type='PackMultimodalInputs'),
]

# Official: batch 4 per GPU for training and test. A base that redefines a pipeline must set
# it again in its loaders (a variable changed in a child does not reach the loaders here).
train_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    # SeededSampler: each sample's random frames and augmentations depend only on (seed, epoch,
    # index), so a resumed run continues exactly as an uninterrupted one.
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
