"""mPLUG-2 composed per task (paper Fig. 2): which modules run is visible in ``loss``/``predict``.

- :class:`MPLUG2` holds the modules and the two shared paths:
  visual: dual-vision encoder -> (projection if widths differ) -> universal layers;
  text:   BERT text encoder -> universal layers (text mode, same weights).
- :class:`MPLUG2QA` (video QA / VQA): question -> text path -> fusion with the visual tokens;
  the shared text decoder generates the answer over memory = [visual; fused question].
- :class:`MPLUG2Captioner` (video / image captioning): the decoder attends to the visual
  tokens directly; the text encoder and fusion module are not used.

Inputs are ``(B, 3, H, W)`` images or ``(B, 3, T, H, W)`` videos, normalised by the data
preprocessor; annotations travel on ``data_samples`` (``question``, ``gt_answer``,
``answer_weight``, ``gt_caption``) and predictions are written to ``pred_answer`` /
``pred_caption``, the names mmpretrain's and our metrics read.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from mplug2.models.multimodal.cider import CiderD
from mplug2.models.text.text_processing import pre_caption, pre_question
from mplug2.registry import MODELS, TOKENIZERS

__all__ = ['MPLUG2', 'MPLUG2QA', 'MPLUG2Captioner']


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _field(sample, name: str, default=None):
    """A field of a data sample (BaseDataElement or dict)."""
    if isinstance(sample, dict):
        return sample.get(name, default)
    return sample.get(name, default) if hasattr(sample, 'get') else getattr(sample, name, default)


class MPLUG2(BaseModel):
    """The modules of mPLUG-2 and the visual/text paths every task shares.

    Args:
        vision_encoder: config of the dual-vision encoder (``DualVisionEncoder``).
        universal_layers: config of the universal layers; None skips them (the visual
            tokens then go to fusion/decoder straight from the encoder).
        text_encoder: config of the BERT text encoder (tasks with text input).
        fusion: config of the fusion module (tasks that fuse text and vision).
        text_decoder: config of the shared text decoder (generative tasks).
        tokenizer: config of the tokenizer (``MPLUG2Tokenizer``).
        data_preprocessor: config of the data preprocessor; default ``MPLUG2DataPreprocessor``
            (CLIP normalisation of images and videos), which the encoder's weights expect.
    """

    def __init__(self,
                 vision_encoder: dict,
                 tokenizer: dict,
                 universal_layers: Optional[dict] = None,
                 text_encoder: Optional[dict] = None,
                 fusion: Optional[dict] = None,
                 text_decoder: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='mplug2.MPLUG2DataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.vision_encoder = MODELS.build(vision_encoder)
        self.universal_layers = MODELS.build(universal_layers) if universal_layers else None
        self.text_encoder = MODELS.build(text_encoder) if text_encoder else None
        self.fusion = MODELS.build(fusion) if fusion else None
        self.text_decoder = MODELS.build(text_decoder) if text_decoder else None
        self.tokenizer = TOKENIZERS.build(tokenizer)

        # The official ``visn_fc``: only when the vision width differs from the text width.
        vision_width = self.vision_encoder.width
        text_width = self._text_width()
        if text_width is not None and text_width != vision_width:
            self.visual_projection = nn.Sequential(
                nn.Linear(vision_width, text_width), nn.LayerNorm(text_width, eps=1e-12), nn.Dropout(0.1))
        else:
            self.visual_projection = None

    def _text_width(self) -> Optional[int]:
        for module in (self.universal_layers, self.text_encoder, self.fusion, self.text_decoder):
            if module is not None:
                return module.config.hidden_size
        return None

    # ------------------------------------------------------------------ shared paths
    def extract_visual_features(self, inputs: Tensor) -> Tensor:
        """Dual-vision encoder -> universal layers: (B, Lv, D) visual tokens for images and videos."""
        visual = self.vision_encoder(inputs)
        if self.visual_projection is not None:
            visual = self.visual_projection(visual)
        if self.universal_layers is not None:
            visual = self.universal_layers.forward_vision(visual)
        return visual

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Text encoder -> universal layers (text mode): (B, L, D)."""
        hidden = self.text_encoder(input_ids, attention_mask)
        if self.universal_layers is not None:
            hidden = self.universal_layers.forward_text(hidden, attention_mask)
        return hidden

    def tokenize(self, texts: Sequence[str], max_length: Optional[int]) -> dict:
        encoded = self.tokenizer(list(texts), max_length=max_length)
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


