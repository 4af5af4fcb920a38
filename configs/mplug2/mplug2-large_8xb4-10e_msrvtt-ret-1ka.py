# mPLUG-2 (ViT-L/14 + BERT-large, paper size) fine-tuned for MSR-VTT text-video retrieval
# (9k train, 1k-A test).
# The official mPLUG-2 release has no retrieval code: the heads are mPLUG v1's / ALBEF's (ITC with
# momentum distillation and a 65,536 queue, ITM with hard negatives; ITC top-128 re-ranked by ITM
# at test; configs/mplug2/mplug2-large_videoretrieval_model.py) and the hyper-parameters that
# are not those of the mPLUG-2 video tasks are ALBEF / mPLUG v1 retrieval values:
#   * lr 1e-5 for the language side (ALBEF / mPLUG v1 retrieval), 1e-6 for the vision encoder
#     (the schedule's lr_mult 0.1, as mPLUG-2's two-lr setting), AdamW wd 0.02, 200 warm-up
#     iterations, cosine to 1e-6 per iteration (min lr 1e-6 as ALBEF);
#   * the distillation weight alpha (0.4) ramps up over the first epoch (ALBEF's warm_up) with
#     DistillAlphaWarmupHook: warmup_iters = one epoch of the 9k split at 8 x 4 (180,000 pairs/32).
# From the mPLUG-2 video tasks: 16 frames at 224, RandomResizedCrop + flip, nearest resize at
# test, 10 epochs, 8 GPUs x 4.
#
#   bash tools/dist_train.sh configs/mplug2/mplug2-large_8xb4-10e_msrvtt-ret-1ka.py 8
#   bash tools/dist_test.sh configs/mplug2/mplug2-large_8xb4-10e_msrvtt-ret-1ka.py CKPT 8
_base_ = [
    './mplug2-large_videoretrieval_model.py',
    '../_base_/datasets/msrvtt_retrieval_1ka.py',
    '../_base_/schedules/finetune_adamw_cosine_10e.py',
    '../_base_/default_runtime.py',
]

# Initialisation: the official pre-trained checkpoint converted with --task qa (vision encoder,
# universal layers, text encoder, fusion; the ITC/ITM heads start fresh, the momentum copies
# are filled from the online modules):
#   python tools/model_converters/mplug2_official_to_mmengine.py mPLUG2_Pretrain.pth \
#       checkpoints/mplug2-large_pretrain_qa.pth --task qa
load_from = 'checkpoints/mplug2-large_pretrain_qa.pth'

# The distillation weight ramps up over the first epoch (see above); the runtime's hooks stay.
custom_hooks = [*_base_.custom_hooks, dict(type='DistillAlphaWarmupHook', warmup_iters=5625)]

optim_wrapper = dict(optimizer=dict(lr=1e-5))

# Retrieval ranks every text against every video: the retrieval loops replace the schedule's
# ValLoop / TestLoop.
val_cfg = dict(type='MPLUG2RetrievalValLoop')
test_cfg = dict(type='MPLUG2RetrievalTestLoop')

default_hooks = dict(checkpoint=dict(save_best='retrieval/R_mean', rule='greater'))
