"""Vision-language matching head (ITM) of mPLUG / ALBEF, with hard negatives mined from ITC.

For a batch of B aligned (visual, text) pairs, the ITM head classifies
``[B positives; B (hard negative visual, text); B (visual, hard negative text)]`` as
match / no match (labels ``[1] * B + [0] * 2B``) from the fused text ``[CLS]``. Each hard
negative is drawn from softmax(ITC similarity) over the batch, pairs of the same id (the
same video or image) excluded. Reused by retrieval and pre-training.
"""
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mplug2.registry import MODELS

__all__ = ['ITMHead']

#: ``fuse(visual_states, text_states, text_mask) -> fused text states (N, L, D)``.
FuseFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@MODELS.register_module()
class ITMHead(BaseModule):
    """A linear classifier (match / no match) on the fused text ``[CLS]`` state.

    Args:
        hidden_size: width of the fused text states (set by the task model).
    """

    def __init__(self, hidden_size: int, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.fc = nn.Linear(hidden_size, 2)

    def forward(self, fused_text: Tensor) -> Tensor:
        """(N, 2) logits from the fused text states (N, L, D) (their ``[CLS]``)."""
        return self.fc(fused_text[:, 0])

    @staticmethod
    @torch.no_grad()
    def sample_hard_negatives(sim_v2t: Tensor, idx: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """One hard negative per query, drawn from softmax(similarity) over the batch with
        same-id pairs excluded (one ``torch.multinomial`` call per direction).

        Args:
            sim_v2t: (B, B) visual-to-text similarity of the batch (row: visual, col: text).
            idx: (B,) ids (equal ids: the same video or image).

        Returns:
            ``neg_visual_for_text`` (B,), ``neg_text_for_visual`` (B,) and ``has_negative``
            (B,) bool: False where every sample of the batch has the id of sample i, which
            then has no negative (its sampled indices are placeholders, to be ignored).
        """
        same = idx[:, None] == idx[None, :]
        has_negative = (~same).any(dim=1)

        def weights(sim: Tensor) -> Tensor:
            # +1e-5 (official) keeps far-away negatives drawable when softmax underflows
            probs = (sim.float().softmax(dim=1) + 1e-5).masked_fill(same, 0)
            return torch.where(has_negative[:, None], probs, torch.ones_like(probs))

        neg_visual_for_text = torch.multinomial(weights(sim_v2t.t()), 1).squeeze(1)
        neg_text_for_visual = torch.multinomial(weights(sim_v2t), 1).squeeze(1)
        return neg_visual_for_text, neg_text_for_visual, has_negative

    def loss(self, fuse: FuseFn, visual_states: Tensor, text_states: Tensor, text_mask: Tensor,
             sim_v2t: Tensor, idx: Tensor) -> Tensor:
        """Cross-entropy on positives and hard negatives (see the module docstring).

        Args:
            fuse: runs the fusion module on aligned (visual, text) pairs.
            visual_states, text_states, text_mask: the batch's (B, Lv, D), (B, L, D), (B, L).
            sim_v2t: (B, B) in-batch ITC similarity the negatives are drawn from (the
                official code samples from its ITC logits, whose in-batch keys are the
                momentum embeddings when momentum is on; we use the online ones).
            idx: (B,) ids. Pairs whose query has no negative are not scored.
        """
        batch_size = visual_states.shape[0]
        neg_visual, neg_text, has_negative = self.sample_hard_negatives(sim_v2t, idx)
        visual_all = torch.cat([visual_states, visual_states[neg_visual], visual_states])
        text_all = torch.cat([text_states, text_states, text_states[neg_text]])
        mask_all = torch.cat([text_mask, text_mask, text_mask[neg_text]])
        logits = self(fuse(visual_all, text_all, mask_all))
        labels = torch.cat([
            torch.ones(batch_size, dtype=torch.long, device=logits.device),
            torch.zeros(2 * batch_size, dtype=torch.long, device=logits.device)
        ])
        # No negative exists for a query whose whole batch shares its id: not scored.
        labels[batch_size:][~has_negative.repeat(2)] = -100
        return F.cross_entropy(logits, labels, ignore_index=-100)
