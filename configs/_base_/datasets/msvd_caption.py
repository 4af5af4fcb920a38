# MSVD captioning (Chen & Dolan 2011): 1,970 YouTube clips, about 40 English captions each;
# the standard split is 1,200 train / 100 val / 670 test clips. Official mPLUG-2 protocol:
# 16 frames at 224, prompt "a video of", beam 5, 4-20 tokens (model config), COCO caption metrics.
# Training: one sample per (video, caption); test: one sample per video with all references.
# As msrvtt_caption.py (transforms, caption cleaning, loaders, metrics) but for the data root,
# the video folder and the validation file.
#
# Expected data layout (details: docs/datasets.md):
#   data/msvd/
#     videos/-4wsuPCjDBc_5_15.avi ...
#     annotations/caption_train.jsonl  caption_test.jsonl
# train: {"video_id": "-4wsuPCjDBc_5_15", "caption": "..."}; test: {"video_id": ...,
# "golden_captions": [...]} (the official mPLUG-2 jsonl files need no conversion).
_base_ = ['./msrvtt_caption.py']

data_root = 'data/msvd/'
video_prefix = dict(video='videos')

train_dataloader = dict(dataset=dict(data_root=data_root, data_prefix=video_prefix))
# The official release ships only train and test files: validation runs on the test split.
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/caption_test.jsonl',
        data_prefix=video_prefix))
test_dataloader = val_dataloader
