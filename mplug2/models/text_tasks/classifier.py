"""mPLUG-2 text classification and regression (GLUE; paper, Table 2 and appendix B.2.2).

    [CLS] a [SEP] (b [SEP]) -> text encoder -> universal layers (text mode) -> [CLS] -> head

No vision module runs: the model is built with ``vision_encoder=None`` and ``fusion=None``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor

from mplug2.registry import MODELS
from ..multimodal.mplug2 import MPLUG2

__all__ = ['MPLUG2TextClassifier']

#: Parameters of the universal layers that only the vision path uses.
_VISION_ONLY = ('.latents', '.crossattention.', '.visual_norm.')


@MODELS.register_module()
class MPLUG2TextClassifier(MPLUG2):
    """Sentence and sentence-pair classification or regression on the text ``[CLS]`` state.

    A sample is encoded as BERT does (:meth:`MPLUG2Tokenizer.encode_pairs`):
    ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` with ``token_type_ids`` 0 / 1, cut to
    ``max_length`` tokens (the longer sentence loses its last word pieces first). The
    ``[CLS]`` state after the universal layers goes to the head (``TextClsHead``: dropout +
    linear; ``num_classes=1``: regression trained with the mean squared error).

    Data samples carry ``text_a``, optionally ``text_b`` (pair tasks; all samples of a batch
    alike) and, for training, ``gt_label`` (class index, or a float score for
    regression). ``predict`` writes ``pred_label`` (the argmax class as an int; the score as
    a float for regression) and, for classification, ``pred_score`` (the class
    probabilities, a CPU tensor).

    The vision-only parameters of the universal layers (latent queries, cross-attention,
    ``visual_norm``) take no part in the text path. They are kept, so that mPLUG-2
    checkpoints load with their full layout, but frozen (``requires_grad=False``): their
    values pass through fine-tuning unchanged and distributed training does not wait for
    gradients that never come.

    Args:
        num_classes: number of classes; 1 for regression (STS-B).
        head: config of the head (default ``dict(type='TextClsHead')``); ``hidden_size``
            and ``num_classes`` are filled in.
        max_length: tokens per sample, special tokens included (BERT's GLUE setting: 128).
        *args, **kwargs: the modules, see :class:`~mplug2.models.multimodal.mplug2.MPLUG2`;
            ``text_encoder`` is required, ``vision_encoder``, ``fusion`` and
            ``text_decoder`` must be None.
    """

    def __init__(self,
                 *args,
                 num_classes: int,
                 head: Optional[dict] = None,
                 max_length: int = 128,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.require('text_encoder')
        extra = [name for name in ('vision_encoder', 'fusion', 'text_decoder')
                 if getattr(self, name) is not None]
        if extra:
            raise ValueError(f'{type(self).__name__} is a text-only model: configure it without '
                             f'{", ".join(extra)} (set them to None)')
        self.num_classes = num_classes
        self.max_length = max_length
        head = dict(head or dict(type='TextClsHead'))
        self.head = MODELS.build(head, default_args=dict(hidden_size=self.text_width,
                                                         num_classes=num_classes))
        if self.universal_layers is not None:
            for name, parameter in self.universal_layers.named_parameters():
                if any(part in '.' + name for part in _VISION_ONLY):
                    parameter.requires_grad_(False)

    # ------------------------------------------------------------------ features
    def tokenize_pairs(self, texts_a: Sequence[str], texts_b: Optional[Sequence[str]]) -> dict:
        """``encode_pairs`` on the model's device, capped to the text encoder's position table."""
        encoded = self.tokenizer.encode_pairs(
            list(texts_a), None if texts_b is None else list(texts_b), max_length=self.max_length,
            position_limit=self.max_text_positions,
            limit_source=f"the {self._positions_source}'s position table (max_position_embeddings)")
        return {key: value.to(self.data_preprocessor.device) for key, value in encoded.items()}

    def extract_feat(self, texts_a: Sequence[str], texts_b: Optional[Sequence[str]] = None) -> Tensor:
        """(B, D) ``[CLS]`` states of the sentences (pairs) after the universal layers."""
        tokens = self.tokenize_pairs(texts_a, texts_b)
        hidden = self.encode_text(tokens['input_ids'], tokens['attention_mask'],
                                  tokens['token_type_ids'])
        return hidden[:, 0]

    @staticmethod
    def _texts(data_samples: list):
        if not data_samples:
            raise ValueError('MPLUG2TextClassifier needs data samples with text_a')
        texts_a, texts_b = [], []
        for index, sample in enumerate(data_samples):
            text_a = sample.get('text_a')
            if not isinstance(text_a, str):
                raise KeyError(f'sample {index} has no text_a (its fields: {sorted(sample.keys())})')
            texts_a.append(text_a)
            texts_b.append(sample.get('text_b'))
        pairs = [text is not None for text in texts_b]
        if any(pairs) and not all(pairs):
            raise ValueError('a batch mixes sentence pairs and single sentences: samples '
                             f'{[i for i, p in enumerate(pairs) if not p]} have no text_b')
        return texts_a, (texts_b if all(pairs) else None)

    def classify(self, data_samples: list) -> Tensor:
        """(B, num_classes) logits of the samples' texts."""
        return self.head(self.extract_feat(*self._texts(data_samples)))

    # ------------------------------------------------------------------ BaseModel
    def forward(self, inputs: Optional[Tensor], data_samples: Optional[list] = None,
                mode: str = 'loss'):
        if mode == 'tensor':
            return self.classify(data_samples)
        return super().forward(inputs, data_samples, mode)

    def loss(self, inputs: Optional[Tensor], data_samples: list) -> dict:
        logits = self.classify(data_samples)
        labels = []
        for index, sample in enumerate(data_samples):
            label = sample.get('gt_label')
            if label is None:
                raise KeyError(f'sample {index} has no gt_label: training needs labelled data')
            labels.append(float(label) if self.head.is_regression else int(label))
        targets = torch.tensor(labels, device=logits.device)
        return dict(loss=self.head.loss(logits, targets))

    @torch.no_grad()
    def predict(self, inputs: Optional[Tensor], data_samples: Optional[list] = None) -> List:
        logits = self.classify(data_samples)
        labels, probabilities = self.head.predict(logits)
        for index, sample in enumerate(data_samples):
            if probabilities is None:
                sample.pred_label = float(labels[index])
            else:
                sample.pred_label = int(labels[index])
                sample.pred_score = probabilities[index].cpu()
        return data_samples
