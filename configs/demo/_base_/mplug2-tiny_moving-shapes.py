# Shared part of the moving-shapes demo configs (configs/demo/mplug2-tiny_moving-shapes_*.py): a tiny
# mPLUG-2 trained from scratch on the synthetic moving-shapes videos on a CPU in a few minutes.
#   data:  python tools/dataset_converters/generate_moving_shapes.py --out-dir data/moving_shapes \
#              --num-train 600 --num-test 120 --frames 4 --size 32 --seed 0
#          python tools/misc/copy_bert_vocab.py data/moving_shapes/vocab.txt
# Colour and shape can be read from one frame. The direction needs the local temporal (LT) modules:
# the clips come in time-reversed twins, so the order of the frames is the only cue, and the frames
# share one position table (no temporal position embedding, as in mPLUG-2). Trained from scratch, the
# LT modules start as identity (zero up-projection) and get their signal only through the text side;
# a 10x learning rate for them (paramwise_cfg below) makes the direction learnable within the run.
_base_ = ['../../_base_/default_runtime.py']

data_root = 'data/moving_shapes/'
vocab_file = data_root + 'vocab.txt'  # the 30,522-token uncased BERT vocabulary
num_frames = 4
img_size = 32

bert = dict(hidden_size=64, num_attention_heads=4, intermediate_size=128, vocab_size=30522,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
model = dict(
    data_preprocessor=dict(type='MPLUG2DataPreprocessor'),
    # 3 ViT blocks of width 64, patch 8: 4 x 4 patches per 32 x 32 frame, 1 + 4 x 16 visual tokens.
    vision_encoder=dict(type='DualVisionEncoder', arch=dict(width=64, layers=3, heads=4, patch_size=8),
                        img_size=img_size),
    universal_layers=dict(type='UniversalLayers', arch=bert, num_layers=2, num_queries=8),
    text_encoder=dict(type='BertTextEncoder', arch=bert, num_layers=1),
    fusion=dict(type='FusionModule', arch=bert, num_layers=1),
    text_decoder=dict(type='TextDecoder', arch=bert, num_layers=1),
    tokenizer=dict(type='MPLUG2Tokenizer', vocab_file=vocab_file, vocab_size=30522),
)

# No flip or crop: a horizontal flip would swap "left" and "right". The pipelines serve the QA,
# caption and retrieval configs: text cleaning as the official code (absent fields are skipped),
# questions cut at 30 words for training and 50 at test, training captions at 80 words; the
# caption test references stay as written (the dataset lower-cases them) and the retrieval config
# cleans its test texts in its own test pipeline.
train_pipeline = [
    dict(type='CleanQuestion', max_words=30),
    dict(type='CleanCaption', max_words=80),
    dict(type='LoadVideoFrames', num_frames=num_frames),
    dict(type='PackMultimodalInputs'),
]
test_pipeline = [
    dict(type='CleanQuestion', max_words=50),
    dict(type='LoadVideoFrames', num_frames=num_frames, test_mode=True),
    dict(type='PackMultimodalInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    # SeededSampler: each sample's random frames and augmentations depend only on (seed, epoch,
    # index), so a resumed run continues exactly as an uninterrupted one.
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(data_root=data_root, data_prefix=dict(video='videos'), pipeline=train_pipeline),
)
test_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(data_root=data_root, data_prefix=dict(video='videos'), pipeline=test_pipeline,
                 test_mode=True),
)
val_dataloader = test_dataloader

max_epochs = 40  # 4,520 iterations for QA (113 per epoch at batch 16)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.01),
                     clip_grad=dict(max_norm=5.0),
                     paramwise_cfg=dict(bypass_duplicate=True,  # the tied decoder embeddings
                                        custom_keys={'.lmhra': dict(lr_mult=10.0)}))
# Warm-up, a constant learning rate, then a cosine decay over the last 5 epochs (the direction is
# learnt late: an earlier decay slows it down).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=max_epochs - 5, end=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
