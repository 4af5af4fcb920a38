"""Reusable task heads, composed per task by config (retrieval, pre-training, generation)."""
from .itc_head import ITCHead
from .itm_head import ITMHead
from .lm_loss import LanguageModelLoss, lm_labels

__all__ = ['ITCHead', 'ITMHead', 'LanguageModelLoss', 'lm_labels']
