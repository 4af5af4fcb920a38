# TGIF-QA FrameQA (Jang et al. 2017): open-ended QA answerable from single frames of animated
# GIFs; 39,392 train / 13,691 test questions. Official mPLUG-2 protocol: 16 frames at 224 for
# train and test (GIFs are read with PIL), generated answers, exact-match accuracy.
# There is no validation split: validation runs on the test split (as the official code).
#
# Expected data layout (details and converters: docs/datasets.md):
#   data/tgif/
#     gifs/tumblr_nk172bbdPI1u1lr18o1_250.gif ...
#     annotations/frameqa_train.jsonl  frameqa_test.jsonl  frameqa_ans2label.json
# frameqa_*.jsonl: {"video_id": "tumblr_...", "question": "...", "answer": "..."} per line
# (tools/dataset_converters/convert_videoqa.py Train_frameqa_question.tsv OUT.jsonl
#  --format tgif-frameqa).
dataset_type = 'VideoQADataset'
data_root = 'data/tgif/'
video_prefix = dict(video='gifs')

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
        ann_file='annotations/frameqa_train.jsonl',
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
        ann_file='annotations/frameqa_test.jsonl',
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
        ann_file='annotations/frameqa_test.jsonl',
        data_prefix=video_prefix,
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='VideoQAAccuracy')
test_evaluator = val_evaluator
