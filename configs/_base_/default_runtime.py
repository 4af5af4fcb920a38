# Runtime shared by every mplug2 config: scope, hooks, logging, environment.
default_scope = 'mplug2'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# Counts and logs the videos that datasets with on_error='skip' replaced (see docs/datasets.md).
# Stops the run at the first non-finite loss or gradient norm, and never saves non-finite weights
# (NonFiniteLossHook, see docs/architecture.md).
# Defined here only: a list cannot be merged across _base_ files.
custom_hooks = [dict(type='mplug2.BadSampleReportHook'), dict(type='mplug2.NonFiniteLossHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when no GPU is present. timeout: seconds a collective waits
    # for the other ranks before failing (torch's default: 30 minutes); raise it for long
    # rank-0-only steps (--cfg-options env_cfg.dist_cfg.timeout=3600).
    dist_cfg=dict(backend='nccl', timeout=600),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'

load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
