# Tiny mPLUG-2 text classification demo: synthetic sentence pairs in the GLUE RTE format (does the
# claim of the second sentence hold for the scene of the first?), trained from scratch on a CPU in
# a few minutes. The model is the GLUE one (MPLUG2TextClassifier: [CLS] a [SEP] b [SEP] with
# token_type_ids -> text encoder -> universal layers in text mode -> TextClsHead on [CLS]; no
# vision encoder, no fusion), the data and metric settings those of the GLUE RTE base.
#   python -m mplug2.datasets.synthetic_text.classification --out-dir data/synthetic_rte
#   python tools/misc/copy_bert_vocab.py data/synthetic_rte/vocab.txt
#   python tools/train.py configs/demo/mplug2-tiny_text-classification.py
#   python tools/test.py configs/demo/mplug2-tiny_text-classification.py \
#       work_dirs/mplug2-tiny_text-classification/epoch_30.pth
# The test split here is the labelled dev.tsv (192 pairs never seen in training; chance 50%). The
# unlabelled test.tsv gives the GLUE submission file RTE.tsv instead:
#   ... --cfg-options test_dataloader.dataset.ann_file=test.tsv
_base_ = ['../_base_/datasets/glue_rte.py', '../_base_/default_runtime.py']

data_root = 'data/synthetic_rte/'
vocab_file = data_root + 'vocab.txt'  # the 30,522-token uncased BERT vocabulary

bert = dict(hidden_size=128, num_attention_heads=4, intermediate_size=512, vocab_size=30522,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
model = dict(
    type='MPLUG2TextClassifier',
    data_preprocessor=dict(type='MPLUG2DataPreprocessor'),
    text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
    universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2, num_queries=1),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=30522),
    num_classes=2,
    max_length=32,
    head=dict(type='TextClsHead', dropout=0.1),
)

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='train.tsv'))
test_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='dev.tsv'))
# No validation during the short run.
val_dataloader = None
val_cfg = None
val_evaluator = None

max_epochs = 30  # 36 iterations per epoch (1,152 pairs at batch 32)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
test_cfg = dict(type='TestLoop')
# From scratch, the model learns first to compare the colours (they are in three of the four kinds
# of claim), the directions last: a long warm-up and a gradient clip at 1 keep the post-LN layers
# from collapsing back to chance at this learning rate.
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.005, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
