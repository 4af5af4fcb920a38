# RTE (Dagan et al. 2006 ... Bentivogli et al. 2009): textual entailment, 2 classes. 2,490 train /
# 277 dev / 3,000 test. Pairs (sentence1, sentence2; label); accuracy.
#   data/glue/RTE/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'RTE'
train_dataloader = dict(dataset=dict(task=task, ann_file='RTE/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='RTE/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='RTE/test.tsv'))
