"""mPLUG-2 fusion module: asymmetric co-attention over text, with optional
mPLUG connected-attention (skip) layers.

Layer j (j = 0 .. num_layers - 1) is

* an **asymmetric co-attention** layer (always, unless connected attention is on)::

      T1 = LN(T + SA(T, text_mask))
      T2 = LN(T1 + CA(q=T1, kv=V, visual_mask))
      T  = LN(T2 + FFN(T2))                    V is left untouched

* a **connected-attention** layer (mPLUG v1's cross-modal skip connection) when
  ``connect_stride`` is set, j > 0 and j % connect_stride == 0::

      J      = [V; T]                          masks concatenated the same way
      J'     = LN(J + SA(J));  J' = LN(J' + FFN(J'))      (no cross-attention)
      V, T   = V + J'[:, :Lv], J'[:, Lv:]      (extra visual residual, as the official code)

The release disables connected attention (``stride_layer`` 1000), so the
default ``connect_stride=None`` returns the visual states unchanged (the very
same tensor). Every layer has cross-attention weights, also the connected ones
(official checkpoint layout). mPLUG-2 large runs 6 fusion layers (BERT-large
layers 18..23), base 3.
"""
from typing import Optional, Tuple, Union

import torch
from torch import nn

from mplug2.models.text.bert import (BertConfig, BertLayer, BertStack, BertWeightMap, init_bert_weights,
                                     padding_mask, run_layer)
from mplug2.registry import MODELS


@MODELS.register_module()
class FusionModule(BertStack):
    """The fusion module of mPLUG-2.

    Args:
        arch: ``'base'``, ``'large'`` or a dict of :class:`BertConfig` fields.
        num_layers: number of fusion layers (6 large, 3 base).
        encoder_width: width of the visual states (cross-attention K/V input),
            default the hidden size. Connected attention needs it equal to the
            hidden size.
        connect_stride: stride of the connected-attention layers; None or 0
            disables them (the release).
        with_cp: activation checkpointing per layer (training only).
        init_cfg: MMEngine init config, applied by ``init_weights()`` over the
            random init of the constructor: ``dict(type='PretrainedBERT',
            checkpoint=DIR, layer_start=18)`` (or ``layer_start=-num_layers``:
            the last layers, as the release) loads the SA/FFN (and
            cross-attention, if present) of BERT layers ``[layer_start,
            layer_start + num_layers)`` (:meth:`bert_weight_map`);
            ``dict(type='PretrainedMPLUG2', checkpoint=PATH, prefix='fusion.')``
            a checkpoint of ours.

    Parameters: ``layers.{j}.{attention,crossattention,intermediate,output}.*``
    (official ``fusion_encoder.encoder.layer.{start + j}.*``).
    """

    def __init__(self,
                 arch: Union[str, dict, BertConfig] = 'large',
                 num_layers: int = 6,
                 encoder_width: Optional[int] = None,
                 connect_stride: Optional[int] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.config = BertConfig.from_arch(arch)
        self.encoder_width = encoder_width or self.config.hidden_size
        self.connect_stride = connect_stride or None
        self.with_cp = with_cp
        if self.connect_stride is not None and self.encoder_width != self.config.hidden_size:
            raise ValueError('connected attention concatenates visual and text states: '
                             'encoder_width must equal hidden_size')

        self.layers = nn.ModuleList([
            BertLayer(self.config, add_cross_attention=True, encoder_width=self.encoder_width)
            for _ in range(num_layers)
        ])
        init_bert_weights(self, self.config.initializer_range)

    def is_connected_layer(self, index: int) -> bool:
        """Whether layer ``index`` is a connected-attention (skip) layer."""
        return (self.connect_stride is not None and index > 0
                and index % self.connect_stride == 0)

    @property
    def default_bert_layer_start(self) -> int:
        """The last ``len(self.layers)`` BERT layers (official: 22-23 / 18-23 of bert-large)."""
        return -len(self.layers)

    def bert_weight_map(self, layer_start: int) -> BertWeightMap:
        """BERT layers ``[layer_start, layer_start + num_layers)`` (cross-attention
        only if the checkpoint has it)."""
        return BertWeightMap(sources=self.bert_layer_sources(layer_start),
                             layers=range(layer_start, layer_start + len(self.layers)))

    def forward(self,
                visual_states: torch.Tensor,
                text_states: torch.Tensor,
                text_mask: Optional[torch.Tensor] = None,
                visual_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            visual_states: (B, Lv, encoder_width), e.g. the universal layers' output.
            text_states: (B, Lt, D) encoded text.
            text_mask: (B, Lt) 0/1, default all 1.
            visual_mask: (B, Lv) 0/1, default all 1.

        Returns:
            ``(visual_states, text_states)``: (B, Lv, ·) and (B, Lt, D).
        """
        text_attention_mask = padding_mask(text_mask)
        visual_attention_mask = padding_mask(visual_mask)
        joint_attention_mask = None
        if any(self.is_connected_layer(j) for j in range(len(self.layers))):
            joint_attention_mask = self._joint_mask(visual_states, text_states, text_mask,
                                                    visual_mask)

        for j, layer in enumerate(self.layers):
            if self.is_connected_layer(j):
                num_visual = visual_states.shape[1]
                joint_states = torch.cat([visual_states, text_states], dim=1)
                joint_states, _ = run_layer(layer, self.with_cp, joint_states, joint_attention_mask)
                visual_states = visual_states + joint_states[:, :num_visual]
                text_states = joint_states[:, num_visual:]
            else:
                text_states, _ = run_layer(layer, self.with_cp, text_states, text_attention_mask,
                                           visual_states, visual_attention_mask)
        return visual_states, text_states

    @staticmethod
    def _joint_mask(visual_states, text_states, text_mask, visual_mask):
        """Boolean mask over [visual; text] keys, or None when nothing is padded."""
        if text_mask is None and visual_mask is None:
            return None
        batch_size, device = text_states.shape[0], text_states.device
        if visual_mask is None:
            visual_mask = torch.ones(batch_size, visual_states.shape[1], device=device)
        if text_mask is None:
            text_mask = torch.ones(batch_size, text_states.shape[1], device=device)
        joint = torch.cat([visual_mask.bool(), text_mask.bool()], dim=1)
        return padding_mask(joint)
