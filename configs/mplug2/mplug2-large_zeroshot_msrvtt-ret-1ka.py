# Zero-shot MSR-VTT 1k-A text-video retrieval with a pre-trained mPLUG-2 (ViT-L/14 + BERT-large):
# test only, no fine-tuning. ITC top-128 candidates per text / video re-ranked by the ITM head
# (configs/mplug2/mplug2-large_videoretrieval_model.py); 16 middle frames at 224, nearest resize.
#
#   python tools/test.py configs/mplug2/mplug2-large_zeroshot_msrvtt-ret-1ka.py CKPT
#   bash tools/dist_test.sh configs/mplug2/mplug2-large_zeroshot_msrvtt-ret-1ka.py CKPT 8
#
# The checkpoint must hold pre-trained ITC/ITM heads (itc_head.*, itm_head.*) in this
# project's MPLUG2Retriever layout. tools/model_converters/mplug2_official_to_mmengine.py maps the
# qa and caption layouts only: with a --task qa conversion of mPLUG2_Pretrain.pth the heads stay
# randomly initialised and the numbers are meaningless.
_base_ = [
    './mplug2-large_videoretrieval_model.py',
    '../_base_/datasets/msrvtt_retrieval_1ka.py',
    '../_base_/default_runtime.py',
]

load_from = 'checkpoints/mplug2-large_pretrain_retrieval.pth'

# Test only: no training or validation.
train_dataloader = None
val_dataloader = None
val_evaluator = None
test_cfg = dict(type='MPLUG2RetrievalTestLoop')
