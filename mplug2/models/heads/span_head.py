"""Extractive span head (BERT's ``qa_outputs``): start and end logits per token, the
cross-entropy loss of the answer's first and last token, and the best valid spans."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mplug2.registry import MODELS

__all__ = ['SpanHead']


@MODELS.register_module()
class SpanHead(BaseModule):
    """A linear layer from each token's state to a start and an end logit.

    Args:
        hidden_size: width of the token states (set by the task model).
        initializer_range: std of the normal initialisation of the weight (BERT: 0.02; the
            bias starts at 0).
    """

    def __init__(self, hidden_size: int, initializer_range: float = 0.02,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.qa_outputs = nn.Linear(hidden_size, 2)
        nn.init.normal_(self.qa_outputs.weight, std=initializer_range)
        nn.init.zeros_(self.qa_outputs.bias)

    def forward(self, hidden_states: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, L, D)`` token states -> start and end logits, ``(B, L)`` each (float32)."""
        logits = self.qa_outputs(hidden_states).float()
        start_logits, end_logits = logits.unbind(dim=-1)
        return start_logits, end_logits

    @staticmethod
    def loss(start_logits: Tensor, end_logits: Tensor, start_positions: Tensor,
             end_positions: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Mean of the start and end cross-entropies over the batch (BERT's loss).

        Padding tokens (``attention_mask == 0``) are left out of the softmax, so a window's
        loss does not depend on how long the other windows of its batch are (BERT's
        ``BertForQuestionAnswering`` includes them; on unpadded input the two are equal).
        Positions must index a token of their window (0, ``[CLS]``, for no answer).
        """
        length = start_logits.shape[1]
        for name, positions in (('start_positions', start_positions),
                                ('end_positions', end_positions)):
            if positions.numel() and (positions.min() < 0 or positions.max() >= length):
                raise ValueError(f'{name} must be in [0, {length}), got {positions.tolist()}')
        if attention_mask is not None:
            invalid = attention_mask == 0
            if invalid.gather(1, start_positions[:, None]).any() or invalid.gather(
                    1, end_positions[:, None]).any():
                raise ValueError('an answer position points at a padding token')
            start_logits = start_logits.masked_fill(invalid, torch.finfo(start_logits.dtype).min)
            end_logits = end_logits.masked_fill(invalid, torch.finfo(end_logits.dtype).min)
        return (F.cross_entropy(start_logits, start_positions) +
                F.cross_entropy(end_logits, end_positions)) / 2

    @staticmethod
    @torch.no_grad()
    def best_spans(start_logits: Tensor, end_logits: Tensor, valid: Tensor, n_best: int = 20,
                   max_answer_tokens: int = 30) -> List[List[Tuple[int, int, float]]]:
        """The ``n_best`` highest-scoring valid spans of every row, best first.

        A span ``(s, e)`` is valid when both tokens are ``valid`` (context tokens of the
        window), ``s <= e`` and ``e - s + 1 <= max_answer_tokens``; its score is
        ``start_logits[s] + end_logits[e]``. Every valid span is scored (an exact top-k over
        the ``L x L`` table, not the top-k starts x top-k ends of ``run_qa.py``).

        Args:
            start_logits, end_logits: ``(B, L)``.
            valid: ``(B, L)`` bool.

        Returns:
            per row, a list of ``(start, end, score)`` (empty when the row has no context
            token).
        """
        batch, length = start_logits.shape
        scores = start_logits.float()[:, :, None] + end_logits.float()[:, None, :]
        index = torch.arange(length, device=start_logits.device)
        span = index[None, :] - index[:, None]  # e - s
        allowed = (span >= 0) & (span < max_answer_tokens)
        allowed = allowed[None] & valid[:, :, None] & valid[:, None, :]
        scores = scores.masked_fill(~allowed, float('-inf')).view(batch, -1)
        k = min(n_best, length * length)
        top_scores, top_index = scores.topk(k, dim=1)
        results = []
        for row_scores, row_index in zip(top_scores.tolist(), top_index.tolist()):
            results.append([(i // length, i % length, s) for s, i in zip(row_scores, row_index)
                            if s != float('-inf')])
        return results
