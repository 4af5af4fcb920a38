# SST-2 (Socher et al. 2013): binary sentiment of movie-review sentences. 67,349 train / 872 dev /
# 1,821 test. Single sentences (sentence, label); accuracy.
#   data/glue/SST-2/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'SST-2'
train_dataloader = dict(dataset=dict(task=task, ann_file='SST-2/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='SST-2/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='SST-2/test.tsv'))
