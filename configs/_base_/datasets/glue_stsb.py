# STS-B (Cer et al. 2017): semantic similarity of two sentences, a score in [0, 5]. 5,749 train /
# 1,500 dev / 1,379 test. Pairs (sentence1, sentence2; score): regression (num_classes=1, MSE);
# Pearson and Spearman correlations. Submitted scores are clipped to [0, 5].
#   data/glue/STS-B/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'STS-B'
train_dataloader = dict(dataset=dict(task=task, ann_file='STS-B/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='STS-B/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='STS-B/test.tsv'))
