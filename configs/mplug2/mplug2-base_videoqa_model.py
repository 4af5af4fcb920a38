# mPLUG-2 Base for video QA (model only): official decoding, beam 5, answers of 1-10 tokens.
_base_ = ['../_base_/models/mplug2_base.py']
model = dict(type='MPLUG2QA', generation=dict(num_beams=5, max_length=10, min_length=1))
