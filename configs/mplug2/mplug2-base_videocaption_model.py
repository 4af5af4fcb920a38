# mPLUG-2 Base for video captioning (model only): the decoder attends to the visual tokens; no text
# encoder or fusion module. Prompt "a video of", beam 5, 4-20 tokens.
_base_ = ['../_base_/models/mplug2_base.py']
model = dict(type='MPLUG2Captioner', text_encoder=None, fusion=None, prompt='a video of',
             generation=dict(num_beams=5, max_length=20, min_length=4))
