# mPLUG-2 Large fine-tuned on MNLI, tested on the GLUE diagnostic set AX (the same training as the
# matched config: test an MNLI checkpoint with this config for AX.tsv). Default of the paper's
# search space: 5 epochs, lr 3e-5, batch 32 (others: glue_schedule_{5,7,10}e.py,
# optim_wrapper.optimizer.lr, train_dataloader.batch_size; see docs/text_tasks.md).
#   python tools/train.py configs/text_tasks/mplug2-large_1xb32-5e_glue-ax.py
#   python tools/test.py configs/text_tasks/mplug2-large_1xb32-5e_glue-ax.py CKPT
#       (test split: writes AX.tsv)
_base_ = [
    './mplug2-large_glue_model.py',
    '../_base_/datasets/glue_ax.py',
    './glue_schedule_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(num_classes=3)
optim_wrapper = dict(optimizer=dict(lr=3e-5))
train_dataloader = dict(batch_size=32)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1, save_best='glue/score',
                    rule='greater'))
