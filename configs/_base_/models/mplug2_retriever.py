# The video-text retrieval model of every size (mplug2-{base,large}_videoretrieval_model.py put
# `retriever` over their size's model): mPLUG v1's retrieval heads. ITC (ITCHead) on 256-d
# projections of the visual global token and the text [CLS] (temperature 0.07, learnable,
# clamped to [0.001, 0.5]), momentum encoders (m 0.995) with 65,536-entry feature queues and
# distillation (alpha 0.4; the task configs ramp it with DistillAlphaWarmupHook); ITM (ITMHead) on
# the fusion text [CLS] with hard negatives. No text decoder. Texts are truncated at 40 tokens.
# Test: ITC top-128 candidates per query re-scored by the ITM "match" logit. The task config must
# run the retrieval loops (the schedule's ValLoop/TestLoop cannot rank a whole test set):
#   val_cfg = dict(type='MPLUG2RetrievalValLoop'); test_cfg = dict(type='MPLUG2RetrievalTestLoop')
#   val_evaluator = test_evaluator = dict(type='RetrievalMetric')
# A helper variable, not a config of its own: change a run through model.* (e.g.
# --cfg-options model.k_test=256), not through retriever.*.
retriever = dict(
    type='MPLUG2Retriever',
    text_decoder=None,
    itc_head=dict(
        type='ITCHead',
        embed_dim=256,
        temperature=0.07,
        temperature_range=(0.001, 0.5),
        queue_size=65536,
        use_momentum=True,
        momentum=0.995,
        alpha=0.4),
    itm_head=dict(type='ITMHead'),
    max_text_tokens=40,
    k_test=128,
    rerank_score='itm',
)
