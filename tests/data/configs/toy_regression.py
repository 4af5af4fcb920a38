_base_ = ['../../../configs/_base_/default_runtime.py']

custom_imports = dict(imports=['tests.data.toy_model'], allow_failed_imports=False)

model = dict(type='ToyRegressor', dim=8, hidden=16)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dict(type='ToyRegressionDataset', length=32, dim=8),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=8)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.05, weight_decay=0.01))
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=8)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False, max_keep_ckpts=3))
log_processor = dict(window_size=1, by_epoch=False)
randomness = dict(seed=0)

test_dataloader = dict(
    batch_size=8,
    num_workers=0,
    dataset=dict(type='ToyRegressionDataset', length=16, dim=8, seed=1),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
test_evaluator = dict(type='ToyMSEMetric')
test_cfg = dict(type='TestLoop')
