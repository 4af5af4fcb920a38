_base_ = ['../_base_/models/mplug2_large.py']
model = dict(type='MPLUG2Captioner', text_encoder=None, fusion=None, prompt='a video of',
             generation=dict(num_beams=5, max_length=20, min_length=4))
