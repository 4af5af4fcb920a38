# Tiny mPLUG-2 captioning model for tests of tools/analysis_tools/benchmark.py: bench_tiny.py's sizes
# in the shape of configs/mplug2/mplug2-base_videocaption_model.py (no text encoder, no fusion module,
# prompt "a video of"; the vocab file comes from --vocab, tests/conftest.TINY_VOCAB).
_base_ = ['./bench_tiny.py']
model = dict(type='MPLUG2Captioner', text_encoder=None, fusion=None, prompt='a video of',
             generation=dict(num_beams=3, max_length=5, min_length=2))
