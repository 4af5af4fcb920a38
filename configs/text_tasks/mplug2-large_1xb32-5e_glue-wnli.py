# mPLUG-2 Large fine-tuned on WNLI (pronoun resolution as entailment; accuracy). Default of the
# paper's search space: 5 epochs, lr 3e-5, batch 32 (others: glue_schedule_{5,7,10}e.py,
# optim_wrapper.optimizer.lr, train_dataloader.batch_size; see docs/text_tasks.md).
#   python tools/train.py configs/text_tasks/mplug2-large_1xb32-5e_glue-wnli.py
#   python tools/test.py configs/text_tasks/mplug2-large_1xb32-5e_glue-wnli.py CKPT
#       (test split: writes WNLI.tsv)
_base_ = [
    './mplug2-large_glue_model.py',
    '../_base_/datasets/glue_wnli.py',
    './glue_schedule_5e.py',
    '../_base_/default_runtime.py',
]

model = dict(num_classes=2)
optim_wrapper = dict(optimizer=dict(lr=3e-5))
train_dataloader = dict(batch_size=32)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1, save_best='glue/score',
                    rule='greater'))
