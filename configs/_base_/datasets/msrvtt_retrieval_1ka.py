# MSR-VTT text-video retrieval, 1k-A split (JSFusion, Yu et al. 2018): train on the 9k split
# (9,000 videos x 20 captions = 180k pairs), test on 1,000 videos with one caption each. No
# validation split: validation runs on the 1k-A test videos (common practice for this split).
# The official mPLUG-2 release has no retrieval code; frames and transforms follow its video
# tasks (16 frames at 224; RandomResizedCrop + flip for training, nearest resize at test).
# The other retrieval bases (didemo_retrieval.py, lsmdc_retrieval.py) inherit this one.
#
# Expected data layout (details and converters: docs/datasets.md):
#   data/msrvtt/
#     videos/all/video0.mp4 ... video9999.mp4
#     annotations/retrieval_train.jsonl  retrieval_test1k.jsonl
# {"clip_name": "video7010", "caption": "..." or [...]} per line
# (tools/dataset_converters/convert_msrvtt.py --train-csv MSRVTT_train.9k.csv --test-csv
#  MSRVTT_JSFUSION_test.csv).
_base_ = ['./common/video_16x224.py']

dataset_type = 'VideoRetrievalDataset'
data_root = 'data/msrvtt/'
video_prefix = dict(video='videos/all')

# The official frames and transforms (common/video_16x224.py) after the official caption
# cleaning (lower case, punctuation removed) with the retrieval word limit, 256, for training
# and test texts alike.
train_pipeline = [dict(type='CleanCaption', max_words=256), *_base_.train_pipeline]
test_pipeline = [dict(type='CleanCaption', max_words=256), *_base_.test_pipeline]

# Training: batch 4 per GPU (as the official video tasks). Test: one sample per video with all
# its texts, 8 videos per GPU; the retrieval loops gather every rank's features, so the
# DefaultSampler order (shuffle=False) is all they need.
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/retrieval_train.jsonl',
        data_prefix=video_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/retrieval_test1k.jsonl',
        data_prefix=video_prefix,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# Text-to-video and video-to-text R@1/5/10, MedR, MeanR and R_mean. The task config must run
# MPLUG2RetrievalValLoop / MPLUG2RetrievalTestLoop (they produce the score matrices).
val_evaluator = dict(type='RetrievalMetric', topk=(1, 5, 10))
test_evaluator = val_evaluator
