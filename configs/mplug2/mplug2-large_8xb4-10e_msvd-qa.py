# mPLUG-2 (ViT-L/14 dual-vision encoder + BERT-large, paper size) fine-tuned on MSVD-QA with the
# official recipe (X-PLUG/mPLUG-2 configs_video/VideoQA_msvd_large.yaml): 16 frames at 224 for
# train and test, AdamW lr 2e-5 (language side) / 2e-6 (vision encoder, lr_mult 0.1), weight
# decay 0.02, 200 warm-up iterations then cosine to 1e-6 per iteration, 10 epochs, 8 GPUs x 4.
# Answers are generated (beam 5, 1-10 tokens; configs/mplug2/mplug2-large_videoqa_model.py).
#
#   bash tools/dist_train.sh configs/mplug2/mplug2-large_8xb4-10e_msvd-qa.py 8
#   bash tools/dist_test.sh configs/mplug2/mplug2-large_8xb4-10e_msvd-qa.py CKPT 8
_base_ = [
    './mplug2-large_videoqa_model.py',
    '../_base_/datasets/msvd_qa.py',
    '../_base_/schedules/finetune_adamw_cosine_10e.py',
    '../_base_/default_runtime.py',
]

# Initialisation: the official pre-trained checkpoint (mPLUG2_Pretrain.pth) converted with
#   python tools/model_converters/mplug2_official_to_mmengine.py mPLUG2_Pretrain.pth \
#       checkpoints/mplug2-large_pretrain_qa.pth --task qa
load_from = 'checkpoints/mplug2-large_pretrain_qa.pth'

default_hooks = dict(checkpoint=dict(save_best='videoqa/acc', rule='greater'))
