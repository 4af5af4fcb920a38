# DiDeMo paragraph-to-video retrieval (Hendricks et al. 2017; protocol of ClipBERT / Frozen in
# Time): all the sentences of a video are joined into one paragraph query (is_paragraph=True);
# 8,395 train / 1,065 val / 1,004 test videos. Validation runs on the test split unless you
# point val_dataloader at a retrieval_val.jsonl of the 1,065 validation videos.
# As msrvtt_retrieval_1ka.py (transforms, text cleaning, loaders, metric) but for the data
# root, the video folder, the test file and the paragraph queries.
#
# Expected data layout (details: docs/datasets.md):
#   data/didemo/
#     videos/<flickr id>.mp4 ...   (mixed extensions are resolved through video_exts)
#     annotations/retrieval_train.jsonl  retrieval_test.jsonl
# {"clip_name": "...", "caption": ["sentence 1", "sentence 2", ...]} per line.
_base_ = ['./msrvtt_retrieval_1ka.py']

data_root = 'data/didemo/'
video_prefix = dict(video='videos')

train_dataloader = dict(
    dataset=dict(data_root=data_root, data_prefix=video_prefix, is_paragraph=True))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/retrieval_test.jsonl',
        data_prefix=video_prefix,
        is_paragraph=True))
test_dataloader = val_dataloader
