# mPLUG-2 Base fine-tuned on MNLI, validated and tested on the mismatched splits (the same training
# as the matched config: test an MNLI checkpoint with this config for MNLI-mm.tsv). Default of the
# paper's search space: 5 epochs, lr 3e-5, batch 32 (others: glue_schedule_{5,7,10}e.py,
# optim_wrapper.optimizer.lr, train_dataloader.batch_size; see docs/text_tasks.md).
#   python tools/train.py configs/text_tasks/mplug2-base_1xb32-5e_glue-mnli-mm.py
#   python tools/test.py configs/text_tasks/mplug2-base_1xb32-5e_glue-mnli-mm.py CKPT
#       (test split: writes MNLI-mm.tsv)
_base_ = [
    './mplug2-base_glue_model.py',
    '../_base_/datasets/glue_mnli-mm.py',
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
