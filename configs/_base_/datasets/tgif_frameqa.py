# TGIF-QA FrameQA (Jang et al. 2017): open-ended QA answerable from single frames of animated
# GIFs; 39,392 train / 13,691 test questions. Official mPLUG-2 protocol: 16 frames at 224 for
# train and test (GIFs are read with PIL), generated answers, exact-match accuracy.
# As msrvtt_qa.py (transforms, question cleaning, loaders, metric) but for the data root, the
# GIF folder and the annotation files.
#
# Expected data layout (details and converters: docs/datasets.md):
#   data/tgif/
#     gifs/tumblr_nk172bbdPI1u1lr18o1_250.gif ...
#     annotations/frameqa_train.jsonl  frameqa_test.jsonl  frameqa_ans2label.json
# frameqa_*.jsonl: {"video_id": "tumblr_...", "question": "...", "answer": "..."} per line
# (tools/dataset_converters/convert_videoqa.py Train_frameqa_question.tsv OUT.jsonl
#  --format tgif-frameqa).
_base_ = ['./msrvtt_qa.py']

data_root = 'data/tgif/'
video_prefix = dict(video='gifs')

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/frameqa_train.jsonl',
        data_prefix=video_prefix))
# There is no validation split: validation runs on the test split (as the official code).
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/frameqa_test.jsonl',
        data_prefix=video_prefix))
test_dataloader = val_dataloader
