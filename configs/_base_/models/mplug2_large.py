# mPLUG-2 (paper, Table 1): CLIP ViT-L/14 dual-vision encoder; BERT-large text encoder of 24 layers whose
# last 2 are the universal layers (50 latent queries); 6 fusion layers; 12-layer shared text decoder.
# Task configs pick the model type (MPLUG2QA, MPLUG2Captioner) and drop the modules they do not use.
# The tokenizer needs the 30,522-token uncased BERT WordPiece vocabulary (bert-large-uncased vocab.txt).
vocab_file = 'data/bert-large-uncased/vocab.txt'
model = dict(
    type='MPLUG2QA',
    data_preprocessor=dict(type='MPLUG2DataPreprocessor'),
    vision_encoder=dict(type='DualVisionEncoder', arch='l/14', img_size=224, with_cp=True),
    universal_layers=dict(type='UniversalLayers', arch='large', num_layers=2, num_queries=50),
    text_encoder=dict(type='BertTextEncoder', arch='large', num_layers=22, with_cp=True),
    fusion=dict(type='FusionModule', arch='large', num_layers=6),
    text_decoder=dict(type='TextDecoder', arch='large', num_layers=12),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=30522),
)
