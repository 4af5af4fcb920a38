# Shared part of the GLUE dataset bases (glue_<task>.py): the GLUE distribution's TSV files under
# data/glue/ (the layout of download_glue_data.py: glue_data/<TASK>/train.tsv, dev.tsv, test.tsv),
# read by GlueDataset; nothing is downloaded at run time. The Hugging Face 'glue' exports work as
# well: point ann_file at a .parquet or .jsonl file (e.g. 'sst2/train-00000-of-00001.parquet';
# their test splits, label -1, are read as unlabelled).
#
# No text cleaning: the sentences are kept as written; the model's BERT uncased WordPiece tokenizer
# lower-cases them and builds [CLS] a [SEP] (b [SEP]) with token_type_ids (encode_pairs).
# val = the dev split (scored); test = the unlabelled test split: the GlueMetric then writes the
# GLUE server's submission file (e.g. SST-2.tsv, "index<TAB>prediction") into the run's log
# directory. Score the dev split with tools/test.py instead:
#   --cfg-options test_dataloader.dataset.ann_file=SST-2/dev.tsv
dataset_type = 'GlueDataset'
data_root = 'data/glue/'

train_pipeline = [
    dict(type='PackTextInputs', data_keys=('text_a', 'text_b', 'gt_label'),
         meta_keys=('sample_idx', 'index', 'task')),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader

# The task's GLUE metrics (from the dataset's metainfo): accuracy, F1, Matthews, Pearson/Spearman,
# and 'glue/score', their mean; the submission file for an unlabelled split.
val_evaluator = dict(type='GlueMetric')
test_evaluator = val_evaluator
