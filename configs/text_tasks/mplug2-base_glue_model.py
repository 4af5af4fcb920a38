# mPLUG-2 Base for GLUE (model only): BERT-base sizes (the paper's Base: a 10-layer text encoder
# + 2 universal layers, hidden 768),
# text mode: [CLS] a [SEP] (b [SEP]) -> text encoder -> universal layers -> TextClsHead (dropout +
# linear on the [CLS] state; num_classes=1: regression). No vision encoder, fusion or decoder.
# The task configs (mplug2-base_1xb*_glue-*.py) set num_classes.
_base_ = ['../_base_/models/mplug2_base.py']

# Weights. Active default: a transformers BERT-base-uncased directory (config.json, weights,
# vocab.txt): the text encoder takes BERT layers 0-9, the universal layers 10-11 (PretrainedBERT's
# defaults: the first N - S layers and the last S); the head starts random.
bert_dir = 'data/bert-base-uncased'
bert_init = dict(type='PretrainedBERT', checkpoint=bert_dir)
text_encoder_init = universal_layers_init = bert_init
# Alternative: an mPLUG-2 Base checkpoint of this project (e.g. pre-trained weights converted with
# tools/model_converters/mplug2_official_to_mmengine.py):
# mplug2_checkpoint = 'checkpoints/mplug2-base_pretrain.pth'
# text_encoder_init = dict(type='PretrainedMPLUG2', checkpoint=mplug2_checkpoint,
#                          prefix='text_encoder.')
# universal_layers_init = dict(type='PretrainedMPLUG2', checkpoint=mplug2_checkpoint,
#                              prefix='universal_layers.')

model = dict(
    type='MPLUG2TextClassifier',
    vision_encoder=None,
    fusion=None,
    text_decoder=None,
    text_encoder=dict(init_cfg=text_encoder_init),
    # The latent queries, cross-attention and visual_norm of the universal layers serve the vision
    # path only: kept (checkpoint layout) but frozen by the model, so DDP needs no
    # find_unused_parameters.
    universal_layers=dict(init_cfg=universal_layers_init),
    tokenizer=dict(vocab_file=bert_dir + '/vocab.txt'),
    num_classes=2,
    max_length=128,  # BERT's GLUE setting; the longer sentence of a pair is cut first
    head=dict(type='TextClsHead', dropout=0.1),
)
