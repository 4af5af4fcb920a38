"""mPLUG-2 (paper Fig. 2): the modules and the two paths every task shares.

    visual: dual-vision encoder -> (projection if widths differ) -> universal layers
    text:   BERT text encoder -> universal layers (text mode, the same weights)

A task model is one file that composes these paths with its heads; which modules run is
visible in its ``loss`` and ``predict``:

- :class:`~mplug2.models.multimodal.qa.MPLUG2QA` (``qa.py``): question -> text path ->
  fusion with the visual tokens; the shared decoder generates (or ranks) the answer.
- :class:`~mplug2.models.multimodal.captioner.MPLUG2Captioner` (``captioner.py``): the
  decoder attends to the visual tokens directly (+ the SCST stage).
- :class:`~mplug2.models.multimodal.retriever.MPLUG2Retriever` (``retriever.py``): ITC and
  ITM heads (``mplug2.models.heads``) on the two paths and the fusion module.

Inputs are ``(B, 3, H, W)`` images or ``(B, 3, T, H, W)`` videos, normalised by the data
preprocessor. Annotations arrive as data fields of :class:`~mplug2.structures.DataSample`
(``question``, ``gt_answer``, ``answer_weight``, ``gt_caption``, ``text``, ``video_idx``),
with text already cleaned by the data pipeline (``CleanQuestion`` / ``CleanCaption``);
predictions are written as data fields (``pred_answer``, ``pred_caption``), the names
mmpretrain's and our metrics read.
"""
from __future__ import annotations

from typing import Optional, Sequence

from mmengine.model import BaseModel
from torch import Tensor, nn

from mplug2.registry import MODELS, TOKENIZERS

__all__ = ['MPLUG2']


