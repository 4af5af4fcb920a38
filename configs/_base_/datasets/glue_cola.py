# CoLA (Warstadt et al. 2019): is the sentence grammatical? 8,551 train / 1,043 dev / 1,063 test.
# Single sentences; Matthews correlation. train.tsv and dev.tsv have no header (source, label,
# original label, sentence); test.tsv has one (index, sentence).
#   data/glue/CoLA/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'CoLA'
train_dataloader = dict(dataset=dict(task=task, ann_file='CoLA/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='CoLA/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='CoLA/test.tsv'))
