_base_ = ['../_base_/models/mplug2_large.py']
model = dict(type='MPLUG2QA', generation=dict(num_beams=5, max_length=10, min_length=1))
