# The tiny model of tiny_mplug2_videoqa.py as a captioner: no text encoder, no fusion module
# (the official caption model never runs them). Pass the vocabulary with
# --cfg-options model.tokenizer.vocab_file=PATH.
_base_ = ['./tiny_mplug2_videoqa.py']
model = dict(type='MPLUG2Captioner', text_encoder=None, fusion=None, prompt='a video of',
             generation=dict(num_beams=2, max_length=6, min_length=1))
