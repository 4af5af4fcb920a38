# WNLI (Levesque et al. 2012, as recast by GLUE): does the sentence with the pronoun replaced
# follow?
# 635 train / 71 dev / 146 test. Pairs (sentence1, sentence2; label); accuracy. The dev set is
# adversarial to the training set (GLUE: models rarely beat the majority class).
#   data/glue/WNLI/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'WNLI'
train_dataloader = dict(dataset=dict(task=task, ann_file='WNLI/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='WNLI/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='WNLI/test.tsv'))
