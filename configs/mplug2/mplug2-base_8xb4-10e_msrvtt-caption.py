# mPLUG-2 Base (ViT-B/16 dual-vision encoder + BERT-base, paper's Base size) fine-tuned for MSR-VTT
# captioning (official 2,990-video test split) with the recipe of the large model: 16 frames at
# 224, prompt "a video of", beam 5, 4-20 tokens, AdamW lr 2e-5 / 2e-6 (vision), wd 0.02, 200
# warm-up iterations, cosine to 1e-6, 10 epochs, 8 GPUs x 4, gradients accumulated over 2
# iterations (the official caption script's default).
#
#   bash tools/dist_train.sh configs/mplug2/mplug2-base_8xb4-10e_msrvtt-caption.py 8
_base_ = [
    './mplug2-base_videocaption_model.py',
    '../_base_/datasets/msrvtt_caption.py',
    '../_base_/schedules/finetune_adamw_cosine_10e.py',
    '../_base_/default_runtime.py',
]

# Initialisation: a pre-trained mPLUG-2 Base checkpoint in this project's format. No Base
# checkpoint was released; point this at your own pre-trained weights.
load_from = 'checkpoints/mplug2-base_pretrain.pth'

optim_wrapper = dict(accumulative_counts=2)

default_hooks = dict(checkpoint=dict(save_best='caption/CIDEr', rule='greater'))
