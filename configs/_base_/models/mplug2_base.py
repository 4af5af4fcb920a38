# mPLUG-2 Base: CLIP ViT-B/16 dual-vision encoder; BERT-base text encoder of 12 layers whose last 2 are the
# universal layers (50 latent queries); 3 fusion layers; 12-layer shared text decoder (the official
# config_bert*.json base variant). Task configs pick the model type and drop unused modules.
vocab_file = 'data/bert-base-uncased/vocab.txt'
model = dict(
    type='MPLUG2QA',
    data_preprocessor=dict(type='MPLUG2DataPreprocessor'),
    vision_encoder=dict(type='DualVisionEncoder', arch='b/16', img_size=224),
    universal_layers=dict(type='UniversalLayers', arch='base', num_layers=2, num_queries=50),
    text_encoder=dict(type='BertTextEncoder', arch='base', num_layers=10),
    fusion=dict(type='FusionModule', arch='base', num_layers=3),
    text_decoder=dict(type='TextDecoder', arch='base', num_layers=12),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=30522),
)
