# mPLUG-2 Large for video-text retrieval (model only): the retrieval heads of
# ../_base_/models/mplug2_retriever.py (ITC + ITM, ITC top-128 re-ranked by ITM at test; no text
# decoder) on the Large model.
_base_ = ['../_base_/models/mplug2_large.py', '../_base_/models/mplug2_retriever.py']
model = {{_base_.retriever}}
