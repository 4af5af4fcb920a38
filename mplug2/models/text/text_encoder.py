"""mPLUG-2 text encoder: BERT embeddings + the first N - S BERT layers.

In mPLUG-2 the text encoder of BERT-large has 24 layers; the last S = 2 are the
*universal layers*, shared with the vision path. This project keeps them in a
separate module (:class:`~mplug2.models.necks.UniversalLayers`), so the full
text path is::

    words = universal_layers.forward_text(text_encoder(input_ids, mask), mask)

and ``BertTextEncoder`` holds the embeddings and layers ``[0, N - S)``
(22 for the released large model, 10 for base). No pooler, no projection.
"""
from typing import Optional, Union

import torch
from torch import nn

from mplug2.models.text.bert import (BertConfig, BertEmbeddings, BertLayer, BertStack, BertWeightMap,
                                     init_bert_weights, padding_mask, run_layer)
from mplug2.registry import MODELS


@MODELS.register_module()
class BertTextEncoder(BertStack):
    """BERT embeddings followed by ``num_layers`` post-LN BERT layers (SA + FFN).

    Args:
        arch: ``'base'``, ``'large'`` or a dict of :class:`BertConfig` fields
            (e.g. ``dict(arch='large', hidden_dropout_prob=0.0)``).
        num_layers: number of BERT layers in this module (N - S).
        with_cp: activation checkpointing per layer (training only).
        init_cfg: MMEngine init config, applied by ``init_weights()`` over the
            BERT random init of the constructor: ``dict(type='PretrainedBERT',
            checkpoint=DIR, layer_start=0)`` loads the embeddings and BERT layers
            ``[layer_start, layer_start + num_layers)`` of a transformers BERT
            (:meth:`bert_weight_map`); ``dict(type='PretrainedMPLUG2',
            checkpoint=PATH, prefix='text_encoder.')`` a checkpoint of ours.
    """

    def __init__(self,
                 arch: Union[str, dict, BertConfig] = 'large',
                 num_layers: int = 22,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.config = BertConfig.from_arch(arch)
        self.with_cp = with_cp

        self.embeddings = BertEmbeddings(self.config)
        self.layers = nn.ModuleList([BertLayer(self.config) for _ in range(num_layers)])
        init_bert_weights(self, self.config.initializer_range)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def bert_weight_map(self, layer_start: int) -> BertWeightMap:
        """Embeddings + BERT layers ``[layer_start, layer_start + num_layers)``."""
        return BertWeightMap(
            sources=[('embeddings.', 'embeddings.')] + self.bert_layer_sources(layer_start),
            layers=range(layer_start, layer_start + len(self.layers)))

    def forward(self,
                input_ids: torch.Tensor,
                attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L), 1 for tokens and 0 for padding.
            token_type_ids: (B, L), default all 0 (as mPLUG-2).

        Returns:
            (B, L, D) last hidden states.
        """
        hidden_states = self.embeddings(input_ids, token_type_ids)
        self_attention_mask = padding_mask(attention_mask)
        for layer in self.layers:
            hidden_states, _ = run_layer(layer, self.with_cp, hidden_states, self_attention_mask)
        return hidden_states
