"""mPLUG-2 question answering over videos or images (MSRVTT-QA, MSVD-QA, TGIF, VQA v2)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from mplug2.registry import MODELS
from ..heads.lm_loss import lm_labels
from .mplug2 import MPLUG2

__all__ = ['MPLUG2QA']


@MODELS.register_module()
class MPLUG2QA(MPLUG2):
    """Open-ended question answering.

    The question goes through the text path and the fusion module (co-attention into the
    visual tokens); the shared decoder generates the answer over
    ``memory = [visual tokens; fused question]``. Training loss (``lm_loss``, reduced per
    sequence): per answer, the sum of the token cross-entropies, weighted by the answer
    weight, summed and divided by the batch size (the official loss). Prediction: beam
    search (official: 5 beams, 1-10 tokens), or, with ``answer_list``, ranking of a
    closed answer list (top-k by first-token probability, then by full-sequence
    likelihood; ALBEF / mPLUG's ``rank_answer``).

    Data samples carry ``question`` (cleaned by the pipeline's ``CleanQuestion``),
    ``gt_answer`` (str or list) and optionally ``answer_weight`` (one per answer);
    ``predict`` writes ``pred_answer``.

    Args:
        max_question_tokens: question truncation at training (official 50); test: none.
        max_answer_tokens: answer truncation, ``[CLS] answer [SEP]`` included.
        generation: beam-search settings (``num_beams``, ``max_length``, ``min_length``,
            ``length_penalty``).
        answer_list: candidate answers for ranking mode: a list, or a file read with
            :func:`~mplug2.datasets.load_answer_list` (official ``*_ans2label.json``, a JSON
            list, a ``.jsonl`` with ``answer`` or a ``.txt``). None: open-vocabulary
            generation.
        rank_top_k: candidates kept after the first-token pass in ranking mode (128).
        lm_loss: config of the language-model loss head.
    """

    def __init__(self,
                 *args,
                 max_question_tokens: int = 50,
                 max_answer_tokens: int = 10,
                 generation: Optional[dict] = None,
                 answer_list: Union[None, str, Sequence[str]] = None,
                 rank_top_k: int = 128,
                 lm_loss: Optional[dict] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.require('text_encoder', 'fusion', 'text_decoder')
        self.max_question_tokens = max_question_tokens
        self.max_answer_tokens = max_answer_tokens
        self.generation = dict(num_beams=5, max_length=10, min_length=1, length_penalty=0.6)
        self.generation.update(generation or {})
        if isinstance(answer_list, str):
            from mplug2.datasets.annotation_io import load_answer_list
            answer_list = load_answer_list(answer_list)
        self.answer_list = list(answer_list) if answer_list is not None else None
        if self.answer_list is not None and not self.answer_list:
            raise ValueError('answer_list is empty')
        self.rank_top_k = rank_top_k
        self.lm_loss = MODELS.build(lm_loss or dict(type='LanguageModelLoss',
                                                    reduction='sum_per_sequence'))

    def encode_memory(self, inputs: Tensor, questions: Sequence[str], training: bool):
        """Visual path + question through the text path and fusion -> decoder memory and mask."""
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
            inputs, [sample.question for sample in data_samples], training=True)
        # Every (question, answer) pair is one decoder sequence; repeat the memory per answer.
        answers, weights, owners = [], [], []
        for index, sample in enumerate(data_samples):
            sample_answers = sample.get('gt_answer')
            if isinstance(sample_answers, str):
                sample_answers = [sample_answers]
            if not sample_answers:
                raise ValueError(f'sample {index} has no gt_answer')
            sample_weights = sample.get('answer_weight')
            if sample_weights is None:
                sample_weights = [1.0] * len(sample_answers)
            if len(sample_weights) != len(sample_answers):
                raise ValueError(f'sample {index}: {len(sample_answers)} answers but '
                                 f'{len(sample_weights)} answer weights')
            answers += [answer + '[SEP]' for answer in sample_answers]
            weights += list(sample_weights)
            owners += [index] * len(sample_answers)
        owners = torch.tensor(owners, device=memory.device)
        tokens = self.tokenize(answers, self.max_answer_tokens)
        per_answer = self.lm_loss(self.text_decoder, tokens['input_ids'], tokens['attention_mask'],
                                  memory[owners], memory_mask[owners])
        weights = torch.tensor(weights, dtype=per_answer.dtype, device=per_answer.device)
        return dict(loss=(per_answer * weights).sum() / len(data_samples))

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> list:
        if data_samples is None:
            raise ValueError('MPLUG2QA.predict needs data samples with a question')
        memory, memory_mask = self.encode_memory(
            inputs, [sample.question for sample in data_samples], training=False)
        if self.answer_list is not None:
            answers = self.rank_answers(memory, memory_mask)
        else:
            sequences = self.text_decoder.generate(
                memory, memory_mask, bos_token_id=self.tokenizer.cls_token_id,
                eos_token_id=self.tokenizer.sep_token_id, pad_token_id=self.tokenizer.pad_token_id,
                **self.generation)
            answers = self.tokenizer.batch_decode(sequences)
        for sample, answer in zip(data_samples, answers):
            sample.pred_answer = answer
        return data_samples

    def rank_answers(self, memory: Tensor, memory_mask: Tensor) -> List[str]:
        """Closed-set answering: first-token top-k, then rescoring by sequence log-likelihood."""
        candidates = self.tokenize([answer + '[SEP]' for answer in self.answer_list], None)
        ids, mask = candidates['input_ids'], candidates['attention_mask']
        batch_size, num_candidates = memory.shape[0], ids.shape[0]
        top_k = min(self.rank_top_k, num_candidates)
        # First pass: probability of each candidate's first token after [CLS].
        start = ids[:1, :1].expand(batch_size, 1)
        first_logits = self.text_decoder(start, None, memory, memory_mask)[:, -1]
        first_log_probs = first_logits.log_softmax(dim=-1)[:, ids[:, 1]]  # (B, C)
        _, top_index = first_log_probs.topk(top_k, dim=1)
        # Second pass: full log-likelihood of the top-k candidates.
        rows = torch.arange(batch_size, device=memory.device).repeat_interleave(top_k)
        cand_ids, cand_mask = ids[top_index.flatten()], mask[top_index.flatten()]
        log_likelihood = -self.lm_loss(self.text_decoder, cand_ids, cand_mask, memory[rows],
                                       memory_mask[rows], labels=lm_labels(cand_ids, cand_mask),
                                       reduction='sum_per_sequence')
        best = log_likelihood.view(batch_size, top_k).argmax(dim=1)
        chosen = top_index.gather(1, best[:, None]).squeeze(1)
        return [self.answer_list[index] for index in chosen.tolist()]
