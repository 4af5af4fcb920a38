# MSR-VTT captioning (Xu et al. 2016), the official split that mPLUG-2 reports: 6,513 train /
# 497 val / 2,990 test videos, 20 captions each. Official mPLUG-2 protocol: 16 frames at 224,
# prompt "a video of", beam 5, 4-20 tokens (set in the model config), COCO caption metrics.
# Training: one sample per (video, caption); test: one sample per video with all references.
#
# 1k-A alternative: retrieval papers' JSFusion 1k-A test videos (with all 20 references each)
# are in caption_test1k.jsonl; set test_dataloader.dataset.ann_file to
# 'annotations/caption_test1k.jsonl'. Those numbers are not comparable with the 2,990-video
# ones (see docs/datasets.md, "The MSRVTT caption test split").
#
# Expected data layout (details and converters: docs/datasets.md):
#   data/msrvtt/
#     videos/all/video0.mp4 ... video9999.mp4
#     annotations/caption_train.jsonl  caption_val.jsonl  caption_test.jsonl  [caption_test1k.jsonl]
# train: {"video_id": "video0", "caption": "..."}; test: {"video_id": ..., "golden_captions": [...]}
# (tools/dataset_converters/convert_msrvtt.py writes all of them).
dataset_type = 'VideoCaptionDataset'
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
        ann_file='annotations/caption_val.jsonl',
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
