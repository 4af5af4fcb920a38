# MSR-VTT text-video retrieval, 1k-A split (JSFusion, Yu et al. 2018): train on the 9k split
# (9,000 videos x 20 captions = 180k pairs), test on 1,000 videos with one caption each. No
# validation split: validation runs on the 1k-A test videos (common practice for this split).
# The official mPLUG-2 release has no retrieval code; frames and transforms follow its video
# tasks (16 frames at 224; RandomResizedCrop + flip for training, nearest resize at test).
#
# Expected data layout (details and converters: docs/datasets.md):
#   data/msrvtt/
#     videos/all/video0.mp4 ... video9999.mp4
#     annotations/retrieval_train.jsonl  retrieval_test1k.jsonl
# {"clip_name": "video7010", "caption": "..." or [...]} per line
# (tools/dataset_converters/convert_msrvtt.py --train-csv MSRVTT_train.9k.csv --test-csv
#  MSRVTT_JSFUSION_test.csv).
dataset_type = 'VideoRetrievalDataset'
data_root = 'data/msrvtt/'
video_prefix = dict(video='videos/all')

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
        ann_file='annotations/retrieval_test1k.jsonl',
        data_prefix=video_prefix,
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
        ann_file='annotations/retrieval_test1k.jsonl',
        data_prefix=video_prefix,
        pipeline=test_pipeline,
        test_mode=True))

# Text-to-video and video-to-text R@1/5/10, MedR, MeanR and R_mean. The task config must run
# MPLUG2RetrievalValLoop / MPLUG2RetrievalTestLoop (they produce the score matrices).
val_evaluator = dict(type='RetrievalMetric', topk=(1, 5, 10))
test_evaluator = val_evaluator
