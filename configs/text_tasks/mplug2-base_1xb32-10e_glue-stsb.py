# mPLUG-2 Base fine-tuned on STS-B (similarity regression, num_classes=1 with MSE; Pearson and
# Spearman). Default of the paper's search space: 10 epochs, lr 5e-5, batch 32 (others:
# glue_schedule_{5,7,10}e.py, optim_wrapper.optimizer.lr, train_dataloader.batch_size; see
# docs/text_tasks.md).
#   python tools/train.py configs/text_tasks/mplug2-base_1xb32-10e_glue-stsb.py
#   python tools/test.py configs/text_tasks/mplug2-base_1xb32-10e_glue-stsb.py CKPT
#       (test split: writes STS-B.tsv)
_base_ = [
    './mplug2-base_glue_model.py',
    '../_base_/datasets/glue_stsb.py',
    './glue_schedule_10e.py',
    '../_base_/default_runtime.py',
]

model = dict(num_classes=1)
optim_wrapper = dict(optimizer=dict(lr=5e-5))
train_dataloader = dict(batch_size=32)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1, save_best='glue/score',
                    rule='greater'))
