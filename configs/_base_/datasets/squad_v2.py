# SQuAD v2.0 (Rajpurkar et al. 2018): SQuAD v1.1 plus 53,775 unanswerable questions written to
# look answerable; 130,319 training questions (43,498 unanswerable), 11,873 dev questions (5,945
# unanswerable). Windows and files as in squad_v1.py:
#   data/squad/
#     train-v2.0.json  dev-v2.0.json
# (or the Hugging Face 'squad_v2' export, where an unanswerable question has empty answer lists).
# An unanswerable question points at [CLS] in every window. At test, a question gets no answer
# when its lowest [CLS] score over its windows exceeds its best span score by more than
# null_score_diff_threshold (0.0; BERT tunes it on dev between -1.0 and -5.0). The metric adds
# the HasAns / NoAns breakdown of evaluate-v2.0.py.
_base_ = ['./squad_v1.py']

train_dataloader = dict(dataset=dict(ann_file='train-v2.0.json', with_negative=True))
val_dataloader = dict(dataset=dict(ann_file='dev-v2.0.json', with_negative=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='SquadMetric', with_negative=True, null_score_diff_threshold=0.0)
test_evaluator = val_evaluator
