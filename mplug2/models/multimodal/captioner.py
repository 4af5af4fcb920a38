"""mPLUG-2 captioning of videos or images (MSRVTT, MSVD, COCO), with its SCST stage."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from mplug2.registry import MODELS
from mplug2.structures import DataSample
from ..heads.lm_loss import lm_labels
from .cider import CiderD
from .mplug2 import MPLUG2

__all__ = ['MPLUG2Captioner']


@MODELS.register_module()
class MPLUG2Captioner(MPLUG2):
    """Captioning: the decoder attends to the visual tokens; no text encoder or fusion runs.

    The caption is trained as ``[CLS] prompt caption [SEP]`` with the prompt tokens
    excluded from the loss (``lm_loss``: token-mean cross-entropy over the batch, the
    official loss). The official code joins prompt and caption without a space
    ("a video ofa man") and leaves the prompt's last word in the loss; we do neither when
    training. Data samples carry ``gt_caption`` (cleaned by the pipeline's
    ``CleanCaption``; a list: the first is the target); ``predict`` writes ``pred_caption``.

    At inference the prompt is fed as the decoder prefix (``force_prompt=True``); the
    official decoding starts from ``[CLS]`` alone and cuts the generated prompt off the
    text (``force_prompt=False``, for evaluating converted official checkpoints).

    Second training stage, self-critical CIDEr optimisation (``scst=dict(...)``), which the
    official release never made work: for every video the current model beam-searches
    ``num_samples`` captions (no gradient), each is rewarded with CIDEr-D against the
    references (``gt_caption``, a list per sample), the baseline is the mean reward of that
    video's captions, and the loss is ``-(sum of log-probs / length) * (reward - baseline)``
    averaged over captions.

    Args:
        prompt: the caption prompt (official: "a video of"; "" for COCO).
        max_caption_tokens: truncation of ``[CLS] prompt caption [SEP]`` (official 20).
        generation: beam-search settings (official: 5 beams, 4-20 tokens).
        force_prompt: see above.
        scst: None (cross-entropy training) or the SCST settings: ``num_samples`` (beams
            kept per video, default 5), ``corpus`` (for CIDEr-D's document frequency: the
            training caption annotation file, or a JSON list with one list of reference
            captions per training video; read at the first SCST step with
            :func:`~mplug2.datasets.load_reference_sets`; default: the references of the
            batch), ``corpus_max_words`` (the word limit the corpus is cleaned with: that
            of the training pipeline's ``CleanCaption``, default 80), ``generation``
            (overrides of the beam settings).
        lm_loss: config of the language-model loss head.
    """

    def __init__(self,
                 *args,
                 prompt: str = 'a video of',
                 max_caption_tokens: int = 20,
                 generation: Optional[dict] = None,
                 force_prompt: bool = True,
                 scst: Optional[dict] = None,
                 lm_loss: Optional[dict] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.require('text_decoder')
        self.scst = None
        if scst is not None:
            self.scst = dict(num_samples=5, corpus=None, corpus_max_words=80, generation={})
            unknown = set(scst) - set(self.scst)
            if unknown:
                raise ValueError(f'unknown scst settings: {sorted(unknown)}')
            self.scst.update(scst)
            self._cider = None  # built at the first SCST step (the corpus is read then)
        self.prompt = prompt.strip()
        self.max_caption_tokens = max_caption_tokens
        self.generation = dict(num_beams=5, max_length=20, min_length=4, length_penalty=0.6)
        self.generation.update(generation or {})
        self.force_prompt = force_prompt
        # [CLS] + the prompt's word pieces.
        self.prompt_length = len(self.tokenizer([self.prompt])['input_ids'][0]) if self.prompt else 1
        self.lm_loss = MODELS.build(lm_loss or dict(type='LanguageModelLoss', reduction='mean'))

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        if self.scst is not None:
            return self.scst_loss(inputs, data_samples)
        captions = []
        for sample in data_samples:
            caption = sample.gt_caption
            if isinstance(caption, (list, tuple)):
                caption = caption[0]
            captions.append(f'{self.prompt} {caption}'.strip() + '[SEP]')
        tokens = self.tokenize(captions, self.max_caption_tokens)
        labels = lm_labels(tokens['input_ids'], tokens['attention_mask'], self.prompt_length)
        visual = self.extract_visual_features(inputs)
        loss = self.lm_loss(self.text_decoder, tokens['input_ids'], tokens['attention_mask'],
                            visual, None, labels=labels)
        return dict(loss=loss)

    def generate_captions(self, visual: Tensor, **generation) -> Tuple[Tensor, List[str]]:
        """Beam search over the visual tokens -> (token ids incl. prefix, captions without prompt)."""
        prefix = None
        if self.force_prompt and self.prompt:
            prompt_ids = self.tokenize([self.prompt], None)['input_ids']
            prefix = prompt_ids.expand(visual.shape[0], -1)
        settings = dict(self.generation, **generation)
        sequences = self.text_decoder.generate(
            visual, None, input_ids=prefix, bos_token_id=self.tokenizer.cls_token_id,
            eos_token_id=self.tokenizer.sep_token_id, pad_token_id=self.tokenizer.pad_token_id,
            **settings)
        captions = []
        for text in self.tokenizer.batch_decode(sequences):
            if self.prompt and self.prompt in text:
                text = text.split(self.prompt)[-1]
            captions.append(text.strip())
        return sequences, captions

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        visual = self.extract_visual_features(inputs)
        _, captions = self.generate_captions(visual)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(visual.shape[0])]
        for sample, caption in zip(data_samples, captions):
            sample.pred_caption = caption
        return data_samples

    # ------------------------------------------------------------------ SCST stage
    @property
    def cider(self) -> CiderD:
        """The CIDEr-D scorer of SCST, with the corpus statistics of ``scst['corpus']``."""
        if self._cider is None:
            from mplug2.datasets.video_caption import load_reference_sets
            corpus = self.scst['corpus']
            self._cider = CiderD(load_reference_sets(corpus, self.scst['corpus_max_words'])
                                 if corpus else None)
        return self._cider

    def scst_loss(self, inputs: Tensor, data_samples: list) -> dict:
        """Self-critical sequence training with a CIDEr-D reward (see the class docstring)."""
        num_samples = self.scst['num_samples']
        visual = self.extract_visual_features(inputs)
        # 1. Captions of the current policy (beam search, no gradient, no dropout).
        was_training = self.training
        self.eval()
        with torch.no_grad():
            sequences, captions = self.generate_captions(
                visual.detach(), **dict(dict(num_beams=num_samples, num_return_sequences=num_samples),
                                        **self.scst['generation']))
        self.train(was_training)
        # 2. Rewards and the baseline: the mean reward of the captions of the same video.
        references = []
        for sample in data_samples:
            refs = sample.gt_caption
            references += [[refs] if isinstance(refs, str) else list(refs)] * num_samples
        rewards = torch.tensor(self.cider.score(captions, references), device=visual.device)
        rewards = rewards.view(len(data_samples), num_samples)
        advantage = (rewards - rewards.mean(dim=1, keepdim=True)).flatten()
        # 3. Log-probabilities of the captions, with gradient; prompt and padding excluded.
        attention_mask = (sequences != self.tokenizer.pad_token_id).long()
        labels = lm_labels(sequences, attention_mask,
                           self.prompt_length if (self.force_prompt and self.prompt) else 1)
        negative_log_prob = self.lm_loss(
            self.text_decoder, sequences, attention_mask,
            visual.repeat_interleave(num_samples, dim=0), None, labels=labels,
            reduction='sum_per_sequence')
        lengths = (labels[:, 1:] != -100).sum(dim=1).clamp(min=1)
        loss = (negative_log_prob / lengths * advantage).mean()
        return dict(loss_scst=loss, reward=rewards.mean().detach())
