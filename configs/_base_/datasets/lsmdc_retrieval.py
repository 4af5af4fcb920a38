# LSMDC text-video retrieval (Rohrbach et al. 2017; the LSMDC 2016 challenge split): about
# 101k training clips from movies, 1,000 test clips with one description each. Validation runs
# on the test split (the 7,408-clip validation set is not in the default layout).
# As msrvtt_retrieval_1ka.py (transforms, text cleaning, loaders, metric) but for the data
# root, the video folder and the test file.
#
# Expected data layout (details: docs/datasets.md):
#   data/lsmdc/
#     videos/<movie>/<clip>.avi ...  (clip_name may contain the movie sub-folder)
#     annotations/retrieval_train.jsonl  retrieval_test.jsonl
# {"clip_name": "...", "caption": "..."} per line.
_base_ = ['./msrvtt_retrieval_1ka.py']

data_root = 'data/lsmdc/'
video_prefix = dict(video='videos')

train_dataloader = dict(dataset=dict(data_root=data_root, data_prefix=video_prefix))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/retrieval_test.jsonl',
        data_prefix=video_prefix))
test_dataloader = val_dataloader
