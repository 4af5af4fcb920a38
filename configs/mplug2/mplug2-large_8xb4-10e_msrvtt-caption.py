# mPLUG-2 (ViT-L/14 dual-vision encoder + BERT-large, paper size) fine-tuned for MSR-VTT captioning
# (official 6,513 / 497 / 2,990 split) with the official recipe (X-PLUG/mPLUG-2
# configs_video/VideoCaption_msrvtt_large.yaml): 16 frames at 224, prompt "a video of", beam 5,
# 4-20 tokens, AdamW lr 2e-5 / 2e-6 (vision encoder, lr_mult 0.1), wd 0.02, 200 warm-up
# iterations then cosine to 1e-6 per iteration, 10 epochs, 8 GPUs x 4. Cross-entropy stage;
# mplug2-large_8xb4-5e_msrvtt-caption-scst.py continues with SCST.
# As the official caption script (--accum_steps default 2): gradients are accumulated over 2
# iterations (effective batch 64); the schedule still steps every iteration.
# Differences from the official run: a plain linear warm-up (the official caption loop
# interleaves step(i // 100) and step(i) in epoch 0, an oddity) and the prompt is forced at
# test (force_prompt=True; the official decoding generates it and cuts it off: see
# mplug2-large_official-eval_msrvtt-caption.py).
#
#   bash tools/dist_train.sh configs/mplug2/mplug2-large_8xb4-10e_msrvtt-caption.py 8
#   bash tools/dist_test.sh configs/mplug2/mplug2-large_8xb4-10e_msrvtt-caption.py CKPT 8
_base_ = [
    './mplug2-large_videocaption_model.py',
    '../_base_/datasets/msrvtt_caption.py',
    '../_base_/schedules/finetune_adamw_cosine_10e.py',
    '../_base_/default_runtime.py',
]

# Initialisation: the official pre-trained checkpoint (mPLUG2_Pretrain.pth) converted with
#   python tools/model_converters/mplug2_official_to_mmengine.py mPLUG2_Pretrain.pth \
#       checkpoints/mplug2-large_pretrain_caption.pth --task caption
load_from = 'checkpoints/mplug2-large_pretrain_caption.pth'

optim_wrapper = dict(accumulative_counts=2)

default_hooks = dict(checkpoint=dict(save_best='caption/CIDEr', rule='greater'))
