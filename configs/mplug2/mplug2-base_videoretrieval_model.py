# mPLUG-2 Base for video-text retrieval (model only): ITC on 256-d projections of the visual global
# token and the text [CLS] (temperature 0.07, learnable, clamped to [0.001, 0.5]), momentum encoders
# (m 0.995) with 65,536-entry feature queues and distillation (alpha 0.4), ITM on the fusion text
# [CLS] with hard negatives (mPLUG v1's retrieval heads). No text decoder.
# Test: ITC top-128 candidates per query re-scored by the ITM "match" logit. The task config must run
# the retrieval loops (the schedule's ValLoop/TestLoop cannot rank a whole test set):
#   val_cfg = dict(type='MPLUG2RetrievalValLoop'); test_cfg = dict(type='MPLUG2RetrievalTestLoop')
#   val_evaluator = test_evaluator = dict(type='RetrievalMetric')
_base_ = ['../_base_/models/mplug2_base.py']
model = dict(
    type='MPLUG2Retriever',
    text_decoder=None,
    embed_dim=256,
    temperature=0.07,
    queue_size=65536,
    use_momentum=True,
    momentum=0.995,
    alpha=0.4,
    max_text_tokens=40,
    k_test=128,
    rerank_score='itm',
)
