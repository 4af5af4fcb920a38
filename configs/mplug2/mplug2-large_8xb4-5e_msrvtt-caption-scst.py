# Second stage of MSR-VTT captioning: self-critical sequence training (SCST) with a CIDEr-D reward,
# which the paper uses and the official release never shipped (mPLUG v1's recipe: 5 beams per
# video, baseline = the mean reward of the video's beams; see MPLUG2Captioner). Starts from the
# cross-entropy checkpoint of mplug2-large_8xb4-10e_msrvtt-caption.py.
# Our choices (no official values exist): 5 epochs; lr 2e-6 for the language side and 2e-7 for
# the vision encoder (1/10 of the cross-entropy stage), no warm-up, cosine to 1e-7 per
# iteration; the rest (8 GPUs x 4 videos, accumulation 2, data, test) as the CE stage.
#
#   bash tools/dist_train.sh configs/mplug2/mplug2-large_8xb4-5e_msrvtt-caption-scst.py 8
_base_ = ['./mplug2-large_8xb4-10e_msrvtt-caption.py']

# The best CE checkpoint (work_dirs/mplug2-large_8xb4-10e_msrvtt-caption/
# best_caption_CIDEr_epoch_*.pth) copied or linked here.
load_from = 'checkpoints/mplug2-large_msrvtt-caption_ce.pth'

# CIDEr-D's document frequencies come from the training references (the standard SCST reward),
# read from the training annotation file at the first step; corpus=None uses the batch's.
model = dict(scst=dict(num_samples=5, corpus='data/msrvtt/annotations/caption_train.jsonl'))

# SCST rewards a video's generated captions against all its references: use the dataset's test
# layout (one sample per video, gt_caption = every reference) with the training pipeline (its
# CleanCaption cleans every reference as the training captions).
train_dataloader = dict(dataset=dict(test_mode=True))

optim_wrapper = dict(optimizer=dict(lr=2e-6))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=1e-7, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=5)
