# Evaluate an official fine-tuned mPLUG-2 MSRVTT-QA checkpoint (X-PLUG/mPLUG-2 mPLUG2_MSRVTT_QA.pth)
# with the official inference protocol (scripts/inference_videoqa.sh, video_qa_mplug2.py):
# 16 frames, the middle frame of each segment; torch nearest resize to 224x224; CLIP mean/std;
# question not truncated at test (50 words); open-vocabulary beam search, 5 beams, 1-10 tokens,
# GNMT length penalty 0.6; exact-match accuracy. Test batch 4 per GPU as the official config.
#
#   python tools/model_converters/mplug2_official_to_mmengine.py mPLUG2_MSRVTT_QA.pth \
#       checkpoints/mplug2-large_msrvtt-qa_official.pth \
#       --config configs/mplug2/mplug2-large_official-eval_msrvtt-qa.py
#   python tools/test.py configs/mplug2/mplug2-large_official-eval_msrvtt-qa.py \
#       checkpoints/mplug2-large_msrvtt-qa_official.pth
#   (or bash tools/dist_test.sh CONFIG CKPT 8). Paper / README: 48.0 accuracy.
# MSVD-QA (mPLUG2_MSVD_QA.pth, README 58.1): the same protocol; use a copy of this config with
# '../_base_/datasets/msvd_qa.py' as the dataset base.
_base_ = [
    './mplug2-large_videoqa_model.py',
    '../_base_/datasets/msrvtt_qa.py',
    '../_base_/default_runtime.py',
]

model = dict(generation=dict(num_beams=5, min_length=1, max_length=10, length_penalty=0.6))

# Test only: the checkpoint comes from the command line.
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
