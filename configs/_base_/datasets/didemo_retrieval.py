# DiDeMo paragraph-to-video retrieval (Hendricks et al. 2017; protocol of ClipBERT / Frozen in
# Time): all the sentences of a video are joined into one paragraph query (is_paragraph=True);
# 8,395 train / 1,065 val / 1,004 test videos. Validation runs on the test split unless you
# point val_dataloader at a retrieval_val.jsonl of the 1,065 validation videos.
# Frames and transforms as the official mPLUG-2 video tasks (16 frames at 224).
#
# Expected data layout (details: docs/datasets.md):
#   data/didemo/
#     videos/<flickr id>.mp4 ...   (mixed extensions are resolved through video_exts)
#     annotations/retrieval_train.jsonl  retrieval_test.jsonl
# {"clip_name": "...", "caption": ["sentence 1", "sentence 2", ...]} per line.
dataset_type = 'VideoRetrievalDataset'
data_root = 'data/didemo/'
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

# Training: batch 4 per GPU (as the official video tasks). Test: one sample per video with all
# its texts; the retrieval loops gather every rank's features, so the DefaultSampler order
# (shuffle=False) is all they need.
train_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/retrieval_train.jsonl',
        data_prefix=video_prefix,
        is_paragraph=True,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/retrieval_test.jsonl',
        data_prefix=video_prefix,
        is_paragraph=True,
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/retrieval_test.jsonl',
        data_prefix=video_prefix,
        is_paragraph=True,
        pipeline=test_pipeline,
        test_mode=True))

# Text-to-video and video-to-text R@1/5/10, MedR, MeanR and R_mean. The task config must run
# MPLUG2RetrievalValLoop / MPLUG2RetrievalTestLoop (they produce the score matrices).
val_evaluator = dict(type='RetrievalMetric', topk=(1, 5, 10))
test_evaluator = val_evaluator
