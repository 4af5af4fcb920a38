# Tiny mPLUG-2 QA model for tests of tools/analysis_tools/benchmark.py: the sizes of
# tests/conftest.py::tiny_mplug2 (2-layer ViT of width 32, patch 4, 16x16 input; BERT width 32,
# 1 text + 2 universal + 1 fusion + 2 decoder layers). The vocab file comes from --vocab
# (tests/conftest.TINY_VOCAB, 45 tokens).
_bert = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=45,
             max_position_embeddings=64)
model = dict(
    type='MPLUG2QA',
    vision_encoder=dict(type='DualVisionEncoder', arch=dict(width=32, layers=2, heads=2, patch_size=4),
                        img_size=16),
    universal_layers=dict(type='UniversalLayers', arch=_bert, num_layers=2, num_queries=4),
    text_encoder=dict(type='BertTextEncoder', arch=_bert, num_layers=1),
    fusion=dict(type='FusionModule', arch=_bert, num_layers=1),
    text_decoder=dict(type='TextDecoder', arch=_bert, num_layers=2),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file='vocab.txt', vocab_size=45),
    generation=dict(num_beams=3, max_length=5, min_length=1),
)
