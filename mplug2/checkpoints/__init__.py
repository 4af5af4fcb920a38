"""Checkpoints from elsewhere into mPLUG-2's modules, and the ``init_cfg`` types that load them.

- :mod:`.clip`: CLIP vision weights (OpenAI ``.pt``, Hugging Face) -> dual-vision encoder.
- :mod:`.bert`: transformers BERT checkpoints -> the BERT-layer modules.
- :mod:`.official`: the official mPLUG-2 release -> this project's key layout.
- :mod:`.initializers`: ``PretrainedCLIP``, ``PretrainedBERT``, ``PretrainedMPLUG2``,
  registered in ``mplug2.registry.WEIGHT_INITIALIZERS`` (whose ``locations`` import this
  package).

Every checkpoint is untrusted input and is read weights-only.
"""
from .bert import (BertCheckpoint, BertLoadReport, bert_arch_from_pretrained,
                   load_bert_weights, load_pretrained_bert)
from .clip import (convert_hf_clip, convert_openai_clip, fit_clip_state_dict,
                   load_clip_state_dict, load_clip_weights)
from .initializers import PretrainedBERT, PretrainedCLIP, PretrainedMPLUG2
from .official import (DROP_RULES, ConversionPlan, OfficialCheckpointError,
                       build_target_layout, convert_official_state_dict,
                       plan_official_conversion, read_official_checkpoint)

__all__ = [
    'BertCheckpoint', 'BertLoadReport', 'bert_arch_from_pretrained', 'load_bert_weights',
    'load_pretrained_bert', 'convert_openai_clip', 'convert_hf_clip', 'load_clip_state_dict',
    'fit_clip_state_dict', 'load_clip_weights', 'PretrainedCLIP', 'PretrainedBERT',
    'PretrainedMPLUG2', 'DROP_RULES', 'ConversionPlan',
    'OfficialCheckpointError', 'build_target_layout', 'convert_official_state_dict',
    'plan_official_conversion', 'read_official_checkpoint'
]
