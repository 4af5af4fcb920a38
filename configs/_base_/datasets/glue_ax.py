# GLUE diagnostic dataset (AX): 1,104 unlabelled pairs scored by the GLUE server with an MNLI model
# (Matthews correlation over 3 classes). Training and validation are MNLI's (matched); the test
# split is the diagnostic set, written to AX.tsv.
_base_ = ['./glue_mnli.py']

test_dataloader = dict(dataset=dict(task='AX', ann_file='diagnostic/diagnostic.tsv'))
