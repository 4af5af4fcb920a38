# mPLUG-2 Large (BERT-large sizes, the paper's size: a 22-layer text encoder + 2 universal
# layers, a 12-layer shared decoder; no vision encoder, no fusion module) fine-tuned for Gigaword
# headline generation:
# source -> text encoder -> universal layers (text mode) = the decoder's memory; the shared
# decoder is trained with cross-entropy and decodes with 5 beams. Paper recipe: lr 3e-5, batch
# 256, 50,000 steps (here 8 GPUs x 32). ROUGE-1/2/L F1 with rouge-score (RougeMetric).
#
#   bash tools/dist_train.sh configs/text_tasks/mplug2-large_8xb32-50k_gigaword.py 8
#   bash tools/dist_test.sh configs/text_tasks/mplug2-large_8xb32-50k_gigaword.py CKPT 8
#   (one process: python tools/train.py CONFIG / python tools/test.py CONFIG CKPT)
_base_ = [
    '../_base_/models/mplug2_large.py',
    '../_base_/datasets/gigaword.py',
    '../_base_/default_runtime.py',
]

# Weights. Active default: a transformers BERT-large-uncased directory (config.json, weights,
# vocab.txt): the text encoder takes BERT layers 0-21, the universal layers 22-23, the decoder
# layers 0-11 (its cross-attention starts random).
bert_dir = 'data/bert-large-uncased'
bert_init = dict(type='PretrainedBERT', checkpoint=bert_dir)
text_encoder_init = universal_layers_init = text_decoder_init = bert_init
# Alternative: an mPLUG-2 Large checkpoint of this project, e.g. the official pre-trained weights
# converted with tools/model_converters/mplug2_official_to_mmengine.py:
# mplug2_checkpoint = 'checkpoints/mplug2-large_pretrain.pth'
# text_encoder_init = dict(type='PretrainedMPLUG2', checkpoint=mplug2_checkpoint,
#                          prefix='text_encoder.')
# universal_layers_init = dict(type='PretrainedMPLUG2', checkpoint=mplug2_checkpoint,
#                              prefix='universal_layers.')
# text_decoder_init = dict(type='PretrainedMPLUG2', checkpoint=mplug2_checkpoint,
#                          prefix='text_decoder.')

model = dict(
    type='MPLUG2Summarizer',
    vision_encoder=None,
    fusion=None,
    text_encoder=dict(init_cfg=text_encoder_init),
    universal_layers=dict(init_cfg=universal_layers_init),
    text_decoder=dict(init_cfg=text_decoder_init),
    tokenizer=dict(vocab_file=bert_dir + '/vocab.txt'),
    # Gigaword sources average about 31 words, headlines about 8.
    max_source_tokens=128,
    max_summary_tokens=32,
    generation=dict(num_beams=5, max_length=32, min_length=1, length_penalty=0.6),
)

# 50,000 iterations of 8 x 32 pairs (batch 256): AdamW lr 3e-5, weight decay 0.02 (none on biases
# and norms), 1,000 warm-up iterations, cosine to 1e-6; validation every 5,000 iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-5, weight_decay=0.02),
    # the decoder's word embeddings and LM-head projection are one tied Parameter
    paramwise_cfg=dict(bypass_duplicate=True, norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=False, begin=0, end=50000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=50000, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=256)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2,
                    save_best='rouge/ROUGE-L', rule='greater'))
log_processor = dict(by_epoch=False)

# Text mode leaves the universal layers' vision-only parameters (latent queries, their
# cross-attention, visual_norm) without gradients: distributed training must allow that.
find_unused_parameters = True
