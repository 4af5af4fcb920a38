# MSVD captioning (Chen & Dolan 2011): 1,970 YouTube clips, about 40 English captions each;
# the standard split is 1,200 train / 100 val / 670 test clips. Official mPLUG-2 protocol:
# 16 frames at 224, prompt "a video of", beam 5, 4-20 tokens (model config), COCO caption metrics.
# The official release ships only train and test files: validation runs on the test split.
# Training: one sample per (video, caption); test: one sample per video with all references.
#
# Expected data layout (details: docs/datasets.md):
#   data/msvd/
#     videos/-4wsuPCjDBc_5_15.avi ...
#     annotations/caption_train.jsonl  caption_test.jsonl
# train: {"video_id": "-4wsuPCjDBc_5_15", "caption": "..."}; test: {"video_id": ...,
# "golden_captions": [...]} (the official mPLUG-2 jsonl files need no conversion).
dataset_type = 'VideoCaptionDataset'
data_root = 'data/msvd/'
video_prefix = dict(video='videos')

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

# Official: batch 4 per GPU for training and test.
train_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/caption_train.jsonl',
        data_prefix=video_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/caption_test.jsonl',
        data_prefix=video_prefix,
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/caption_test.jsonl',
        data_prefix=video_prefix,
        pipeline=test_pipeline,
        test_mode=True))

# BLEU-1..4, METEOR, ROUGE-L, CIDEr with the PTB tokenizer (pycocoevalcap; METEOR and the
# tokenizer need Java).
val_evaluator = dict(type='CaptionMetric')
test_evaluator = val_evaluator
