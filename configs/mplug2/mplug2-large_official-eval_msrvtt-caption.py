# Evaluate an official fine-tuned mPLUG-2 MSR-VTT captioning checkpoint (X-PLUG/mPLUG-2
# mPLUG2_MSRVTT_Caption.pth) with the official inference protocol
# (scripts/inference_videocaption.sh, video_caption_mplug2.py) on the official 2,990-video test split: 16 frames, the middle frame of
# each segment; torch nearest resize to 224x224; CLIP mean/std; beam search from [CLS] alone
# (force_prompt=False: the model generates "a video of" itself and it is cut off the text, as the
# official decoding does), 5 beams, 4-20 tokens, GNMT length penalty 0.6; COCO caption metrics.
#
#   python tools/model_converters/mplug2_official_to_mmengine.py mPLUG2_MSRVTT_Caption.pth \
#       checkpoints/mplug2-large_msrvtt-caption_official.pth \
#       --config configs/mplug2/mplug2-large_official-eval_msrvtt-caption.py
#   python tools/test.py configs/mplug2/mplug2-large_official-eval_msrvtt-caption.py \
#       checkpoints/mplug2-large_msrvtt-caption_official.pth
#   (or bash tools/dist_test.sh CONFIG CKPT 8). Paper / README: CIDEr 80.3.
_base_ = [
    './mplug2-large_videocaption_model.py',
    '../_base_/datasets/msrvtt_caption.py',
    '../_base_/default_runtime.py',
]

model = dict(
    prompt='a video of',
    force_prompt=False,
    generation=dict(num_beams=5, min_length=4, max_length=20, length_penalty=0.6))

# Test only: the checkpoint comes from the command line.
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
