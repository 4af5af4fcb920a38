"""The language-model loss of the shared text decoder (captioning, QA, SCST, instruction LM).

Every generative task trains the decoder with next-token cross-entropy over
``[CLS] prefix target [SEP]``; the tasks differ only in which positions are targets
(padding never; a prompt or instruction prefix not, in captioning and instruction LM)
and in how the token losses are reduced (token mean for captioning, a sum per sequence
for QA, which then weights the answers, and for SCST's sequence log-probabilities).
"""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mplug2.registry import MODELS

__all__ = ['LanguageModelLoss', 'lm_labels']

REDUCTIONS = ('mean', 'sum_per_sequence', 'none')


def lm_labels(input_ids: Tensor, attention_mask: Optional[Tensor],
              num_prefix: Union[int, Tensor] = 0) -> Tensor:
    """Targets aligned with ``input_ids``: padding and the first ``num_prefix`` positions
    (an int, or (B,) per sequence; ``[CLS]`` plus a prompt) set to -100 (ignored)."""
    labels = input_ids.clone()
    if attention_mask is not None:
        labels = labels.masked_fill(attention_mask == 0, -100)
    if isinstance(num_prefix, Tensor):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        labels = labels.masked_fill(positions[None, :] < num_prefix.to(input_ids.device)[:, None],
                                    -100)
    elif num_prefix > 0:
        labels[:, :num_prefix] = -100
    return labels


@MODELS.register_module()
class LanguageModelLoss(nn.Module):
    """Next-token cross-entropy of a decoder run on ``input_ids`` over a memory.

    Position t + 1 of ``labels`` is predicted from positions <= t (the loss shifts
    them); -100 is ignored.

    Args:
        reduction: ``'mean'``: mean over all target tokens of the batch (official
            captioning; 0 if none); ``'sum_per_sequence'``: (B,) sums per sequence
            (official QA); ``'none'``: (B, L - 1) token losses.
        label_smoothing: passed to ``F.cross_entropy`` (0 in mPLUG-2).
    """

    def __init__(self, reduction: str = 'mean', label_smoothing: float = 0.0) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self,
                decoder: nn.Module,
                input_ids: Tensor,
                attention_mask: Optional[Tensor],
                memory: Tensor,
                memory_mask: Optional[Tensor] = None,
                labels: Optional[Tensor] = None,
                reduction: Optional[str] = None) -> Tensor:
        """Run ``decoder(input_ids, attention_mask, memory, memory_mask)`` and return the
        loss of ``labels`` (default: :func:`lm_labels` of the inputs, no prefix), reduced
        with ``reduction`` (default: the head's)."""
        if labels is None:
            labels = lm_labels(input_ids, attention_mask)
        logits = decoder(input_ids, attention_mask, memory, memory_mask)
        return self.token_loss(logits, labels, reduction or self.reduction)

    def token_loss(self, logits: Tensor, labels: Tensor, reduction: Optional[str] = None) -> Tensor:
        """The loss of (B, L, V) ``logits`` against (B, L) ``labels`` (shifted here)."""
        reduction = reduction or self.reduction
        if reduction not in REDUCTIONS:
            raise ValueError(f'reduction must be one of {REDUCTIONS}, got {reduction!r}')
        shifted_logits = logits[:, :-1].float()
        shifted_labels = labels[:, 1:]
        token_loss = F.cross_entropy(
            shifted_logits.reshape(-1, shifted_logits.shape[-1]), shifted_labels.reshape(-1),
            ignore_index=-100, reduction='none', label_smoothing=self.label_smoothing)
        token_loss = token_loss.view(shifted_labels.shape)
        if reduction == 'none':
            return token_loss
        if reduction == 'sum_per_sequence':
            return token_loss.sum(dim=1)
        num_tokens = (shifted_labels != -100).sum().clamp(min=1)
        return token_loss.sum() / num_tokens
