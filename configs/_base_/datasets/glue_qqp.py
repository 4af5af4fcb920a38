# QQP (Quora Question Pairs): are the two questions duplicates? 363,846 train / 40,430 dev /
# 390,965 test. Pairs (question1, question2; is_duplicate); F1 of the duplicate class and accuracy.
# The Hugging Face GLUE processor silently drops QQP rows it cannot split into these columns; the
# training split here skips such rows too, but counts and reports them (bad_rows='skip'); dev and
# test raise on any bad row (a skipped test row would be missing from the submission).
#   data/glue/QQP/train.tsv  dev.tsv  test.tsv
_base_ = ['./glue_common.py']

task = 'QQP'
train_dataloader = dict(dataset=dict(task=task, ann_file='QQP/train.tsv', bad_rows='skip'))
val_dataloader = dict(dataset=dict(task=task, ann_file='QQP/dev.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='QQP/test.tsv'))
