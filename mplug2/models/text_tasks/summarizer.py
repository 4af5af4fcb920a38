"""mPLUG-2 abstractive summarization (Gigaword headline generation; paper, Table 2)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from mplug2.registry import MODELS
from mplug2.structures import DataSample
from ..multimodal.mplug2 import MPLUG2

__all__ = ['MPLUG2Summarizer']


@MODELS.register_module()
class MPLUG2Summarizer(MPLUG2):
    """Summarization: source -> text path (text encoder -> universal layers, text mode) -> the
    decoder's memory; the shared text decoder writes the summary. No vision module runs.

    The source is tokenized as ``[CLS] source`` (the official single-sequence convention),
    cut to ``max_source_tokens``; its states and its padding mask are the decoder's memory
    and memory mask. Training: ``lm_loss`` (the shared :class:`LanguageModelLoss`, token-mean
    cross-entropy over the batch) on ``[CLS] summary [SEP]``, cut to ``max_summary_tokens``.
    Prediction: beam search with the decoder's ``generate`` (``generation``: 5 beams,
    at most 32 steps, at least 1 token, GNMT length penalty 0.6); the summary is written to
    the data field ``pred_summary`` (what :class:`~mplug2.evaluation.RougeMetric` reads),
    decoded as the official code decodes (``[CLS]`` / ``[SEP]`` / ``[PAD]`` removed; an
    unknown word stays ``[UNK]``, which the metric scores as Gigaword's ``UNK``).

    Data samples carry ``source`` and ``gt_summary`` (a string; with a list, as a test set
    with several references gives, the first is the training target).

    Args:
        max_source_tokens: source truncation, ``[CLS]`` included (Gigaword sources, first
            sentences of news articles, are about 31 words; 128 word pieces keep nearly all).
        max_summary_tokens: truncation of ``[CLS] summary [SEP]`` for training.
        generation: beam-search settings passed to ``TextDecoder.generate`` (``num_beams``,
            ``max_length``, ``min_length``, ``length_penalty``, ``use_cache`` ...).
        lm_loss: config of the language-model loss head.
    """

    def __init__(self,
                 *args,
                 max_source_tokens: int = 128,
                 max_summary_tokens: int = 32,
                 generation: Optional[dict] = None,
                 lm_loss: Optional[dict] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.require('text_encoder', 'text_decoder')
        unused = [name for name in ('vision_encoder', 'fusion') if getattr(self, name) is not None]
        if unused:
            raise ValueError(f'MPLUG2Summarizer runs the text path and the decoder only; it was '
                             f'configured with {", ".join(unused)}, which would never run: set '
                             f'{", ".join(f"{name}=None" for name in unused)}')
        self.max_source_tokens = max_source_tokens
        self.max_summary_tokens = max_summary_tokens
        self.generation = dict(num_beams=5, max_length=32, min_length=1, length_penalty=0.6)
        self.generation.update(generation or {})
        self.lm_loss = MODELS.build(lm_loss or dict(type='LanguageModelLoss', reduction='mean'))

    # ------------------------------------------------------------------ paths
    def encode_source(self, sources: Sequence[str]) -> Tuple[Tensor, Tensor]:
        """``[CLS] source`` -> text path: the decoder's memory (B, L, D) and its mask (B, L)."""
        tokens = self.tokenize(sources, self.max_source_tokens)
        memory = self.encode_text(tokens['input_ids'], tokens['attention_mask'])
        return memory, tokens['attention_mask']

    @staticmethod
    def _field(data_samples: Optional[list], name: str) -> List:
        if not data_samples:
            raise ValueError(f'MPLUG2Summarizer needs data samples with {name!r}')
        values = []
        for index, sample in enumerate(data_samples):
            value = sample.get(name)
            if value is None:
                raise KeyError(f'data sample {index} has no {name!r} '
                               f'(keys: {sorted(sample.keys())})')
            values.append(value)
        return values

    # ------------------------------------------------------------------ BaseModel
    def forward(self, inputs, data_samples: Optional[list] = None, mode: str = 'loss'):
        if mode == 'tensor':  # the decoder's memory of the sources
            return self.encode_source(self._field(data_samples, 'source'))[0]
        return super().forward(inputs, data_samples, mode)

    def loss(self, inputs, data_samples: list) -> dict:
        memory, memory_mask = self.encode_source(self._field(data_samples, 'source'))
        summaries = [summary if isinstance(summary, str) else summary[0]
                     for summary in self._field(data_samples, 'gt_summary')]
        tokens = self.tokenize([summary + '[SEP]' for summary in summaries],
                               self.max_summary_tokens)
        loss = self.lm_loss(self.text_decoder, tokens['input_ids'], tokens['attention_mask'],
                            memory, memory_mask)
        return dict(loss=loss)

    @torch.no_grad()
    def generate_summaries(self, sources: Sequence[str], **generation) -> List[str]:
        """Beam search (``self.generation`` updated with ``generation``) -> decoded summaries."""
        memory, memory_mask = self.encode_source(sources)
        sequences = self.text_decoder.generate(
            memory, memory_mask, bos_token_id=self.tokenizer.cls_token_id,
            eos_token_id=self.tokenizer.sep_token_id, pad_token_id=self.tokenizer.pad_token_id,
            **dict(self.generation, **generation))
        return self.tokenizer.batch_decode(sequences)

    @torch.no_grad()
    def predict(self, inputs, data_samples: Optional[list] = None) -> list:
        summaries = self.generate_summaries(self._field(data_samples, 'source'))
        for sample, summary in zip(data_samples, summaries):
            sample.pred_summary = summary
        return data_samples

    @torch.no_grad()
    def summarize(self, sources: Sequence[str]) -> List[DataSample]:
        """Summaries of raw texts (no dataset): samples with ``source`` and ``pred_summary``."""
        samples = [DataSample(source=source) for source in sources]
        return self.predict(None, samples)