class MPLUG2(BaseModel):
    """The modules of mPLUG-2 and the visual/text paths every task shares.

    Args:
        vision_encoder: config of the dual-vision encoder (``DualVisionEncoder``); None for
            the text-only tasks (text encoder and universal layers only; paper, Table 2).
        tokenizer: config of the tokenizer (``MPLUG2Tokenizer``), required.
        universal_layers: config of the universal layers; None skips them (the visual
            tokens then go to fusion/decoder straight from the encoder).
        text_encoder: config of the BERT text encoder (tasks with text input).
        fusion: config of the fusion module (tasks that fuse text and vision).
        text_decoder: config of the shared text decoder (generative tasks).
        data_preprocessor: config of the data preprocessor; default ``MPLUG2DataPreprocessor``
            (CLIP normalisation of images and videos), which the encoder's weights expect.
        init_cfg: MMEngine init config of the whole model.
    """

    def __init__(self,
                 vision_encoder: Optional[dict] = None,
                 tokenizer: Optional[dict] = None,
                 universal_layers: Optional[dict] = None,
                 text_encoder: Optional[dict] = None,
                 fusion: Optional[dict] = None,
                 text_decoder: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mplug2.MPLUG2DataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if tokenizer is None:
            raise ValueError(f'{type(self).__name__} needs a tokenizer config')
        self.vision_encoder = MODELS.build(vision_encoder) if vision_encoder else None
        self.universal_layers = MODELS.build(universal_layers) if universal_layers else None
        self.text_encoder = MODELS.build(text_encoder) if text_encoder else None
        self.fusion = MODELS.build(fusion) if fusion else None
        self.text_decoder = MODELS.build(text_decoder) if text_decoder else None
        self.tokenizer = TOKENIZERS.build(tokenizer)

        # Token ids are embedded by the text encoder and the decoder: no text may be longer
        # than their position tables (see :meth:`tokenize`).
        tables = [(module.config.max_position_embeddings, name)
                  for name, module in (('text_encoder', self.text_encoder),
                                       ('text_decoder', self.text_decoder)) if module is not None]
        # the smallest table, the text encoder's on a tie
        self.max_text_positions, self._positions_source = min(
            tables, key=lambda table: table[0]) if tables else (None, None)

        # The official ``visn_fc``: only when the vision width differs from the text width.
        vision_width = None if self.vision_encoder is None else self.vision_encoder.width
        text_width = self.text_width
        if None not in (vision_width, text_width) and text_width != vision_width:
            self.visual_projection = nn.Sequential(
                nn.Linear(vision_width, text_width), nn.LayerNorm(text_width, eps=1e-12), nn.Dropout(0.1))
        else:
            self.visual_projection = None

    @property
    def text_width(self) -> Optional[int]:
        """Width of the text side (and of the visual tokens after the projection)."""
        for module in (self.universal_layers, self.text_encoder, self.fusion, self.text_decoder):
            if module is not None:
                return module.config.hidden_size
        return None

    def require(self, *names: str) -> None:
        """Raise a ValueError naming the modules of ``names`` this model was built without."""
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise ValueError(f'{type(self).__name__} needs {", ".join(names)}; '
                             f'configured without {", ".join(missing)}')

    # ------------------------------------------------------------------ shared paths
    def extract_visual_features(self, inputs: Tensor) -> Tensor:
        """Dual-vision encoder -> universal layers: (B, Lv, D) visual tokens for images and videos."""
        self.require('vision_encoder')
        return self.visual_path(inputs, self.vision_encoder, self.visual_projection,
                                self.universal_layers)

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor,
                    token_type_ids: Optional[Tensor] = None) -> Tensor:
        """Text encoder -> universal layers (text mode): (B, L, D).

        ``token_type_ids`` (B, L): BERT's segment ids (0 / 1 for a sentence pair); None: all 0.
        """
        return self.text_path(input_ids, attention_mask, self.text_encoder, self.universal_layers,
                              token_type_ids=token_type_ids)

    @staticmethod
    def visual_path(inputs: Tensor, vision_encoder: nn.Module, visual_projection: Optional[nn.Module],
                    universal_layers: Optional[nn.Module]) -> Tensor:
        """The visual path through the given modules (the online ones or momentum copies)."""
        visual = vision_encoder(inputs)
        if visual_projection is not None:
            visual = visual_projection(visual)
        if universal_layers is not None:
            visual = universal_layers.forward_vision(visual)
        return visual

    @staticmethod
    def text_path(input_ids: Tensor, attention_mask: Tensor, text_encoder: nn.Module,
                  universal_layers: Optional[nn.Module],
                  token_type_ids: Optional[Tensor] = None) -> Tensor:
        """The text path through the given modules (the online ones or momentum copies);
        ``token_type_ids`` go to the text encoder's embeddings (None: all 0)."""
        if token_type_ids is None:
            hidden = text_encoder(input_ids, attention_mask)
        else:
            hidden = text_encoder(input_ids, attention_mask, token_type_ids=token_type_ids)
        if universal_layers is not None:
            hidden = universal_layers.forward_text(hidden, attention_mask)
        return hidden

    def tokenize(self, texts: Sequence[str], max_length: Optional[int]) -> dict:
        """Token ids and attention mask of ``texts`` on the model's device, at most
        ``max_length`` tokens (``[CLS]`` included; None: no limit asked for).

        Whatever ``max_length`` says, no text gets more tokens than the position tables of
        the modules that embed token ids (``text_encoder``, ``text_decoder``: their
        ``max_position_embeddings``) have rows: a longer text is cut to fit, with a warning
        that counts the dropped tokens (:class:`~mplug2.models.text.MPLUG2Tokenizer`,
        ``position_limit``). Every task model tokenizes through this method.
        """
        if self.max_text_positions is None:
            encoded = self.tokenizer(list(texts), max_length=max_length)
        else:
            encoded = self.tokenizer(
                list(texts), max_length=max_length, position_limit=self.max_text_positions,
                limit_source=f"the {self._positions_source}'s position table (max_position_embeddings)")
        return {key: value.to(self.data_preprocessor.device) for key, value in encoded.items()}

    # ------------------------------------------------------------------ BaseModel
    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'loss'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_visual_features(inputs)
        raise RuntimeError(f'Invalid mode "{mode}": use loss, predict or tensor')

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        raise NotImplementedError

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        raise NotImplementedError
