# MSR-VTT captioning (Xu et al. 2016), the official split that mPLUG-2 reports: 6,513 train /
# 497 val / 2,990 test videos, 20 captions each. Official mPLUG-2 protocol: 16 frames at 224,
# prompt "a video of", beam 5, 4-20 tokens (set in the model config), COCO caption metrics.
# Training: one sample per (video, caption); test: one sample per video with all references.
# msvd_caption.py inherits this base.
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
_base_ = ['./common/video_16x224.py']

dataset_type = 'VideoCaptionDataset'
data_root = 'data/msrvtt/'
video_prefix = dict(video='videos/all')

# Training: the official frames and transforms (common/video_16x224.py) after the official
# caption cleaning (lower case, punctuation removed, the first 80 words). Test: the official test
# transforms (common/video_16x224.py) without text cleaning: the references stay as written,
# lower-cased by the dataset (the metric tokenises them with the PTB tokenizer).
train_pipeline = [dict(type='CleanCaption', max_words=80), *_base_.train_pipeline]

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/caption_train.jsonl',
        data_prefix=video_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/caption_val.jsonl',
        data_prefix=video_prefix))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file='annotations/caption_test.jsonl'))

# BLEU-1..4, METEOR, ROUGE-L, CIDEr with the PTB tokenizer (pycocoevalcap; METEOR and the
# tokenizer need Java).
val_evaluator = dict(type='CaptionMetric')
test_evaluator = val_evaluator
