# mPLUG-2 Base (BERT-base sizes: a 10-layer text encoder + 2 universal layers)
# fine-tuned for SQuAD v2.0 extractive QA: [CLS] question [SEP] context [SEP] windows of 384
# tokens overlapping by 128 -> text encoder -> universal layers (text mode) -> span head; BERT's
# SQuAD recipe (lr 3e-5, 2 epochs, warm-up 10%, linear decay), 8 GPUs x 4 windows.
# Exact match and F1 on dev-v2.0.json (11,873 questions, HasAns / NoAns breakdown); no answer
# when the null score beats the best span by more than null_score_diff_threshold (0.0).
#
#   bash tools/dist_train.sh configs/text_tasks/mplug2-base_8xb4-2e_squad-v2.py 8
#   bash tools/dist_test.sh configs/text_tasks/mplug2-base_8xb4-2e_squad-v2.py CKPT 8
#   (one process: python tools/train.py CONFIG / python tools/test.py CONFIG CKPT)
_base_ = [
    './mplug2-base_squad_model.py',
    '../_base_/datasets/squad_v2.py',
    './squad_finetune_adamw_linear_2e.py',
    '../_base_/default_runtime.py',
]

# The windows are tokenized with the model's vocabulary.
vocab_file = 'data/bert-base-uncased/vocab.txt'
train_dataloader = dict(dataset=dict(vocab_file=vocab_file))
val_dataloader = dict(dataset=dict(vocab_file=vocab_file))
test_dataloader = val_dataloader

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                                     save_best='squad/f1', rule='greater'))
