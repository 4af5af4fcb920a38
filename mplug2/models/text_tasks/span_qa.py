"""mPLUG-2 extractive question answering over text (SQuAD v1.1 / v2.0)."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mplug2.models.multimodal.mplug2 import MPLUG2
from mplug2.registry import MODELS

__all__ = ['MPLUG2SpanQA']


@MODELS.register_module()
class MPLUG2SpanQA(MPLUG2):
    """Span extraction: ``[CLS] question [SEP] context [SEP]`` -> text encoder -> universal
    layers (text mode) -> :class:`~mplug2.models.heads.SpanHead` (start / end logits).

    Every data sample is one window of a question's context, as
    :class:`~mplug2.datasets.SquadDataset` builds them: ``input_ids``, ``token_type_ids``
    (``(L,)`` arrays, unpadded), ``offsets`` (``(L, 2)`` character offsets of the context
    tokens in ``context``, -1 for the others) and, for training, ``start_position`` /
    ``end_position`` (0, the ``[CLS]``, when the window has no answer).

    ``loss``: mean of the start and end cross-entropies (BERT). ``predict`` writes per
    window ``pred_spans``, the ``n_best`` valid spans (context tokens only, start <= end,
    at most ``max_answer_tokens`` tokens) as ``dict(text, start, end, score)`` with
    ``text = context[start:end]``, the exact substring of the context (casing and
    punctuation kept) and ``score = start_logit + end_logit``; and ``null_score``, the
    ``[CLS]`` score ``start_logits[0] + end_logits[0]`` (SQuAD v2.0's "no answer"). The
    windows of one question are combined by :class:`~mplug2.evaluation.SquadMetric`
    (best span over the windows, against the lowest null score for v2.0).

    Args:
        span_head: config of the span head (default ``dict(type='SpanHead')``).
        max_answer_tokens: longest predicted span, in word pieces (30 as BERT).
        n_best: spans kept per window (20 as BERT).
        *args, **kwargs: the modules (:class:`MPLUG2`): ``text_encoder``, ``tokenizer`` and
            usually ``universal_layers``; no vision encoder, fusion or decoder.
    """

    def __init__(self,
                 *args,
                 span_head: Optional[dict] = None,
                 max_answer_tokens: int = 30,
                 n_best: int = 20,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.require('text_encoder')
        unused = [name for name in ('vision_encoder', 'fusion', 'text_decoder')
                  if getattr(self, name) is not None]
        if unused:
            raise ValueError(f'{type(self).__name__} runs only the text encoder and the '
                             f'universal layers; configure it with {"=None, ".join(unused)}=None')
        if max_answer_tokens < 1 or n_best < 1:
            raise ValueError(f'max_answer_tokens and n_best must be >= 1, got '
                             f'{max_answer_tokens} and {n_best}')
        self.max_answer_tokens = max_answer_tokens
        self.n_best = n_best
        self.span_head = MODELS.build(span_head or dict(type='SpanHead'),
                                      default_args=dict(hidden_size=self.text_width))

    # ------------------------------------------------------------------ batching
    def collate(self, data_samples: list) -> Tuple[Tensor, Tensor, Tensor]:
        """Right-padded ``input_ids``, ``attention_mask`` and ``token_type_ids`` (B, L)."""
        if not data_samples:
            raise ValueError(f'{type(self).__name__} got an empty batch')
        rows = [np.asarray(sample.input_ids).reshape(-1) for sample in data_samples]
        length = max(len(row) for row in rows)
        if self.max_text_positions is not None and length > self.max_text_positions:
            raise ValueError(f'a window has {length} tokens but the text encoder has '
                             f'{self.max_text_positions} positions (max_position_embeddings); '
                             f"set the dataset's max_length to at most {self.max_text_positions}")
        ids = np.full((len(rows), length), self.tokenizer.pad_token_id, dtype=np.int64)
        types = np.zeros((len(rows), length), dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for index, (row, sample) in enumerate(zip(rows, data_samples)):
            ids[index, :len(row)] = row
            mask[index, :len(row)] = 1
            segment = sample.get('token_type_ids')
            if segment is not None:
                types[index, :len(row)] = np.asarray(segment).reshape(-1)
        vocab_size = self.text_encoder.config.vocab_size
        if ids.max() >= vocab_size:
            raise ValueError(f'token id {int(ids.max())} is outside the text encoder\'s '
                             f'vocabulary of {vocab_size}: the dataset\'s vocab_file is not the '
                             "model's vocabulary")
        device = self.data_preprocessor.device
        return (torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device),
                torch.from_numpy(types).to(device))

    def span_logits(self, data_samples: list) -> Tuple[Tensor, Tensor, Tensor]:
        """Start and end logits ``(B, L)`` of the windows, and their attention mask."""
        ids, mask, types = self.collate(data_samples)
        hidden = self.encode_text(ids, mask, token_type_ids=types)
        start_logits, end_logits = self.span_head(hidden)
        return start_logits, end_logits, mask

    # ------------------------------------------------------------------ BaseModel
    def forward(self, inputs=None, data_samples: Optional[list] = None, mode: str = 'loss'):
        if mode == 'tensor':
            start_logits, end_logits, _ = self.span_logits(data_samples)
            return start_logits, end_logits
        return super().forward(inputs, data_samples, mode)

    def loss(self, inputs, data_samples: list) -> dict:
        start_logits, end_logits, mask = self.span_logits(data_samples)
        device = start_logits.device
        starts = torch.tensor([int(s.start_position) for s in data_samples], device=device)
        ends = torch.tensor([int(s.end_position) for s in data_samples], device=device)
        return dict(loss=self.span_head.loss(start_logits, end_logits, starts, ends, mask))

    @torch.no_grad()
    def predict(self, inputs=None, data_samples: Optional[list] = None) -> list:
        if data_samples is None:
            raise ValueError(f'{type(self).__name__}.predict needs the windows as data samples')
        start_logits, end_logits, mask = self.span_logits(data_samples)
        valid = torch.zeros_like(mask, dtype=torch.bool)
        offsets: List[np.ndarray] = []
        for index, sample in enumerate(data_samples):
            sample_offsets = np.asarray(sample.offsets).reshape(-1, 2)
            offsets.append(sample_offsets)
            valid[index, :len(sample_offsets)] = torch.from_numpy(sample_offsets[:, 0] >= 0)
        spans = self.span_head.best_spans(start_logits, end_logits, valid, self.n_best,
                                          self.max_answer_tokens)
        null_scores = (start_logits[:, 0] + end_logits[:, 0]).tolist()
        for sample, sample_spans, sample_offsets, null_score in zip(data_samples, spans, offsets,
                                                                    null_scores):
            context = sample.context
            predictions = []
            for start, end, score in sample_spans:
                begin, finish = int(sample_offsets[start, 0]), int(sample_offsets[end, 1])
                predictions.append(dict(text=context[begin:finish], start=begin, end=finish,
                                        score=float(score)))
            sample.pred_spans = predictions
            sample.null_score = float(null_score)
        return data_samples
