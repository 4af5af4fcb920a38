"""mPLUG-2 universal layers: the last S BERT layers, shared by text and vision.

The universal layers are the shared pivot across modalities: the same
self-attention and feed-forward weights serve the text path and the vision
path (shared weights, separate forward passes; text tokens and visual tokens
never attend to each other here).

Text path (``forward_text``): each layer runs SA + FFN, its cross-attention is
skipped. This continues :class:`~mplug2.models.text.BertTextEncoder`.

Vision path (``forward_vision``), with V (B, Lv, D) the visual tokens of an
image or a video (any Lv) and k learnable latent queries Q0 (k, D):

    first layer  (queries):    Q1 = LN(Q0 + SA(Q0))
                               Q2 = LN(Q1 + CA(q=Q1, kv=V))
                               Q  = LN(Q2 + FFN(Q2))
    middle layers (S > 2):     the same on Q (refine the queries)
    last layer   (write-back): V1 = LN(V + SA(V))
                               V2 = LN(V1 + CA(q=V1, kv=Q))
                               U  = LN(V2 + FFN(V2))
    outer residual:            Vfin = Dropout(LayerNorm(V + U))     (``visual_norm``)

so the downstream modules receive Lv visual tokens, not k.

S = 1 (a project choice; the release has S = 2): the single layer first runs as
the query layer, then again as the write-back layer (same weights, two passes).

The official model also creates vision-only FFNs (``intermediate_vision``,
``output_vision``) that it never uses; they are not created here. The official
``latents`` parameter lives in the first universal layer
(``encoder.layer.22.latents``); here it is the top-level ``latents``.
"""
from typing import Optional, Union

import torch
from torch import nn

from mplug2.models.text.bert import (BertConfig, BertLayer, BertStack, BertWeightMap, init_bert_weights,
                                     padding_mask, run_layer)
from mplug2.registry import MODELS


@MODELS.register_module()
class UniversalLayers(BertStack):
    """The universal layers of mPLUG-2.

    Args:
        arch: ``'base'``, ``'large'`` or a dict of :class:`BertConfig` fields.
        num_layers: S, the number of universal layers (2 in mPLUG-2).
        num_queries: k, the number of learnable latent queries (50 in mPLUG-2).
        with_cp: activation checkpointing per layer (training only).
        init_cfg: MMEngine init config, applied by ``init_weights()`` over the
            random init of the constructor: ``dict(type='PretrainedBERT',
            checkpoint=DIR, layer_start=N - S)`` (or ``layer_start=-S``: the last
            S layers) loads BERT layers ``[layer_start, layer_start + S)`` into
            the SA/FFN weights; cross-attention and latents stay random unless
            the checkpoint has them (:meth:`bert_weight_map`).
            ``dict(type='PretrainedMPLUG2', checkpoint=PATH,
            prefix='universal_layers.')`` loads a checkpoint of ours.

    Parameters: ``layers.{i}.{attention,crossattention,intermediate,output}.*``
    (BERT names), ``latents`` (k, D), ``visual_norm.{weight,bias}`` (official
    ``visn_emb_norm``).
    """

    def __init__(self,
                 arch: Union[str, dict, BertConfig] = 'large',
                 num_layers: int = 2,
                 num_queries: int = 50,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError('UniversalLayers needs at least one layer')
        self.config = BertConfig.from_arch(arch)
        self.with_cp = with_cp
        hidden_size = self.config.hidden_size

        # Cross-attention keys/values come from the same width: queries and
        # visual tokens both live in the text hidden space.
        self.layers = nn.ModuleList([
            BertLayer(self.config, add_cross_attention=True, encoder_width=hidden_size)
            for _ in range(num_layers)
        ])
        # N(0, 1), as the official ``torch.randn``; BERT's init leaves raw Parameters alone.
        self.latents = nn.Parameter(torch.randn(num_queries, hidden_size))
        self.visual_norm = nn.LayerNorm(hidden_size, eps=self.config.layer_norm_eps)
        self.visual_dropout = nn.Dropout(self.config.hidden_dropout_prob)
        init_bert_weights(self, self.config.initializer_range)

    @property
    def num_queries(self) -> int:
        return self.latents.shape[0]

    @property
    def default_bert_layer_start(self) -> int:
        """The last ``len(self.layers)`` BERT layers (official: 22-23 / 18-23 of bert-large)."""
        return -len(self.layers)

    def bert_weight_map(self, layer_start: int) -> BertWeightMap:
        """BERT layers ``[layer_start, layer_start + S)``; the latents from the first
        of them when the checkpoint has them (an official mPLUG-2 text encoder
        stores them in its first universal layer)."""
        sources = self.bert_layer_sources(layer_start)
        sources.append(('latents', f'encoder.layer.{layer_start}.latents'))
        return BertWeightMap(sources=sources,
                             layers=range(layer_start, layer_start + len(self.layers)))

    def forward_text(self, hidden_states: torch.Tensor,
                     attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Text path: (B, L, D) text-encoder states and (B, L) 0/1 mask -> (B, L, D)."""
        self_attention_mask = padding_mask(attention_mask)
        for layer in self.layers:
            hidden_states, _ = run_layer(layer, self.with_cp, hidden_states, self_attention_mask)
        return hidden_states

    def forward_vision(self, visual_tokens: torch.Tensor,
                       visual_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Vision path: (B, Lv, D) visual tokens -> (B, Lv, D) ``Dropout(LN(V + U))``.

        ``visual_mask`` (B, Lv), optional (the official model uses none), hides
        padded visual tokens from the query cross-attention and from the
        write-back self-attention.
        """
        batch_size = visual_tokens.shape[0]
        mask = padding_mask(visual_mask)

        queries = self.latents.to(visual_tokens.dtype)
        queries = queries.unsqueeze(0).expand(batch_size, -1, -1)
        query_layers = self.layers[:-1] if len(self.layers) > 1 else self.layers
        for layer in query_layers:
            # SA over the queries (no mask) -> CA(q=queries, kv=V) -> FFN
            queries, _ = run_layer(layer, self.with_cp, queries, None, visual_tokens, mask)

        # write-back: SA over V -> CA(q=V, kv=queries) -> FFN
        write_back = self.layers[-1]
        updates, _ = run_layer(write_back, self.with_cp, visual_tokens, mask, queries, None)
        return self.visual_dropout(self.visual_norm(visual_tokens + updates))

    def forward(self, hidden_states: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                mode: str = 'text') -> torch.Tensor:
        """``mode='text'`` -> :meth:`forward_text`; ``mode='vision'`` -> :meth:`forward_vision`
        (``attention_mask`` is then the optional visual mask)."""
        if mode == 'text':
            return self.forward_text(hidden_states, attention_mask)
        if mode == 'vision':
            return self.forward_vision(hidden_states, attention_mask)
        raise ValueError(f"mode must be 'text' or 'vision', got {mode!r}")
