"""Vision-language contrastive head (ITC) of mPLUG / ALBEF, reused by retrieval and pre-training.

    v = normalize(vision_proj(V[:, 0])),  t = normalize(text_proj(W[:, 0]))     (B, embed_dim)
    L_itc = (InfoNCE(v -> t) + InfoNCE(t -> v)) / 2,  logits = v @ t.T / temp

Positives are the pairs with the same id (e.g. two captions of one video). With momentum
(``use_momentum``) the keys are the momentum model's embeddings of the batch followed by a
feature queue of earlier batches (``queue_size``), and the targets are distilled:
``alpha * softmax(momentum similarity) + (1 - alpha) * ground truth``. The momentum copies of
the *encoders* belong to the model that runs them; this head holds the momentum copies of its
projections (:class:`~mplug2.models.utils.momentum.MomentumCopies`) and the queues.

``alpha_factor`` scales ``alpha`` (1 by default); a warm-up hook
(:class:`~mplug2.engine.hooks.DistillAlphaWarmupHook`) ramps it during the first iterations.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather
from mmengine.model import BaseModule
from torch import Tensor, nn

from mplug2.registry import MODELS
from ..utils.momentum import MomentumCopies, online_modules

__all__ = ['ITCHead']


@MODELS.register_module()
class ITCHead(BaseModule):
    """Projections, learnable temperature, optional momentum projections and feature queues.

    Args:
        vision_width: width of the visual token states (set by the task model).
        text_width: width of the text states (set by the task model).
        embed_dim: width of the contrastive embeddings (mPLUG: 256).
        temperature: initial temperature (0.07); learnable.
        temperature_range: the temperature is clamped to this range before every loss
            (:meth:`clamp_temperature`; the official code never clamps it).
        queue_size: feature-queue length (65,536); 0 disables the queue. The queue holds
            momentum features, so it needs ``use_momentum``.
        use_momentum: momentum encoders for the keys and the distillation targets; None:
            on when ``queue_size > 0``.
        momentum: EMA coefficient m of every momentum copy (0.995).
        alpha: distillation weight (0.4).
    """

    def __init__(self,
                 vision_width: int,
                 text_width: int,
                 embed_dim: int = 256,
                 temperature: float = 0.07,
                 temperature_range: Tuple[float, float] = (0.001, 0.5),
                 queue_size: int = 65536,
                 use_momentum: Optional[bool] = None,
                 momentum: float = 0.995,
                 alpha: float = 0.4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if use_momentum is None:
            use_momentum = queue_size > 0
        if queue_size > 0 and not use_momentum:
            raise ValueError('the ITC queue holds momentum features: queue_size > 0 needs '
                             'use_momentum=True')
        low, high = temperature_range
        if not 0 < low <= temperature <= high:
            raise ValueError(f'temperature {temperature} outside temperature_range '
                             f'{temperature_range}')
        self.embed_dim = embed_dim
        self.temperature_range = (float(low), float(high))
        self.queue_size = int(queue_size)
        self.use_momentum = bool(use_momentum)
        self.momentum = momentum
        self.alpha = alpha
        self.alpha_factor = 1.0  # set by DistillAlphaWarmupHook

        self.vision_proj = nn.Linear(vision_width, embed_dim)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.temp = nn.Parameter(torch.tensor(float(temperature)))
        self.momentum_projections = MomentumCopies(
            dict(vision_proj=self.vision_proj, text_proj=self.text_proj),
            momentum) if self.use_momentum else None

        # Queues of momentum features (rows) and their ids; -100 matches nothing.
        if self.queue_size > 0:
            self.register_buffer('visual_queue',
                                 F.normalize(torch.randn(self.queue_size, embed_dim), dim=1))
            self.register_buffer('text_queue',
                                 F.normalize(torch.randn(self.queue_size, embed_dim), dim=1))
            self.register_buffer('idx_queue', torch.full((self.queue_size, ), -100, dtype=torch.long))
            self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))

    # ------------------------------------------------------------------ embeddings
    @staticmethod
    def _embed(states: Tensor, projection: nn.Module) -> Tensor:
        return F.normalize(projection(states[:, 0]), dim=-1)

    def embed_vision(self, visual_states: Tensor) -> Tensor:
        """(B, embed_dim) unit embeddings of the visual global token ``states[:, 0]``."""
        return self._embed(visual_states, self.vision_proj)

    def embed_text(self, text_states: Tensor) -> Tensor:
        """(B, embed_dim) unit embeddings of the text ``[CLS]`` ``states[:, 0]``."""
        return self._embed(text_states, self.text_proj)

    @torch.no_grad()
    def embed_momentum(self, visual_states_m: Tensor, text_states_m: Tensor) -> Tuple[Tensor, Tensor]:
        """Embeddings of the momentum encoders' states through the momentum projections."""
        copies = self.momentum_projections
        return (self._embed(visual_states_m, copies['vision_proj']),
                self._embed(text_states_m, copies['text_proj']))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """EMA step of the momentum projections."""
        if self.momentum_projections is not None:
            self.momentum_projections.update(
                online_modules(self, self.momentum_projections.names()))

    @torch.no_grad()
    def clamp_temperature(self) -> None:
        self.temp.clamp_(*self.temperature_range)

    @property
    def current_alpha(self) -> float:
        return self.alpha * self.alpha_factor

    # ------------------------------------------------------------------ loss
    def loss(self,
             visual_feat: Tensor,
             text_feat: Tensor,
             idx: Tensor,
             visual_feat_m: Optional[Tensor] = None,
             text_feat_m: Optional[Tensor] = None) -> Tensor:
        """Symmetric InfoNCE, ``(L_v2t + L_t2v) / 2``.

        Queries are the online embeddings of the batch. Keys are the online embeddings of
        the batch (no momentum) or the momentum embeddings of the batch followed by the
        queue. A (query, key) pair is positive when the ids are equal; the targets spread 1
        evenly over the positives and, with momentum, are mixed with the momentum model's
        softmax: ``alpha * softmax(q_m @ keys / temp) + (1 - alpha) * targets``.
        """
        temp = self.temp
        if visual_feat_m is None:
            visual_keys, text_keys, key_idx = visual_feat, text_feat, idx
        else:
            visual_keys, text_keys, key_idx = visual_feat_m, text_feat_m, idx
            if self.queue_size > 0:
                visual_keys = torch.cat([visual_keys, self.visual_queue.clone().detach()])
                text_keys = torch.cat([text_keys, self.text_queue.clone().detach()])
                key_idx = torch.cat([key_idx, self.idx_queue.clone().detach()])
        positives = (idx[:, None] == key_idx[None, :]).float()
        targets = positives / positives.sum(dim=1, keepdim=True)
        sim_v2t = visual_feat @ text_keys.t().to(visual_feat.dtype) / temp
        sim_t2v = text_feat @ visual_keys.t().to(text_feat.dtype) / temp
        targets_v2t = targets_t2v = targets
        if visual_feat_m is not None:
            with torch.no_grad():
                alpha = self.current_alpha
                sim_v2t_m = visual_feat_m @ text_keys.t() / temp
                sim_t2v_m = text_feat_m @ visual_keys.t() / temp
                targets_v2t = alpha * sim_v2t_m.softmax(dim=1) + (1 - alpha) * targets
                targets_t2v = alpha * sim_t2v_m.softmax(dim=1) + (1 - alpha) * targets
        loss_v2t = -(F.log_softmax(sim_v2t, dim=1) * targets_v2t).sum(dim=1).mean()
        loss_t2v = -(F.log_softmax(sim_t2v, dim=1) * targets_t2v).sum(dim=1).mean()
        return (loss_v2t + loss_t2v) / 2

    @torch.no_grad()
    def dequeue_and_enqueue(self, visual_feat_m: Tensor, text_feat_m: Tensor, idx: Tensor) -> None:
        """Write the momentum features of all ranks into the queues at ``queue_ptr``
        (wrapping around: the queue size need not be a multiple of the batch size)."""
        visual_feat_m = torch.cat(all_gather(visual_feat_m.contiguous()))
        text_feat_m = torch.cat(all_gather(text_feat_m.contiguous()))
        idx = torch.cat(all_gather(idx.contiguous()))
        count = idx.numel()
        if count > self.queue_size:  # only the newest queue_size entries survive
            visual_feat_m, text_feat_m = visual_feat_m[-self.queue_size:], text_feat_m[-self.queue_size:]
            idx, count = idx[-self.queue_size:], self.queue_size
        ptr = int(self.queue_ptr)
        slots = (ptr + torch.arange(count, device=self.idx_queue.device)) % self.queue_size
        self.visual_queue[slots] = visual_feat_m.to(self.visual_queue.dtype)
        self.text_queue[slots] = text_feat_m.to(self.text_queue.dtype)
        self.idx_queue[slots] = idx.to(self.idx_queue.device)
        self.queue_ptr[0] = (ptr + count) % self.queue_size