@MODELS.register_module()
class MPLUG2QA(MPLUG2):
    """Open-ended question answering over videos or images (MSRVTT-QA, MSVD-QA, TGIF, VQAv2).

    The question goes through the text encoder, the universal layers and the fusion module
    (co-attention into the visual tokens); the shared decoder generates the answer over
    ``memory = [visual tokens; fused question]``. Training loss: per answer, the sum of the
    token cross-entropies, weighted by the answer weight, summed and divided by the batch
    size (the official loss). Prediction: beam search (official: 5 beams, 1-10 tokens), or,
    with ``answer_list``, ranking of a closed answer list (top-k by first-token probability,
    then by full-sequence likelihood).

    Args:
        max_question_tokens: question truncation at training (official 50); test: none.
        max_question_words: words kept by ``pre_question`` (official 30 train, 50 test).
        max_answer_tokens: answer truncation, ``[CLS] answer [SEP]`` included.
        generation: beam-search settings (``num_beams``, ``max_length``, ``min_length``,
            ``length_penalty``).
        answer_list: candidate answers for ranking mode (None: open-vocabulary generation).
        rank_top_k: candidates kept after the first-token pass in ranking mode.
    """

    def __init__(self,
                 *args,
                 max_question_tokens: int = 50,
                 max_question_words: Union[int, Sequence[int]] = (30, 50),
                 max_answer_tokens: int = 10,
                 generation: Optional[dict] = None,
                 answer_list: Optional[Sequence[str]] = None,
                 rank_top_k: int = 128,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if self.text_encoder is None or self.fusion is None or self.text_decoder is None:
            raise ValueError('MPLUG2QA needs text_encoder, fusion and text_decoder')
        self.max_question_tokens = max_question_tokens
        words = max_question_words
        self.max_question_words = (words, words) if isinstance(words, int) else tuple(words)
        self.max_answer_tokens = max_answer_tokens
        self.generation = dict(num_beams=5, max_length=10, min_length=1, length_penalty=0.6)
        self.generation.update(generation or {})
        self.answer_list = list(answer_list) if answer_list is not None else None
        self.rank_top_k = rank_top_k

    def encode_memory(self, inputs: Tensor, questions: Sequence[str], training: bool):
        """Visual path + question through text encoder and fusion -> decoder memory and mask."""
        max_words = self.max_question_words[0 if training else 1]
        questions = [pre_question(question, max_words) for question in questions]
        tokens = self.tokenize(questions, self.max_question_tokens if training else None)
        visual = self.extract_visual_features(inputs)
        question_states = self.encode_text(tokens['input_ids'], tokens['attention_mask'])
        visual, fused_question = self.fusion(visual, question_states, tokens['attention_mask'])
        visual_mask = visual.new_ones(visual.shape[:2], dtype=torch.long)
        memory = torch.cat([visual, fused_question], dim=1)
        memory_mask = torch.cat([visual_mask, tokens['attention_mask']], dim=1)
        return memory, memory_mask

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        memory, memory_mask = self.encode_memory(
            inputs, [_field(sample, 'question') for sample in data_samples], training=True)
        # Every (question, answer) pair is one decoder sequence; repeat the memory per answer.
        answers, weights, owners = [], [], []
        for index, sample in enumerate(data_samples):
            sample_answers = _as_list(_field(sample, 'gt_answer'))
            if not sample_answers:
                raise ValueError(f'sample {index} has no gt_answer')
            sample_weights = _as_list(_field(sample, 'answer_weight')) or [1.0] * len(sample_answers)
            answers += [answer + '[SEP]' for answer in sample_answers]
            weights += sample_weights
            owners += [index] * len(sample_answers)
        owners = torch.tensor(owners, device=memory.device)
        tokens = self.tokenize(answers, self.max_answer_tokens)
        per_answer = self.text_decoder.loss(
            tokens['input_ids'], tokens['attention_mask'], memory[owners], memory_mask[owners],
            reduction='sum_per_sequence')
        weights = torch.tensor(weights, dtype=per_answer.dtype, device=per_answer.device)
        return dict(loss=(per_answer * weights).sum() / len(data_samples))

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        if data_samples is None:
            raise ValueError('MPLUG2QA.predict needs data samples with a question')
        memory, memory_mask = self.encode_memory(
            inputs, [_field(sample, 'question') for sample in data_samples], training=False)
        if self.answer_list is not None:
            answers = self.rank_answers(memory, memory_mask)
        else:
            sequences = self.text_decoder.generate(
                memory, memory_mask, bos_token_id=self.tokenizer.cls_token_id,
                eos_token_id=self.tokenizer.sep_token_id, pad_token_id=self.tokenizer.pad_token_id,
                **self.generation)
            answers = self.tokenizer.batch_decode(sequences)
        for sample, answer in zip(data_samples, answers):
            sample.set_field(answer, 'pred_answer', field_type='metainfo')
        return data_samples

    def rank_answers(self, memory: Tensor, memory_mask: Tensor) -> list[str]:
        """Closed-set answering: first-token top-k, then rescoring by sequence log-likelihood."""
        candidates = self.tokenize([answer + '[SEP]' for answer in self.answer_list], None)
        ids, mask = candidates['input_ids'], candidates['attention_mask']
        batch_size, num_candidates = memory.shape[0], ids.shape[0]
        top_k = min(self.rank_top_k, num_candidates)
        # First pass: probability of each candidate's first token after [CLS].
        start = ids[:1, :1].expand(batch_size, 1)
        first_logits = self.text_decoder(start, None, memory, memory_mask)[:, -1]
        first_log_probs = first_logits.log_softmax(dim=-1)[:, ids[:, 1]]  # (B, C)
        top_log_probs, top_index = first_log_probs.topk(top_k, dim=1)
        # Second pass: full log-likelihood of the top-k candidates.
        rows = torch.arange(batch_size, device=memory.device).repeat_interleave(top_k)
        cand_ids, cand_mask = ids[top_index.flatten()], mask[top_index.flatten()]
        log_likelihood = -self.text_decoder.loss(
            cand_ids, cand_mask, memory[rows], memory_mask[rows], reduction='sum_per_sequence')
        best = log_likelihood.view(batch_size, top_k).argmax(dim=1)
        chosen = top_index.gather(1, best[:, None]).squeeze(1)
        return [self.answer_list[index] for index in chosen.tolist()]


@MODELS.register_module()
class MPLUG2Captioner(MPLUG2):
    """Captioning of videos or images (MSRVTT, MSVD, COCO): the decoder attends to the visual tokens.

    The caption is trained as ``[CLS] prompt caption [SEP]`` with the prompt tokens
    excluded from the loss (token-mean cross-entropy over the batch, the official loss).
    The official code joins prompt and caption without a space ("a video ofa man") and
    leaves the prompt's last word in the loss; we do neither when training.

    At inference the prompt is fed as the decoder prefix (``force_prompt=True``); the
    official decoding starts from ``[CLS]`` alone and cuts the generated prompt off the
    text (``force_prompt=False``, for evaluating converted official checkpoints).

    Second training stage, self-critical CIDEr optimisation (``scst=dict(...)``), which the
    official release never made work: for every video the current model beam-searches
    ``num_samples`` captions (no gradient), each is rewarded with CIDEr-D against the
    references, the baseline is the mean reward of that video's captions, and the loss
    is ``-(sum of log-probs / length) * (reward - baseline)`` averaged over captions.

    Args:
        prompt: the caption prompt (official: "a video of"; "" for COCO).
        max_caption_tokens: truncation of ``[CLS] prompt caption [SEP]`` (official 20).
        max_caption_words: words kept by ``pre_caption``.
        generation: beam-search settings (official: 5 beams, 4-20 tokens).
        force_prompt: see above.
        scst: None (cross-entropy training) or the SCST settings: ``num_samples`` (beams
            kept per video, default 5), ``corpus`` (for CIDEr-D's document frequency: the
            training caption annotation file, or a JSON list with one list of reference
            captions per training video; read at the first SCST step; default: the
            references of the batch), ``generation`` (overrides of the beam settings).
    """

    def __init__(self,
                 *args,
                 prompt: str = 'a video of',
                 max_caption_tokens: int = 20,
                 max_caption_words: int = 80,
                 generation: Optional[dict] = None,
                 force_prompt: bool = True,
                 scst: Optional[dict] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        if self.text_decoder is None:
            raise ValueError('MPLUG2Captioner needs text_decoder')
        self.scst = None
        if scst is not None:
            self.scst = dict(num_samples=5, corpus=None, generation={})
            unknown = set(scst) - set(self.scst)
            if unknown:
                raise ValueError(f'unknown scst settings: {sorted(unknown)}')
            self.scst.update(scst)
            self._cider = None  # built at the first SCST step (the corpus is read then)
        self.prompt = prompt.strip()
        self.max_caption_tokens = max_caption_tokens
        self.max_caption_words = max_caption_words
        self.generation = dict(num_beams=5, max_length=20, min_length=4, length_penalty=0.6)
        self.generation.update(generation or {})
        self.force_prompt = force_prompt
        # [CLS] + the prompt's word pieces.
        self.prompt_length = len(self.tokenizer([self.prompt])['input_ids'][0]) if self.prompt else 1

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        if self.scst is not None:
            return self.scst_loss(inputs, data_samples)
        captions = []
        for sample in data_samples:
            caption = _field(sample, 'gt_caption')
            if isinstance(caption, (list, tuple)):
                caption = caption[0]
            caption = pre_caption(caption, self.max_caption_words)
            captions.append(f'{self.prompt} {caption}'.strip() + '[SEP]')
        tokens = self.tokenize(captions, self.max_caption_tokens)
        labels = tokens['input_ids'].masked_fill(tokens['attention_mask'] == 0, -100)
        labels[:, :self.prompt_length] = -100
        visual = self.extract_visual_features(inputs)
        loss = self.text_decoder.loss(tokens['input_ids'], tokens['attention_mask'], visual, None,
                                      labels=labels, reduction='mean')
        return dict(loss=loss)

    def generate_captions(self, visual: Tensor, **generation) -> tuple[Tensor, list[str]]:
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

    @property
    def cider(self) -> CiderD:
        """The CIDEr-D scorer of SCST, with the corpus statistics of ``scst['corpus']``."""
        if self._cider is None:
            corpus = self.scst['corpus']
            self._cider = CiderD(_read_reference_sets(corpus, self.max_caption_words)
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
            refs = _as_list(_field(sample, 'gt_caption'))
            references += [[pre_caption(ref, self.max_caption_words) for ref in refs]] * num_samples
        rewards = torch.tensor(self.cider.score(captions, references), device=visual.device)
        rewards = rewards.view(len(data_samples), num_samples)
        advantage = (rewards - rewards.mean(dim=1, keepdim=True)).flatten()
        # 3. Log-probabilities of the captions, with gradient; prompt and padding excluded.
        attention_mask = (sequences != self.tokenizer.pad_token_id).long()
        labels = sequences.masked_fill(attention_mask == 0, -100)
        labels[:, :self.prompt_length if (self.force_prompt and self.prompt) else 1] = -100
        negative_log_prob = self.text_decoder.loss(
            sequences, attention_mask, visual.repeat_interleave(num_samples, dim=0), None,
            labels=labels, reduction='sum_per_sequence')
        lengths = (labels[:, 1:] != -100).sum(dim=1).clamp(min=1)
        loss = (negative_log_prob / lengths * advantage).mean()
        return dict(loss_scst=loss, reward=rewards.mean().detach())

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        from mmengine.structures import BaseDataElement
        visual = self.extract_visual_features(inputs)
        _, captions = self.generate_captions(visual)
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(visual.shape[0])]
        for sample, caption in zip(data_samples, captions):
            sample.set_field(caption, 'pred_caption', field_type='metainfo')
        return data_samples


def _read_reference_sets(path: str, max_words: int = 1000) -> list[list[str]]:
    """The reference captions of every training video (CIDEr-D's corpus), from ``path``:

    * a caption annotation file in any format :class:`~mplug2.datasets.VideoCaptionDataset`
      reads (e.g. the training ``caption_train.jsonl``; captions grouped by video), or
    * a JSON list with one list of reference captions per video.
    """
    import json

    from mplug2.datasets import VideoCaptionDataset
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        if isinstance(data, list) and all(isinstance(refs, list) for refs in data):
            return [[pre_caption(ref, max_words) for ref in refs] for refs in data]
    dataset = VideoCaptionDataset(ann_file=path, test_mode=True, serialize_data=False,
                                  max_words=max_words)
    return [[pre_caption(ref, max_words) for ref in dataset.get_data_info(i)['gt_caption']]
            for i in range(len(dataset))]
