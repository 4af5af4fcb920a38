# The SQuAD fine-tuning schedule of the text_tasks configs, BERT's released recipe (run_squad.py /
# README): AdamW lr 3e-5, weight decay 0.01 (none on biases and norms), linear warm-up over the
# first 10% of the iterations, then linear decay to 0, 2 epochs; here 8 GPUs x 4 windows (batch
# 32). Validation on dev at the end of each epoch (the task configs keep the best F1).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-5, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
max_epochs = 2
param_scheduler = [
    # 10% of 2 epochs; fractional epochs are converted to iterations
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=0.2,
         convert_to_iter_based=True),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=32)
# Text mode leaves the universal layers' vision-only parameters (latent queries, their
# cross-attention, visual_norm) without gradients: distributed training must allow that.
find_unused_parameters = True
