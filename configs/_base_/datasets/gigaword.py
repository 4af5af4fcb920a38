# Gigaword headline generation (Rush et al. 2015; Graff et al. 2003): the first sentence of a news
# article -> its headline. The standard release (Rush et al.'s data as UniLM and the Hugging Face
# 'gigaword' distribute it): 3,803,957 training, 189,651 validation and 1,951 test pairs.
# Text as released: lower-cased, digits written '#', rare words 'UNK', brackets '-lrb-' / '-rrb-'.
# The dataset turns the 'UNK' words into BERT's [UNK] token (unk_as='[UNK]'); the metric scores
# [UNK] as UNK against the references, which are kept as they are (see RougeMetric).
#
# Expected data layout (the Rush et al. / UniLM line-aligned plain-text files):
#   data/gigaword/
#     train.src.txt  train.tgt.txt  dev.src.txt  dev.tgt.txt  test.src.txt  test.tgt.txt
# Other layouts SummarizationDataset reads: ann_file='train.article.txt' (Rush et al.'s sumdata
# names; the summaries are then read from train.title.txt), 'train.source' / 'train.target'
# (fairseq), or jsonl / parquet with 'document' / 'summary' fields (the Hugging Face 'gigaword'
# export: ann_file='gigaword-train.parquet', ...). Nothing is downloaded at run time.
dataset_type = 'SummarizationDataset'
data_root = 'data/gigaword/'

# Text-only samples: the source and the summary as data fields, the identifiers as metainfo. No
# text cleaning: the text is Gigaword's, lower-cased and tokenized; the model's BERT uncased
# WordPiece tokenizer does the rest (and cuts the source to max_source_tokens).
train_pipeline = [
    dict(type='PackTextInputs', data_keys=('source', 'gt_summary'),
         meta_keys=('sample_idx', 'summary_id', 'where')),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='train.src.txt',
                 pipeline=train_pipeline))
# Validation: the first 2,000 pairs of the 189k-pair validation set (beam search over all of them
# at every validation would cost more than the training between two validations).
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='dev.src.txt', indices=2000,
                 test_mode=True, pipeline=test_pipeline))
# Test: the usual Gigaword test-set handling. The 1,951-pair test set is read as is; a copy of the
# held-out pairs that still holds empty titles has those pairs dropped, counted and reported
# (on_empty='skip'). Everywhere else an empty text is an error naming the file and line.
test_dataloader = dict(
    val_dataloader,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='test.src.txt', test_mode=True,
                 on_empty='skip', pipeline=test_pipeline))

# ROUGE-1/2/L F1 (rouge-score, Porter stemming), and the copy-the-input baseline (the first 8
# words of the source) on the same pairs.
val_evaluator = dict(type='RougeMetric', copy_baseline_words=8)
test_evaluator = val_evaluator
