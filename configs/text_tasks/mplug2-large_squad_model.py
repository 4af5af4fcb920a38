# mPLUG-2 Large for extractive text QA (SQuAD), model only: BERT-large sizes (the paper's size), a
# 22-layer text encoder + 2 universal layers (text mode) and the span head (start / end logits per
# token); no vision encoder, no fusion module, no decoder. Predicted spans: at most 30 word
# pieces, the 20 best per window (BERT's max_answer_length and n_best_size).
_base_ = ['../_base_/models/mplug2_large.py']

# Weights. Active default: a transformers BERT-large-uncased directory (config.json, weights,
# vocab.txt): the text encoder takes BERT layers 0-21, the universal layers 22-23; the span head
# starts random (as BERT's qa_outputs).
bert_dir = 'data/bert-large-uncased'
text_encoder_init = dict(type='PretrainedBERT', checkpoint=bert_dir)
universal_layers_init = dict(type='PretrainedBERT', checkpoint=bert_dir)
# Alternative: an mPLUG-2 Large checkpoint of this project (converted official weights,
# tools/model_converters/mplug2_official_to_mmengine.py, or your own pre-trained ones):
# mplug2_checkpoint = 'checkpoints/mplug2_large.pth'
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
