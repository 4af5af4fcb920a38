# MNLI mismatched: the MNLI training split, validation and test on the mismatched genres
# (9,832 dev / 9,847 test); the submission file is MNLI-mm.tsv.
_base_ = ['./glue_mnli.py']

task = 'MNLI-mm'
val_dataloader = dict(dataset=dict(task=task, ann_file='MNLI/dev_mismatched.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='MNLI/test_mismatched.tsv'))
