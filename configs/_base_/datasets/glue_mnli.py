# MNLI (Williams et al. 2018), matched: does the premise entail, contradict or leave open the
# hypothesis? 392,702 train / 9,815 dev matched / 9,796 test matched. Pairs (sentence1, sentence2;
# gold_label); accuracy. The submission file is MNLI-m.tsv; glue_mnli-mm.py has the mismatched
# splits (MNLI-mm.tsv) and glue_ax.py the diagnostic set (AX.tsv), both for the same model.
#   data/glue/MNLI/train.tsv  dev_matched.tsv  dev_mismatched.tsv  test_matched.tsv
#                  test_mismatched.tsv
#   data/glue/diagnostic/diagnostic.tsv
_base_ = ['./glue_common.py']

task = 'MNLI'
train_dataloader = dict(dataset=dict(task=task, ann_file='MNLI/train.tsv'))
val_dataloader = dict(dataset=dict(task=task, ann_file='MNLI/dev_matched.tsv'))
test_dataloader = dict(dataset=dict(task=task, ann_file='MNLI/test_matched.tsv'))
