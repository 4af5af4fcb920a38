# SQuAD v1.1 (Rajpurkar et al. 2016): extractive QA over Wikipedia paragraphs; 87,599 training
# questions, 10,570 dev questions (scored with up to 3+ reference answers each). The test set is
# hidden: results are reported on dev, as in BERT and mPLUG-2.
#
# Expected data layout (the official files; nothing is downloaded at run time):
#   data/squad/
#     train-v1.1.json  dev-v1.1.json
# SquadDataset also reads the Hugging Face 'squad' export (one record per question with id,
# title, context, question, answers{text[], answer_start[]}): ann_file='train.jsonl' or a
# .json / .parquet file. An answer whose text is not the context's text at answer_start is an
# error naming the file and line; on_bad_answer='skip' leaves such questions out, counted and
# reported in the log.
#
# Windows (BERT's and Hugging Face run_qa.py's settings): [CLS] question [SEP] context [SEP] of at
# most 384 tokens; a longer context is split into windows that overlap by 128 tokens (doc_stride,
# the overlap as in run_qa.py); questions are cut after 64 word pieces. Every window is one
# training sample; the metric gathers the windows of a question (best span over its windows).
# The tokenizer is BERT's uncased WordPiece (transformers.BertTokenizerFast) of vocab_file, which
# must be the model's vocabulary.
dataset_type = 'SquadDataset'
data_root = 'data/squad/'

# Text-only samples: the window's ids, segments, character offsets and answer positions as data
# fields, the identifiers as metainfo.
train_pipeline = [
    dict(type='PackTextInputs',
         data_keys=('input_ids', 'token_type_ids', 'offsets', 'context', 'start_position',
                    'end_position', 'gt_answers'),
         meta_keys=('sample_idx', 'example_id', 'window_index', 'num_windows', 'question',
                    'where')),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='train-v1.1.json',
                 vocab_file='data/bert-base-uncased/vocab.txt', max_length=384, doc_stride=128,
                 max_question_tokens=64, with_negative=False, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='dev-v1.1.json',
                 vocab_file='data/bert-base-uncased/vocab.txt', max_length=384, doc_stride=128,
                 max_question_tokens=64, with_negative=False, test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

# Exact match and F1 (official normalisation), one score per question over its windows.
val_evaluator = dict(type='SquadMetric', with_negative=False)
test_evaluator = val_evaluator
