"""mPLUG-2 video-text retrieval: ITC + ITM training, ITC top-k then ITM re-ranking at test.

The heads follow mPLUG v1's retrieval model (itself ALBEF's), on top of the mPLUG-2 paths
of :class:`~mplug2.models.multimodal.mplug2.MPLUG2`::

    video  -> dual-vision encoder -> universal layers -> V (B, Lv, D); V[:, 0] global token
    text   -> text encoder -> universal layers (text mode) -> W (B, L, D); W[:, 0] [CLS]
    ITC    v = normalize(vision_proj(V[:, 0])),  t = normalize(text_proj(W[:, 0]))   (B, 256)
           symmetric InfoNCE on v @ t.T / temp; positives = pairs with the same ``video_idx``;
           optionally momentum encoders (EMA) give queue keys and distillation targets.
    ITM    fusion(V, W) -> text CLS -> itm_head -> 2 logits (match / no match);
           B positive pairs + one hard negative video per text + one hard negative text
           per video, negatives drawn from softmax(ITC similarity), same-video pairs excluded.

At test (:meth:`MPLUG2Retriever.predict_all`), the ITC cosine similarity of every text and
video ranks the candidates; the top ``k_test`` of every query are re-scored by the ITM head
(see ``rerank_score``). Features come from ``forward(mode='tensor')`` batch by batch, and the
retrieval loops (``mplug2.engine.runner.retrieval_loop``) gather them and call
:meth:`~MPLUG2Retriever.predict_all`.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather
from mmengine.logging import MessageHub, print_log
from torch import Tensor, nn

from mplug2.registry import MODELS
from .mplug2 import MPLUG2, _as_list, _field

__all__ = ['MPLUG2Retriever']

#: Online modules that have an EMA copy (``<name>_m``) when momentum is on, in the order
#: the visual / text paths run them.
MOMENTUM_MODULES = ('vision_encoder', 'visual_projection', 'universal_layers', 'text_encoder',
                    'vision_proj', 'text_proj')


@MODELS.register_module()
class MPLUG2Retriever(MPLUG2):
    """Video-text retrieval with image-text contrastive (ITC) and matching (ITM) losses.

    Training data samples carry ``text`` (str) and ``video_idx`` (int, equal for the
    texts of the same video: they are positives of each other in ITC and never hard
    negatives in ITM). ``loss`` returns ``dict(loss_itc, loss_itm)``.

    Args:
        embed_dim: width of the ITC embeddings (official 256).
        temperature: initial ITC temperature (official 0.07); learnable.
        temperature_range: the temperature is clamped to this range before every
            loss (the official code never clamps it).
        queue_size: ITC feature queue length (official 65,536); 0 disables the queue.
            The queue holds momentum features, so it needs ``use_momentum``.
        use_momentum: momentum encoders (EMA copies of vision encoder, visual projection,
            universal layers, text encoder and the two ITC projections) for queue keys and
            distillation. None (default): on when ``queue_size > 0``.
        momentum: EMA coefficient m: ``param_m = m * param_m + (1 - m) * param``.
        alpha: distillation weight: ITC targets are
            ``alpha * softmax(momentum similarity) + (1 - alpha) * ground truth``.
        alpha_warmup_iters: ramp alpha linearly from 0 over this many training
            iterations (the official recipe ramps it over the first epoch); 0: constant.
            The iteration is read from the ``MessageHub`` (runner's ``iter``).
        max_text_tokens: text truncation, ``[CLS]`` included (train and test).
        k_test: number of ITC candidates per query re-scored by ITM at test (official 128).
        rerank_score: score of the re-ranked candidates: ``'itm'`` (mPLUG v1 / ALBEF:
            the ITM "match" logit) or ``'itm+itc'`` (that logit plus the ITC cosine
            similarity, as BLIP).
        itm_batch_size: (query, candidate) pairs per fusion call at test.
        **kwargs: the modules, see :class:`MPLUG2` (``fusion`` and ``text_encoder`` are
            required; ``text_decoder`` is not used and should be None).
    """

    def __init__(self,
                 *args,
                 embed_dim: int = 256,
                 temperature: float = 0.07,
                 temperature_range: Tuple[float, float] = (0.001, 0.5),
                 queue_size: int = 65536,
                 use_momentum: Optional[bool] = None,
                 momentum: float = 0.995,
                 alpha: float = 0.4,
                 alpha_warmup_iters: int = 0,
                 max_text_tokens: int = 40,
                 k_test: int = 128,
                 rerank_score: str = 'itm',
                 itm_batch_size: int = 128,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if self.text_encoder is None or self.fusion is None:
            raise ValueError('MPLUG2Retriever needs text_encoder and fusion')
        if use_momentum is None:
            use_momentum = queue_size > 0
        if queue_size > 0 and not use_momentum:
            raise ValueError('the ITC queue holds momentum features: queue_size > 0 needs '
                             'use_momentum=True')
        if rerank_score not in ('itm', 'itm+itc'):
            raise ValueError(f"rerank_score must be 'itm' or 'itm+itc', got {rerank_score!r}")
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
        self.alpha_warmup_iters = alpha_warmup_iters
        self.max_text_tokens = max_text_tokens
        self.k_test = k_test
        self.rerank_score = rerank_score
        self.itm_batch_size = itm_batch_size

        width = self._text_width()
        self.vision_proj = nn.Linear(width, embed_dim)
        self.text_proj = nn.Linear(width, embed_dim)
        self.temp = nn.Parameter(torch.tensor(float(temperature)))
        self.itm_head = nn.Linear(width, 2)

        # Momentum encoders: EMA copies, never trained by the optimiser.
        self.momentum_pairs: List[Tuple[str, str]] = []
        if self.use_momentum:
            for name in MOMENTUM_MODULES:
                module = getattr(self, name)
                copied = None if module is None else copy.deepcopy(module).requires_grad_(False)
                setattr(self, f'{name}_m', copied)
                if module is not None:
                    self.momentum_pairs.append((name, f'{name}_m'))
            self.copy_params()
            self.register_load_state_dict_pre_hook(_fill_missing_momentum_keys)

        # ITC queues of momentum features (rows) and their video ids; -100 matches nothing.
        if self.queue_size > 0:
            self.register_buffer('visual_queue',
                                 F.normalize(torch.randn(self.queue_size, embed_dim), dim=1))
            self.register_buffer('text_queue',
                                 F.normalize(torch.randn(self.queue_size, embed_dim), dim=1))
            self.register_buffer('idx_queue', torch.full((self.queue_size, ), -100, dtype=torch.long))
            self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))

    # ------------------------------------------------------------------ initialisation
    def init_weights(self) -> None:
        """Initialise the online modules, then copy them into the momentum encoders."""
        for _, name_m in self.momentum_pairs:  # skip their (pretrained) init: copied below
            module_m = getattr(self, name_m)
            if hasattr(module_m, '_is_init'):
                module_m._is_init = True
        super().init_weights()
        self.copy_params()

    @torch.no_grad()
    def copy_params(self) -> None:
        """Momentum encoders := online modules (official ``copy_params``)."""
        for name, name_m in self.momentum_pairs:
            for param, param_m in zip(getattr(self, name).parameters(),
                                      getattr(self, name_m).parameters()):
                param_m.copy_(param)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """EMA step of every momentum encoder: ``param_m = m * param_m + (1 - m) * param``."""
        online, ema = [], []
        for name, name_m in self.momentum_pairs:
            online += list(getattr(self, name).parameters())
            ema += list(getattr(self, name_m).parameters())
        if ema:
            torch._foreach_mul_(ema, self.momentum)
            torch._foreach_add_(ema, online, alpha=1 - self.momentum)

    # ------------------------------------------------------------------ features
    def tokenize_texts(self, texts: Sequence[str]) -> dict:
        return self.tokenize(texts, self.max_text_tokens)

    def itc_embed(self, states: Tensor, projection: nn.Module) -> Tensor:
        """L2-normalised ITC embedding of token 0 (visual global token or text [CLS])."""
        return F.normalize(projection(states[:, 0]), dim=-1)

    @torch.no_grad()
    def momentum_features(self, inputs: Tensor, tokens: dict) -> Tuple[Tensor, Tensor]:
        """ITC embeddings of the momentum encoders: the visual and text paths of
        :class:`MPLUG2` run with the ``*_m`` modules."""
        visual = self.vision_encoder_m(inputs)
        if self.visual_projection_m is not None:
            visual = self.visual_projection_m(visual)
        if self.universal_layers_m is not None:
            visual = self.universal_layers_m.forward_vision(visual)
        text = self.text_encoder_m(tokens['input_ids'], tokens['attention_mask'])
        if self.universal_layers_m is not None:
            text = self.universal_layers_m.forward_text(text, tokens['attention_mask'])
        return self.itc_embed(visual, self.vision_proj_m), self.itc_embed(text, self.text_proj_m)

    def extract_video_feat(self, inputs: Tensor) -> Dict[str, Tensor]:
        """``visual_feat`` (B, E) ITC embeddings and ``visual_embeds`` (B, Lv, D) tokens (ITM)."""
        visual_embeds = self.extract_visual_features(inputs)
        return dict(visual_feat=self.itc_embed(visual_embeds, self.vision_proj),
                    visual_embeds=visual_embeds)

    def extract_text_feat(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """``text_feat`` (N, E) ITC embeddings, ``text_embeds`` (N, L, D), ``text_mask`` (N, L)."""
        tokens = self.tokenize_texts(texts)
        text_embeds = self.encode_text(tokens['input_ids'], tokens['attention_mask'])
        return dict(text_feat=self.itc_embed(text_embeds, self.text_proj),
                    text_embeds=text_embeds, text_mask=tokens['attention_mask'])

    def itm_logits(self, visual_embeds: Tensor, text_embeds: Tensor, text_mask: Tensor) -> Tensor:
        """Fusion of aligned (video, text) pairs -> (N, 2) ITM logits from the fused text CLS."""
        _, fused_text = self.fusion(visual_embeds, text_embeds, text_mask)
        return self.itm_head(fused_text[:, 0])

    # ------------------------------------------------------------------ BaseModel
    def forward(self, inputs: Optional[Tensor], data_samples: Optional[list] = None,
                mode: str = 'loss'):
        """``mode='tensor'``: the features of the videos in ``inputs`` and of the texts of
        ``data_samples`` (the retrieval loops' contract):

        * ``visual_feat`` (B, E), ``visual_embeds`` (B, Lv, D): one row per video
          (absent when ``inputs`` is None);
        * ``text_feat`` (N, E), ``text_embeds`` (N, L, D), ``text_mask`` (N, L): the N
          texts of the batch in sample order (a sample's ``text`` is a str or a list);
          ``text_sample`` (N,): the batch position of the sample each text came from
          (absent when no sample has a text).
        """
        if mode != 'tensor':
            return super().forward(inputs, data_samples, mode)
        feats = {} if inputs is None else self.extract_video_feat(inputs)
        texts, owners = [], []
        for position, sample in enumerate(data_samples or []):
            sample_texts = _as_list(_field(sample, 'text'))
            texts += sample_texts
            owners += [position] * len(sample_texts)
        if texts:
            feats.update(self.extract_text_feat(texts))
            feats['text_sample'] = torch.tensor(owners, device=feats['text_feat'].device)
        return feats

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        texts = []
        for sample in data_samples:
            text = _field(sample, 'text')
            if not isinstance(text, str):
                raise ValueError('MPLUG2Retriever.loss needs one text (str) per sample, got '
                                 f'{type(text).__name__}; use the training layout of the dataset')
            texts.append(text)
        video_idx = torch.tensor([int(_field(sample, 'video_idx')) for sample in data_samples],
                                 device=inputs.device)
        tokens = self.tokenize_texts(texts)

        visual_embeds = self.extract_visual_features(inputs)
        text_embeds = self.encode_text(tokens['input_ids'], tokens['attention_mask'])
        visual_feat = self.itc_embed(visual_embeds, self.vision_proj)
        text_feat = self.itc_embed(text_embeds, self.text_proj)
        with torch.no_grad():
            self.temp.clamp_(*self.temperature_range)

        # ITC, with momentum keys / queue / distillation when configured.
        visual_feat_m = text_feat_m = None
        if self.use_momentum:
            self.momentum_update()
            visual_feat_m, text_feat_m = self.momentum_features(inputs, tokens)
        loss_itc = self.itc_loss(visual_feat, text_feat, video_idx, visual_feat_m, text_feat_m)
        if self.queue_size > 0:
            self.dequeue_and_enqueue(visual_feat_m, text_feat_m, video_idx)

        # ITM on positives and hard negatives mined from the in-batch ITC similarity.
        loss_itm = self.itm_loss(visual_embeds, text_embeds, tokens['attention_mask'],
                                 (visual_feat @ text_feat.t()).detach() / self.temp.detach(),
                                 video_idx)
        return dict(loss_itc=loss_itc, loss_itm=loss_itm)

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        raise NotImplementedError(
            'retrieval ranks the whole test set: use forward(mode="tensor") and predict_all, '
            "as val_cfg/test_cfg = dict(type='MPLUG2RetrievalValLoop' / "
            "'MPLUG2RetrievalTestLoop') do")

    # ------------------------------------------------------------------ ITC
    def current_alpha(self) -> float:
        """Distillation weight, ramped over ``alpha_warmup_iters`` training iterations."""
        if self.alpha_warmup_iters <= 0:
            return self.alpha
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        return self.alpha * min(1.0, iteration / self.alpha_warmup_iters)

    def itc_loss(self,
                 visual_feat: Tensor,
                 text_feat: Tensor,
                 video_idx: Tensor,
                 visual_feat_m: Optional[Tensor] = None,
                 text_feat_m: Optional[Tensor] = None) -> Tensor:
        """Symmetric InfoNCE, ``(L_v2t + L_t2v) / 2``.

        Queries are the online embeddings of the batch. Keys are the online embeddings of
        the batch (no momentum) or the momentum embeddings of the batch followed by the
        queue. A (query, key) pair is positive when the video ids are equal; the targets
        spread 1 evenly over the positives and, with momentum, are mixed with the momentum
        model's softmax: ``alpha * softmax(q_m @ keys / temp) + (1 - alpha) * targets``.
        """
        temp = self.temp
        if visual_feat_m is None:
            visual_keys, text_keys, key_idx = visual_feat, text_feat, video_idx
        else:
            visual_keys, text_keys, key_idx = visual_feat_m, text_feat_m, video_idx
            if self.queue_size > 0:
                visual_keys = torch.cat([visual_keys, self.visual_queue.clone().detach()])
                text_keys = torch.cat([text_keys, self.text_queue.clone().detach()])
                key_idx = torch.cat([key_idx, self.idx_queue.clone().detach()])
        positives = (video_idx[:, None] == key_idx[None, :]).float()
        targets = positives / positives.sum(dim=1, keepdim=True)
        sim_v2t = visual_feat @ text_keys.t().to(visual_feat.dtype) / temp
        sim_t2v = text_feat @ visual_keys.t().to(text_feat.dtype) / temp
        targets_v2t = targets_t2v = targets
        if visual_feat_m is not None:
            with torch.no_grad():
                alpha = self.current_alpha()
                sim_v2t_m = visual_feat_m @ text_keys.t() / temp
                sim_t2v_m = text_feat_m @ visual_keys.t() / temp
                targets_v2t = alpha * sim_v2t_m.softmax(dim=1) + (1 - alpha) * targets
                targets_t2v = alpha * sim_t2v_m.softmax(dim=1) + (1 - alpha) * targets
        loss_v2t = -(F.log_softmax(sim_v2t, dim=1) * targets_v2t).sum(dim=1).mean()
        loss_t2v = -(F.log_softmax(sim_t2v, dim=1) * targets_t2v).sum(dim=1).mean()
        return (loss_v2t + loss_t2v) / 2

    @torch.no_grad()
    def dequeue_and_enqueue(self, visual_feat_m: Tensor, text_feat_m: Tensor,
                            video_idx: Tensor) -> None:
        """Write the momentum features of all ranks into the queues at ``queue_ptr``
        (wrapping around: the queue size need not be a multiple of the batch size)."""
        visual_feat_m = torch.cat(all_gather(visual_feat_m.contiguous()))
        text_feat_m = torch.cat(all_gather(text_feat_m.contiguous()))
        video_idx = torch.cat(all_gather(video_idx.contiguous()))
        count = video_idx.numel()
        if count > self.queue_size:  # only the newest queue_size entries survive
            visual_feat_m, text_feat_m = visual_feat_m[-self.queue_size:], text_feat_m[-self.queue_size:]
            video_idx, count = video_idx[-self.queue_size:], self.queue_size
        ptr = int(self.queue_ptr)
        slots = (ptr + torch.arange(count, device=self.idx_queue.device)) % self.queue_size
        self.visual_queue[slots] = visual_feat_m.to(self.visual_queue.dtype)
        self.text_queue[slots] = text_feat_m.to(self.text_queue.dtype)
        self.idx_queue[slots] = video_idx.to(self.idx_queue.device)
        self.queue_ptr[0] = (ptr + count) % self.queue_size

    # ------------------------------------------------------------------ ITM
    @torch.no_grad()
    def sample_hard_negatives(self, sim_v2t: Tensor, video_idx: Tensor):
        """One hard negative per query, drawn from softmax(similarity) over the batch with
        same-video pairs excluded (one ``torch.multinomial`` call per direction).

        Args:
            sim_v2t: (B, B) video-to-text similarity of the batch (row: video, col: text).
            video_idx: (B,) video ids.

        Returns:
            ``neg_video_for_text`` (B,), ``neg_text_for_video`` (B,) and ``has_negative``
            (B,) bool: False where every sample of the batch shows the same video as
            sample i, which then has no negative (its sampled indices are placeholders,
            to be ignored).
        """
        same_video = video_idx[:, None] == video_idx[None, :]
        has_negative = (~same_video).any(dim=1)

        def weights(sim: Tensor) -> Tensor:
            # +1e-5 (official) keeps far-away negatives drawable when softmax underflows
            probs = (sim.float().softmax(dim=1) + 1e-5).masked_fill(same_video, 0)
            return torch.where(has_negative[:, None], probs, torch.ones_like(probs))

        neg_video_for_text = torch.multinomial(weights(sim_v2t.t()), 1).squeeze(1)
        neg_text_for_video = torch.multinomial(weights(sim_v2t), 1).squeeze(1)
        return neg_video_for_text, neg_text_for_video, has_negative

    def itm_loss(self, visual_embeds: Tensor, text_embeds: Tensor, text_mask: Tensor,
                 sim_v2t: Tensor, video_idx: Tensor) -> Tensor:
        """Cross-entropy of the ITM head on ``[B positives; B (hard video, text);
        B (video, hard text)]`` with labels ``[1]*B + [0]*2B``.

        ``sim_v2t`` is the in-batch similarity of the online ITC embeddings (the official
        code samples from its ITC logits, whose in-batch keys are the momentum embeddings
        when momentum is on). Pairs whose query has no negative are not scored.
        """
        batch_size = visual_embeds.shape[0]
        neg_video, neg_text, has_negative = self.sample_hard_negatives(sim_v2t, video_idx)
        visual_all = torch.cat([visual_embeds, visual_embeds[neg_video], visual_embeds])
        text_all = torch.cat([text_embeds, text_embeds, text_embeds[neg_text]])
        mask_all = torch.cat([text_mask, text_mask, text_mask[neg_text]])
        logits = self.itm_logits(visual_all, text_all, mask_all)
        labels = torch.cat([
            torch.ones(batch_size, dtype=torch.long, device=logits.device),
            torch.zeros(2 * batch_size, dtype=torch.long, device=logits.device)
        ])
        # No negative exists for a query whose whole batch shows its video: not scored.
        labels[batch_size:][~has_negative.repeat(2)] = -100
        return F.cross_entropy(logits, labels, ignore_index=-100)

    # ------------------------------------------------------------------ ranking
    @torch.no_grad()
    def predict_all(self,
                    video_feats: Dict[str, Tensor],
                    text_feats: Dict[str, Tensor],
                    video_ids: Optional[Tensor] = None,
                    reduce: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, Tensor]:
        """Rank all videos for every text and all texts for every video.

        Every query's top ``k_test`` ITC candidates are re-scored by the ITM head; a
        (video, text) pair is scored where the video's tokens are. In a distributed test each
        rank holds the tokens of its own videos only (``video_ids``), scores the candidate
        pairs of those videos, and ``reduce`` sums the partial scores over the ranks.

        Args:
            video_feats: ``visual_feat`` (V, E) of all videos; ``visual_embeds`` (V', Lv, D)
                tokens of the videos ``video_ids`` (may be absent when V' = 0).
            text_feats: ``text_feat`` (T, E), ``text_embeds`` (T, L, D), ``text_mask`` (T, L)
                of all texts. Features may live on the CPU: pairs are moved to the model's
                device chunk by chunk.
            video_ids: (V',) the global indices of the ``visual_embeds`` rows (default:
                all videos, in order).
            reduce: in-place sum of a tensor over the ranks (e.g. ``all_reduce``); None for
                a single process.

        Returns:
            ``sim_t2v`` (T, V), ``sim_v2t`` (V, T) ranking scores and ``sim_itc`` (T, V)
            cosine similarities, on the CPU, the same on every rank. For every query the top
            ``k_test`` ITC candidates get the re-ranking score (``rerank_score``); the
            others stay below all of them, in ITC order (the official code gives them -100;
            this only changes ranks beyond k_test, and makes them meaningful).
        """
        device = self.temp.device
        sim_itc = (text_feats['text_feat'].to(device).float()
                   @ video_feats['visual_feat'].to(device).float().t())
        num_texts, num_videos = sim_itc.shape
        if video_ids is None:
            video_ids = torch.arange(num_videos)
        video_ids = torch.as_tensor(video_ids, dtype=torch.long).cpu()
        embeds = video_feats.get('visual_embeds')  # absent on a rank without videos
        num_rows = 0 if embeds is None else embeds.shape[0]
        if video_ids.numel() != num_rows:
            raise ValueError(f'{video_ids.numel()} video_ids for {num_rows} rows of visual_embeds')
        # row of visual_embeds of every video, -1 where its tokens are elsewhere
        local_row = torch.full((num_videos, ), -1, dtype=torch.long)
        local_row[video_ids] = torch.arange(video_ids.numel())
        local_row = local_row.to(device)

        def pair_scores(videos: Tensor, texts: Tensor) -> Tensor:
            """ITM scores of the candidate pairs whose video is here, 0 for the others."""
            scores = torch.zeros(videos.shape, device=device)
            here = local_row[videos] >= 0
            if here.any():
                scores[here] = self.itm_match_score(video_feats, text_feats,
                                                    local_row[videos[here]], texts[here])
            return scores

        t2v_sim, t2v_videos = self.topk_candidates(sim_itc)  # queries: texts
        v2t_sim, v2t_texts = self.topk_candidates(sim_itc.t())  # queries: videos
        t2v_scores = pair_scores(t2v_videos, torch.arange(num_texts, device=device)[:, None]
                                 .expand_as(t2v_videos))
        v2t_scores = pair_scores(torch.arange(num_videos, device=device)[:, None]
                                 .expand_as(v2t_texts), v2t_texts)
        if reduce is not None:
            reduce(t2v_scores)
            reduce(v2t_scores)
        sim_t2v = self.compose_ranking(sim_itc, t2v_sim, t2v_videos, t2v_scores)
        sim_v2t = self.compose_ranking(sim_itc.t(), v2t_sim, v2t_texts, v2t_scores)
        return dict(sim_t2v=sim_t2v.cpu(), sim_v2t=sim_v2t.cpu(), sim_itc=sim_itc.cpu())

    def itm_match_score(self, video_feats: dict, text_feats: dict, videos: Tensor,
                        texts: Tensor) -> Tensor:
        """ITM "match" logit of the pairs ``(visual_embeds[videos[i]], texts[i])``,
        ``itm_batch_size`` pairs at a time."""
        device = self.temp.device
        scores = []
        for video_chunk, text_chunk in zip(videos.split(self.itm_batch_size),
                                           texts.split(self.itm_batch_size)):
            video_chunk, text_chunk = video_chunk.cpu(), text_chunk.cpu()
            logits = self.itm_logits(
                video_feats['visual_embeds'][video_chunk].to(device),
                text_feats['text_embeds'][text_chunk].to(device),
                text_feats['text_mask'][text_chunk].to(device))
            scores.append(logits[:, 1].float())
        return torch.cat(scores) if scores else torch.zeros(0, device=device)

    def topk_candidates(self, sim: Tensor) -> Tuple[Tensor, Tensor]:
        """``(values, indices)`` (Q, k) of the top ``k = min(k_test, N)`` items of every row
        of the (Q, N) similarity ``sim``."""
        return sim.topk(min(self.k_test, sim.shape[1]), dim=1)

    def compose_ranking(self, sim: Tensor, topk_sim: Tensor, topk_items: Tensor,
                        topk_scores: Tensor) -> Tensor:
        """(Q, N) ranking scores: the re-ranking scores of the top-k items of every row
        (``topk_scores``, plus their ITC similarity with ``rerank_score='itm+itc'``), and
        below all of them, the other items in ITC order."""
        if sim.shape[1] == 0:
            return sim.new_zeros(sim.shape)
        topk_scores = topk_scores.to(sim.dtype)
        if self.rerank_score == 'itm+itc':
            topk_scores = topk_scores + topk_sim
        floor = topk_scores.min(dim=1, keepdim=True).values - 1
        scores = floor - (sim.max(dim=1, keepdim=True).values - sim)
        return scores.scatter(1, topk_items, topk_scores)

    def rerank_topk(self, sim: Tensor, pair_score) -> Tensor:
        """Re-score the top ``k_test`` items of every query row of ``sim`` (Q, N) with
        ``pair_score(query_indices, item_indices) -> (P,)`` (the ITM "match" logit in
        :meth:`predict_all`); see :meth:`compose_ranking` for the result (Q, N)."""
        topk_sim, topk_items = self.topk_candidates(sim)
        queries = torch.arange(sim.shape[0], device=sim.device)[:, None].expand_as(topk_items)
        topk_scores = pair_score(queries.reshape(-1), topk_items.reshape(-1))
        return self.compose_ranking(sim, topk_sim, topk_items, topk_scores.view(topk_items.shape))


def _fill_missing_momentum_keys(module: MPLUG2Retriever, state_dict: dict, prefix: str,
                                *args, **kwargs) -> None:
    """Load-time hook: a checkpoint without momentum encoders (e.g. a pre-trained or QA
    model) initialises them from its online weights, as the official ``copy_params``."""
    filled = 0
    for name, name_m in module.momentum_pairs:
        for key, _ in getattr(module, name_m).named_parameters():
            target, source = f'{prefix}{name_m}.{key}', f'{prefix}{name}.{key}'
            if target not in state_dict and source in state_dict:
                state_dict[target] = state_dict[source]
                filled += 1
    if filled:
        print_log(f'MPLUG2Retriever: {filled} momentum-encoder parameters missing from the '
                  'checkpoint were copied from the online modules', logger='current')
