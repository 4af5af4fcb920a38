"""mPLUG-2 video-text retrieval: ITC + ITM training, ITC top-k then ITM re-ranking at test.

The heads (``mplug2.models.heads``: :class:`~mplug2.models.heads.ITCHead`,
:class:`~mplug2.models.heads.ITMHead`) follow mPLUG v1's retrieval model (itself ALBEF's), on
top of the mPLUG-2 paths of :class:`~mplug2.models.multimodal.mplug2.MPLUG2`::

    video  -> dual-vision encoder -> universal layers -> V (B, Lv, D); V[:, 0] global token
    text   -> text encoder -> universal layers (text mode) -> W (B, L, D); W[:, 0] [CLS]
    ITC    itc_head: v = normalize(vision_proj(V[:, 0])), t = normalize(text_proj(W[:, 0]));
           symmetric InfoNCE on v @ t.T / temp; positives = pairs with the same ``video_idx``;
           optionally momentum encoders (EMA copies of the paths' modules, here, and of the
           projections, in the head) give queue keys and distillation targets.
    ITM    itm_head(fusion(V, W)): match / no match from the fused text [CLS], on B positive
           pairs + one hard negative video per text + one hard negative text per video.

At test (:meth:`MPLUG2Retriever.predict_all`), the ITC cosine similarity of every text and
video ranks the candidates; the top ``k_test`` of every query are re-scored by the ITM head
(see ``rerank_score``). Features come from ``forward(mode='tensor')`` batch by batch, and the
retrieval loops (``mplug2.engine.runner.retrieval_loop``) gather them and call
:meth:`~MPLUG2Retriever.predict_all`.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import torch
from torch import Tensor

from mplug2.registry import MODELS
from ..utils.momentum import MomentumCopies, online_modules
from .mplug2 import MPLUG2

__all__ = ['MPLUG2Retriever']

#: The modules of the visual and text paths that have a momentum copy when the ITC head
#: uses momentum (the ITC projections' copies are the head's).
MOMENTUM_MODULES = ('vision_encoder', 'visual_projection', 'universal_layers', 'text_encoder')


@MODELS.register_module()
class MPLUG2Retriever(MPLUG2):
    """Video-text retrieval with vision-language contrastive (ITC) and matching (ITM) losses.

    Training data samples carry ``text`` (str, cleaned by the pipeline's ``CleanCaption``)
    and ``video_idx`` (int, equal for the texts of the same video: they are positives of
    each other in ITC and never hard negatives in ITM). ``loss`` returns
    ``dict(loss_itc, loss_itm)``.

    Args:
        itc_head: config of the ITC head (``ITCHead``: projections, temperature, momentum,
            queue, distillation); its widths are set from the model.
        itm_head: config of the ITM head (``ITMHead``).
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
                 itc_head: Optional[dict] = None,
                 itm_head: Optional[dict] = None,
                 max_text_tokens: int = 40,
                 k_test: int = 128,
                 rerank_score: str = 'itm',
                 itm_batch_size: int = 128,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.require('text_encoder', 'fusion')
        if rerank_score not in ('itm', 'itm+itc'):
            raise ValueError(f"rerank_score must be 'itm' or 'itm+itc', got {rerank_score!r}")
        self.max_text_tokens = max_text_tokens
        self.k_test = k_test
        self.rerank_score = rerank_score
        self.itm_batch_size = itm_batch_size

        width = self.text_width
        self.itc_head = MODELS.build(itc_head or dict(type='ITCHead'),
                                     default_args=dict(vision_width=width, text_width=width))
        self.itm_head = MODELS.build(itm_head or dict(type='ITMHead'),
                                     default_args=dict(hidden_size=width))
        # Momentum encoders: EMA copies of the paths' modules, never trained by the optimiser.
        self.momentum_encoders = MomentumCopies(
            online_modules(self, MOMENTUM_MODULES),
            self.itc_head.momentum) if self.itc_head.use_momentum else None

    # ------------------------------------------------------------------ initialisation
    def init_weights(self) -> None:
        """Initialise (load) the online modules, then restart the momentum copies from them."""
        super().init_weights()
        if self.momentum_encoders is not None:
            self.momentum_encoders.reset(online_modules(self, self.momentum_encoders.names()))
            self.itc_head.momentum_projections.reset(
                online_modules(self.itc_head, self.itc_head.momentum_projections.names()))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """EMA step of every momentum copy: ``param_m = m * param_m + (1 - m) * param``."""
        self.momentum_encoders.update(online_modules(self, self.momentum_encoders.names()))
        self.itc_head.momentum_update()

    # ------------------------------------------------------------------ features
    def tokenize_texts(self, texts: Sequence[str]) -> dict:
        return self.tokenize(texts, self.max_text_tokens)

    @torch.no_grad()
    def momentum_features(self, inputs: Tensor, tokens: dict):
        """ITC embeddings of the momentum encoders: the visual and text paths of
        :class:`MPLUG2` run with the momentum copies."""
        copies = self.momentum_encoders
        visual = self.visual_path(inputs, copies['vision_encoder'],
                                  copies['visual_projection'] if 'visual_projection' in copies else None,
                                  copies['universal_layers'] if 'universal_layers' in copies else None)
        text = self.text_path(tokens['input_ids'], tokens['attention_mask'], copies['text_encoder'],
                              copies['universal_layers'] if 'universal_layers' in copies else None)
        return self.itc_head.embed_momentum(visual, text)

    def extract_video_feat(self, inputs: Tensor) -> Dict[str, Tensor]:
        """``visual_feat`` (B, E) ITC embeddings and ``visual_embeds`` (B, Lv, D) tokens (ITM)."""
        visual_embeds = self.extract_visual_features(inputs)
        return dict(visual_feat=self.itc_head.embed_vision(visual_embeds),
                    visual_embeds=visual_embeds)

    def extract_text_feat(self, texts: Sequence[str]) -> Dict[str, Tensor]:
        """``text_feat`` (N, E) ITC embeddings, ``text_embeds`` (N, L, D), ``text_mask`` (N, L)."""
        tokens = self.tokenize_texts(texts)
        text_embeds = self.encode_text(tokens['input_ids'], tokens['attention_mask'])
        return dict(text_feat=self.itc_head.embed_text(text_embeds),
                    text_embeds=text_embeds, text_mask=tokens['attention_mask'])

    def fuse(self, visual_embeds: Tensor, text_embeds: Tensor, text_mask: Tensor) -> Tensor:
        """Fusion of aligned (video, text) pairs -> the fused text states."""
        return self.fusion(visual_embeds, text_embeds, text_mask)[1]

    def itm_logits(self, visual_embeds: Tensor, text_embeds: Tensor, text_mask: Tensor) -> Tensor:
        """(N, 2) ITM logits of aligned (video, text) pairs."""
        return self.itm_head(self.fuse(visual_embeds, text_embeds, text_mask))

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
            sample_texts = sample.get('text')
            if sample_texts is None:
                continue
            sample_texts = [sample_texts] if isinstance(sample_texts, str) else list(sample_texts)
            texts += sample_texts
            owners += [position] * len(sample_texts)
        if texts:
            feats.update(self.extract_text_feat(texts))
            feats['text_sample'] = torch.tensor(owners, device=feats['text_feat'].device)
        return feats

    def loss(self, inputs: Tensor, data_samples: list) -> Dict[str, Tensor]:
        texts = []
        for sample in data_samples:
            text = sample.text
            if not isinstance(text, str):
                raise ValueError('MPLUG2Retriever.loss needs one text (str) per sample, got '
                                 f'{type(text).__name__}; use the training layout of the dataset')
            texts.append(text)
        video_idx = torch.tensor([int(sample.video_idx) for sample in data_samples],
                                 device=inputs.device)
        tokens = self.tokenize_texts(texts)

        visual_embeds = self.extract_visual_features(inputs)
        text_embeds = self.encode_text(tokens['input_ids'], tokens['attention_mask'])
        visual_feat = self.itc_head.embed_vision(visual_embeds)
        text_feat = self.itc_head.embed_text(text_embeds)
        self.itc_head.clamp_temperature()

        # ITC, with momentum keys / queue / distillation when configured.
        visual_feat_m = text_feat_m = None
        if self.momentum_encoders is not None:
            self.momentum_update()
            visual_feat_m, text_feat_m = self.momentum_features(inputs, tokens)
        loss_itc = self.itc_head.loss(visual_feat, text_feat, video_idx, visual_feat_m, text_feat_m)
        if self.itc_head.queue_size > 0:
            self.itc_head.dequeue_and_enqueue(visual_feat_m, text_feat_m, video_idx)

        # ITM on positives and hard negatives mined from the in-batch ITC similarity.
        sim_v2t = (visual_feat @ text_feat.t()).detach() / self.itc_head.temp.detach()
        loss_itm = self.itm_head.loss(self.fuse, visual_embeds, text_embeds,
                                      tokens['attention_mask'], sim_v2t, video_idx)
        return dict(loss_itc=loss_itc, loss_itm=loss_itm)

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        raise NotImplementedError(
            'retrieval ranks the whole test set: use forward(mode="tensor") and predict_all, '
            "as val_cfg/test_cfg = dict(type='MPLUG2RetrievalValLoop' / "
            "'MPLUG2RetrievalTestLoop') do")

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
        device = self.itc_head.temp.device
        sim_itc = (text_feats['text_feat'].to(device).float()
                   @ video_feats['visual_feat'].to(device).float().t())
        num_videos = sim_itc.shape[1]
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

        sim_t2v = self.rerank_topk(  # queries: texts, items: videos
            sim_itc, lambda texts, videos: pair_scores(videos, texts), reduce)
        sim_v2t = self.rerank_topk(  # queries: videos, items: texts
            sim_itc.t(), lambda videos, texts: pair_scores(videos, texts), reduce)
        return dict(sim_t2v=sim_t2v.cpu(), sim_v2t=sim_v2t.cpu(), sim_itc=sim_itc.cpu())

    def itm_match_score(self, video_feats: dict, text_feats: dict, videos: Tensor,
                        texts: Tensor) -> Tensor:
        """ITM "match" logit of the pairs ``(visual_embeds[videos[i]], texts[i])``,
        ``itm_batch_size`` pairs at a time."""
        device = self.itc_head.temp.device
        scores = []
        for video_chunk, text_chunk in zip(videos.split(self.itm_batch_size),
                                           texts.split(self.itm_batch_size)):
            video_chunk, text_chunk = video_chunk.cpu(), text_chunk.cpu()
            logits = self.itm_logits(
                video_feats['visual_embeds'][video_chunk].to(device),
                text_feats['text_embeds'][text_chunk].to(device),
                text_feats['text_mask'][text_chunk].to(device))
            scores.append(logits[:, 1].float())
        return torch.cat(scores)

    def rerank_topk(self, sim: Tensor, pair_score,
                    reduce: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
        """Re-score the top ``k_test`` items of every query row of ``sim``.

        Args:
            sim: (Q, N) ITC similarity of queries (rows) and items (columns).
            pair_score: ``pair_score(query_indices, item_indices) -> (P,)`` scores of the
                P pairs (the ITM "match" logit in :meth:`predict_all`), in one call.
            reduce: applied in place to the (Q, k) top-k scores before they are used (the
                sum over ranks of :meth:`predict_all`).

        Returns:
            (Q, N) scores: ``pair_score`` (+ ``sim`` with ``rerank_score='itm+itc'``) for
            the top-k items of each row; below them, the other items in ITC order.
        """
        num_queries, num_items = sim.shape
        if num_items == 0:
            return sim.new_zeros(sim.shape)
        topk_sim, topk_items = sim.topk(min(self.k_test, num_items), dim=1)
        queries = torch.arange(num_queries, device=sim.device)[:, None].expand_as(topk_items)
        topk_scores = pair_score(queries.reshape(-1), topk_items.reshape(-1))
        topk_scores = topk_scores.reshape(topk_items.shape).contiguous()
        if reduce is not None:
            reduce(topk_scores)
        topk_scores = topk_scores.to(sim.dtype)
        if self.rerank_score == 'itm+itc':
            topk_scores = topk_scores + topk_sim
        floor = topk_scores.min(dim=1, keepdim=True).values - 1
        scores = floor - (sim.max(dim=1, keepdim=True).values - sim)
        return scores.scatter(1, topk_items, topk_scores)

