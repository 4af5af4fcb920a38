# Tiny mPLUG-2 video captioning on the moving-shapes videos ("a red circle moves left"): the shared
# decoder attends to the visual tokens (no text encoder or fusion module, as the official caption
# model), prompt "a video of", BLEU-4 / METEOR / ROUGE-L / CIDEr through pycocoevalcap (needs Java).
#   python tools/train.py configs/demo/mplug2-tiny_moving-shapes_videocaption.py
#   python tools/test.py configs/demo/mplug2-tiny_moving-shapes_videocaption.py CKPT
_base_ = ['./_base_/mplug2-tiny_moving-shapes.py']

model = dict(
    type='MPLUG2Captioner',
    text_encoder=None,
    fusion=None,
    prompt='a video of',
    max_caption_tokens=16,
    generation=dict(num_beams=3, max_length=16, min_length=4),
)

train_dataloader = dict(dataset=dict(type='VideoCaptionDataset',
                                     ann_file='annotations/caption_train.jsonl'))
test_dataloader = dict(dataset=dict(type='VideoCaptionDataset',
                                    ann_file='annotations/caption_test.jsonl'))
val_dataloader = test_dataloader
test_evaluator = dict(type='CaptionMetric')
val_evaluator = test_evaluator
