# The official mPLUG-2 fine-tuning schedule: AdamW (lr 2e-5 for the language side, 2e-6 for the
# vision encoder, weight decay 0.02, none on biases and norms), 200 warm-up iterations from 1e-6,
# cosine to 1e-6 stepped per iteration, 10 epochs, no gradient clipping.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-5, weight_decay=0.02),
    paramwise_cfg=dict(
        # The decoder's word embeddings and LM-head projection are one tied Parameter.
        bypass_duplicate=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'vision_encoder': dict(lr_mult=0.1)}),
)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Official fine-tuning: 8 GPUs x batch 4.
auto_scale_lr = dict(enable=False, base_batch_size=32)
