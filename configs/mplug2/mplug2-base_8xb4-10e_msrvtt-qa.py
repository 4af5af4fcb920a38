# mPLUG-2 Base (ViT-B/16 dual-vision encoder + BERT-base, paper's Base size) fine-tuned on MSRVTT-QA
# with the recipe of the large model (the release has no Base fine-tuning config): 16 frames at
# 224, AdamW lr 2e-5 / 2e-6 (vision), wd 0.02, 200 warm-up iterations, cosine to 1e-6, 10 epochs,
# 8 GPUs x 4, beam 5, 1-10 tokens.
#
#   bash tools/dist_train.sh configs/mplug2/mplug2-base_8xb4-10e_msrvtt-qa.py 8
_base_ = [
    './mplug2-base_videoqa_model.py',
    '../_base_/datasets/msrvtt_qa.py',
    '../_base_/schedules/finetune_adamw_cosine_10e.py',
    '../_base_/default_runtime.py',
]

# Initialisation: a pre-trained mPLUG-2 Base checkpoint in this project's format. No Base
# checkpoint was released; point this at your own pre-trained weights.
load_from = 'checkpoints/mplug2-base_pretrain.pth'

default_hooks = dict(checkpoint=dict(save_best='videoqa/acc', rule='greater'))
