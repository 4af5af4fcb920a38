# Tiny mPLUG-2 text-video retrieval on the moving-shapes videos: ITC on 32-d projections (in-batch
# negatives, no momentum encoder or queue at this size) + ITM with hard negatives; at test, the ITC
# top-16 of every query re-ranked by ITM (the retrieval loops), R@1/5/10 and median rank both ways.
# A time-reversed twin differs from its clip only in the direction word of the captions.
#   python tools/train.py configs/demo/mplug2-tiny_moving-shapes_videoretrieval.py
#   python tools/test.py configs/demo/mplug2-tiny_moving-shapes_videoretrieval.py CKPT
_base_ = ['./_base_/mplug2-tiny_moving-shapes.py']

model = dict(
    type='MPLUG2Retriever',
    text_decoder=None,
    itc_head=dict(type='ITCHead', embed_dim=32, queue_size=0, use_momentum=False),
    itm_head=dict(type='ITMHead'),
    max_text_tokens=16,
    k_test=16,
)

# The test texts are cleaned as the official retrieval code (256 words); training uses the shared
# pipeline (its 80-word caption cut never reaches these short captions).
test_pipeline = [
    dict(type='CleanCaption', max_words=256),
    dict(type='LoadVideoFrames', num_frames={{_base_.num_frames}}, test_mode=True),
    dict(type='PackMultimodalInputs'),
]
train_dataloader = dict(dataset=dict(type='VideoRetrievalDataset',
                                     ann_file='annotations/retrieval_train.jsonl'))
test_dataloader = dict(dataset=dict(type='VideoRetrievalDataset',
                                    ann_file='annotations/retrieval_test.jsonl',
                                    pipeline=test_pipeline))
val_dataloader = test_dataloader
val_cfg = dict(type='MPLUG2RetrievalValLoop')
test_cfg = dict(type='MPLUG2RetrievalTestLoop')
test_evaluator = dict(type='RetrievalMetric')
val_evaluator = test_evaluator
