# Tiny mPLUG-2 summarization demo: synthetic news sentences -> headlines, in the Gigaword file
# layout, trained from scratch on a CPU in a few minutes. The model is the Gigaword one
# (MPLUG2Summarizer: text encoder -> universal layers in text mode -> the shared decoder, 5-beam
# search; no vision encoder, no fusion), the data and metric settings those of the Gigaword base.
#   python -m mplug2.datasets.synthetic_text.summarization --out-dir data/synthetic_summarization
#   python tools/misc/copy_bert_vocab.py data/synthetic_summarization/vocab.txt
#   python tools/train.py configs/demo/mplug2-tiny_text-summarization.py
#   python tools/test.py configs/demo/mplug2-tiny_text-summarization.py \
#       work_dirs/mplug2-tiny_text-summarization/epoch_5.pth
# A headline needs selection, not copying ("on monday , officials in oslo said that boeing had
# closed four plants in lima , ..." -> "boeing closes plants in lima"): the metric reports the
# copy-the-input baseline (the first 8 words of the source) next to the model's ROUGE.
_base_ = ['../_base_/datasets/gigaword.py', '../_base_/default_runtime.py']

data_root = 'data/synthetic_summarization/'
vocab_file = data_root + 'vocab.txt'  # the 30,522-token uncased BERT vocabulary

bert = dict(hidden_size=64, num_attention_heads=4, intermediate_size=256, vocab_size=30522,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
model = dict(
    type='MPLUG2Summarizer',
    data_preprocessor=dict(type='MPLUG2DataPreprocessor'),
    text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
    universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2, num_queries=1),
    text_decoder=dict(type='TextDecoder', arch=bert, num_layers=2),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=30522),
    max_source_tokens=64,
    max_summary_tokens=16,
    generation=dict(num_beams=5, max_length=16, min_length=1, length_penalty=0.6),
)

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = dict(
    batch_size=50,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
# No validation during the short run.
val_dataloader = None
val_cfg = None
val_evaluator = None

max_epochs = 5  # 94 iterations per epoch (3,000 pairs at batch 32)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
                     clip_grad=dict(max_norm=5.0),
                     paramwise_cfg=dict(bypass_duplicate=True))  # the tied decoder embeddings
# Warm-up, a constant learning rate (the decoder learns to pick the words from the source around
# iteration 200-300), then a cosine decay over the last epoch.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=max_epochs - 1,
         end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
