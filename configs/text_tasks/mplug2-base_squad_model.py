# mPLUG-2 Base for extractive text QA (SQuAD), model only: BERT-base sizes, a 10-layer text
# encoder + 2 universal layers (text mode) and the span head (start / end logits per token); no
# vision encoder, no fusion module, no decoder. Predicted spans: at most 30 word pieces, the 20
# best per window (BERT's max_answer_length and n_best_size).
_base_ = ['../_base_/models/mplug2_base.py']

# Weights. Active default: a transformers BERT-base-uncased directory (config.json, weights,
# vocab.txt): the text encoder takes BERT layers 0-9, the universal layers 10-11; the span head
# starts random (as BERT's qa_outputs).
bert_dir = 'data/bert-base-uncased'
text_encoder_init = dict(type='PretrainedBERT', checkpoint=bert_dir)
universal_layers_init = dict(type='PretrainedBERT', checkpoint=bert_dir)
# Alternative: an mPLUG-2 Base checkpoint of this project (your own pre-trained weights, or
# converted official ones, tools/model_converters/mplug2_official_to_mmengine.py):
# mplug2_checkpoint = 'checkpoints/mplug2-base_pretrain.pth'
# text_encoder_init = dict(type='PretrainedMPLUG2', checkpoint=mplug2_checkpoint,
#                          prefix='text_encoder.')
# universal_layers_init = dict(type='PretrainedMPLUG2', checkpoint=mplug2_checkpoint,
#                              prefix='universal_layers.')

model = dict(
    type='MPLUG2SpanQA',
    vision_encoder=None,
    fusion=None,
    text_decoder=None,
    text_encoder=dict(init_cfg=text_encoder_init),
    universal_layers=dict(init_cfg=universal_layers_init),
    tokenizer=dict(vocab_file=bert_dir + '/vocab.txt'),
    span_head=dict(type='SpanHead'),
    max_answer_tokens=30,
    n_best=20,
)
