"""Reusable task heads, composed per task by config (retrieval, pre-training, generation)."""
from .itc_head import ITCHead
from .itm_head import ITMHead
from .lm_loss import LanguageModelLoss, lm_labels

__all__ = ['ITCHead', 'ITMHead', 'LanguageModelLoss', 'lm_labels']
from .cls_head import TextClsHead  # noqa: E402  classification / regression on [CLS] (GLUE)
__all__ += ['TextClsHead']
from .span_head import SpanHead  # noqa: E402  start/end span logits (SQuAD)
__all__ += ['SpanHead']
