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

from mplug2.models.text.bert import (BertConfig, BertEmbeddings, BertLayer, BertStack, init_bert_weights,
                                     padding_mask, run_layer)
from mplug2.models.utils.bert_checkpoint import init_text_encoder_from_bert
from mplug2.registry import MODELS


@MODELS.register_module()
class BertTextEncoder(BertStack):
    """BERT embeddings followed by ``num_layers`` post-LN BERT layers (SA + FFN).

    Args:
        arch: ``'base'``, ``'large'`` or a dict of :class:`BertConfig` fields
            (e.g. ``dict(arch='large', hidden_dropout_prob=0.0)``).
        num_layers: number of BERT layers in this module (N - S).
        with_cp: activation checkpointing per layer (training only).
        pretrained: a transformers BERT directory. ``init_weights()`` then loads
            the embeddings and BERT layers ``[pretrained_layer_start,
            pretrained_layer_start + num_layers)``.
        pretrained_layer_start: first BERT layer to load, default 0.
        init_cfg: MMEngine init config (e.g. ``dict(type='Pretrained',
            checkpoint=..., prefix=...)`` for a checkpoint in this module's own
            layout); applied after the BERT random init.
    """

    def __init__(self,
                 arch: Union[str, dict, BertConfig] = 'large',
                 num_layers: int = 22,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 pretrained_layer_start: int = 0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.config = BertConfig.from_arch(arch)
        self.with_cp = with_cp
        self.pretrained = pretrained
        self.pretrained_layer_start = pretrained_layer_start

        self.embeddings = BertEmbeddings(self.config)
        self.layers = nn.ModuleList([BertLayer(self.config) for _ in range(num_layers)])
        init_bert_weights(self, self.config.initializer_range)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def load_pretrained_bert(self) -> None:
        init_text_encoder_from_bert(self, self.pretrained, self.pretrained_layer_start)

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
