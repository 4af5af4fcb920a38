# MRPC (Dolan & Brockett 2005): are the two news sentences paraphrases? 3,668 train / 408 dev /
# 1,725 test. Pairs (#1 String, #2 String; label: Quality); F1 of the paraphrase class and accuracy.
#   data/glue/MRPC/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'MRPC'
train_dataloader = dict(dataset=dict(task=task, ann_file='MRPC/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='MRPC/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='MRPC/test.tsv'))
