# A tiny mPLUG-2 video QA model (as tests/conftest.py::tiny_mplug2) for converter tests:
# 2 vision blocks (width 32, patch 4, 16x16), N = 3 text layers of which S = 2 universal,
# 1 fusion layer, 2 decoder layers. The tokenizer needs a vocabulary of the 45 tokens of
# tests/conftest.py::TINY_VOCAB: --cfg-options model.tokenizer.vocab_file=PATH.
bert = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=45,
            max_position_embeddings=64)
model = dict(
    type='MPLUG2QA',
    vision_encoder=dict(type='DualVisionEncoder', arch=dict(width=32, layers=2, heads=2, patch_size=4),
                        img_size=16),
    universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2, num_queries=4),
    text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
    fusion=dict(type='FusionModule', arch=bert, num_layers=1),
    text_decoder=dict(type='TextDecoder', arch=bert, num_layers=2),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file='data/tiny_vocab/vocab.txt', vocab_size=45),
    generation=dict(num_beams=2, max_length=4, min_length=1),
)
