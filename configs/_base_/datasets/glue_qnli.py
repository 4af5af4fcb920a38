# QNLI (Rajpurkar et al. 2016, as recast by GLUE): does the sentence answer the question?
# 104,743 train / 5,463 dev / 5,463 test. Pairs (question, sentence; label); accuracy.
#   data/glue/QNLI/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'QNLI'
train_dataloader = dict(dataset=dict(task=task, ann_file='QNLI/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='QNLI/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='QNLI/test.tsv'))
