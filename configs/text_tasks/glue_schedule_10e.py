# GLUE fine-tuning schedule, 10 epochs. The paper's search space (appendix B.2.2): 5 / 7 / 10
# epochs, learning rate 3e-5 to 1e-4, batch 32 / 64 / 128. The three epoch counts are the three
# schedule files glue_schedule_{5,7,10}e.py; each task config picks one and sets the learning rate
# and the batch size (its default); glue_search_space lists the values (the learning rates: the grid
# used here, inside the paper's range).
# AdamW as BERT's fine-tuning (weight decay 0.01, none on biases and norms), linear warm-up over the
# first 10% of the iterations, then linear decay to 0; validation every epoch.
glue_search_space = dict(max_epochs=(5, 7, 10), lr=(3e-5, 5e-5, 1e-4), batch_size=(32, 64, 128))
max_epochs = 10

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-5, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=0.1 * max_epochs,
         convert_to_iter_based=True),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0.1 * max_epochs,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=32)
