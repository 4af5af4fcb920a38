"""mPLUG-2 shared text decoder: causal BERT layers with cross-attention into a
memory, and a BERT LM head tied to the word embeddings.

The same decoder serves captioning (memory = the visual tokens) and question
answering (memory = [visual tokens; fused question]). Each layer is::

    H1 = LN(H + SA_causal(H, causal AND padding mask))
    H2 = LN(H1 + CA(q=H1, kv=memory, memory_mask))
    H  = LN(H2 + FFN(H2))

followed by ``cls.predictions`` (dense -> GELU -> LN -> vocabulary projection
+ bias). The vocabulary projection ``cls.predictions.decoder`` *is* the
``embeddings.word_embeddings`` module (see
:class:`~mplug2.models.text.bert.BertLMPredictionHead`): the tie is made once,
when the head is built, and nothing can break it.

KV cache: a tuple with one entry per layer, ``(self_k, self_v, cross_k,
cross_v)``, each (B, heads, length, head_dim). The self-attention entries grow
by one position per step; the cross-attention entries hold the projected
memory, computed once at the first step. Position ids continue from the cache
length. :meth:`reorder_cache` gathers batch rows.

Beam search shares the memory between the beams of an item instead of tiling
it (the row layout and why shared rows never need re-ordering:
:mod:`mplug2.models.decoders.generation`). Here the memory keeps its ``B``
rows; the cross-attention folds the ``num_beams`` decoder rows of an item into
its query length, so the memory is projected once per item and its cached
keys/values are never gathered.
"""
from typing import Optional, Tuple, Union

import torch
from torch import nn

from mplug2.models.text.bert import (BertConfig, BertEmbeddings, BertLayer, BertLMHead, BertStack,
                                     BertWeightMap, causal_padding_mask, init_bert_weights,
                                     padding_mask, run_layer)
from mplug2.registry import MODELS

Cache = Tuple[Tuple[torch.Tensor, ...], ...]


@MODELS.register_module()
class TextDecoder(BertStack):
    """The shared text decoder of mPLUG-2.

    Args:
        arch: ``'base'``, ``'large'`` or a dict of :class:`BertConfig` fields.
        num_layers: number of decoder layers (12 in mPLUG-2).
        encoder_width: width of the memory (cross-attention K/V input),
            default the hidden size.
        with_cp: activation checkpointing per layer (training, without cache).
        init_cfg: MMEngine init config, applied by ``init_weights()`` over the
            BERT random init of the constructor: ``dict(type='PretrainedBERT',
            checkpoint=DIR, layer_start=0)`` loads the embeddings, BERT layers
            ``[layer_start, layer_start + num_layers)`` (their cross-attention if
            the checkpoint has it, else random) and ``cls.predictions`` if present
            (:meth:`bert_weight_map`); ``dict(type='PretrainedMPLUG2',
            checkpoint=PATH, prefix='text_decoder.')`` a checkpoint of ours.

    Parameters: ``embeddings.*``, ``layers.{i}.{attention,crossattention,
    intermediate,output}.*``, ``cls.predictions.{transform.dense,
    transform.LayerNorm, decoder.weight (= embeddings.word_embeddings.weight),
    bias}`` (official ``text_decoder.bert.embeddings``,
    ``text_decoder.bert.encoder.layer.{i}``, ``text_decoder.cls``).
    """

    def __init__(self,
                 arch: Union[str, dict, BertConfig] = 'large',
                 num_layers: int = 12,
                 encoder_width: Optional[int] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.config = BertConfig.from_arch(arch)
        self.encoder_width = encoder_width or self.config.hidden_size
        self.with_cp = with_cp

        self.embeddings = BertEmbeddings(self.config)
        self.layers = nn.ModuleList([
            BertLayer(self.config, add_cross_attention=True, encoder_width=self.encoder_width)
            for _ in range(num_layers)
        ])
        # The LM head's vocabulary projection is the word-embedding module itself (the tie).
        self.cls = BertLMHead(self.config, self.embeddings.word_embeddings)
        init_bert_weights(self, self.config.initializer_range)

    def bert_weight_map(self, layer_start: int) -> BertWeightMap:
        """Embeddings + BERT layers ``[layer_start, layer_start + num_layers)`` +
        ``cls.predictions`` (transform and bias) when the checkpoint has it. The
        projection is the word embeddings, so ``cls.predictions.decoder.weight``
        is not read again, nor the checkpoint's tied copies
        ``cls.predictions.decoder.{weight,bias}``."""
        sources = [('embeddings.', 'embeddings.')] + self.bert_layer_sources(layer_start)
        sources.append(('cls.predictions.', 'cls.predictions.'))
        return BertWeightMap(
            sources=sources,
            layers=range(layer_start, layer_start + len(self.layers)),
            skip_module_keys=('cls.predictions.decoder.weight', ),
            alias_checkpoint_keys=('cls.predictions.decoder.weight',
                                   'cls.predictions.decoder.bias'))

    # ------------------------------------------------------------------ #
    # forward
    # ------------------------------------------------------------------ #
    def forward(self,
                input_ids: torch.Tensor,
                attention_mask: Optional[torch.Tensor] = None,
                memory: Optional[torch.Tensor] = None,
                memory_mask: Optional[torch.Tensor] = None,
                past_key_values: Optional[Cache] = None,
                use_cache: bool = False,
                last_only: bool = False):
        """
        Args:
            input_ids: (B, L) token ids: the whole sequence, or only the new
                tokens when ``past_key_values`` is given.
            attention_mask: (B, past + L) 0/1 padding mask over the cached and
                the new tokens; None = no padding. Always combined with the
                causal mask.
            memory: (B, Lm, encoder_width) states to cross-attend to. Not needed
                when ``past_key_values`` holds their projections. It may also have
                ``B / g`` rows, shared by ``g`` consecutive rows of ``input_ids``
                (beam search without tiling the memory).
            memory_mask: (rows of memory, Lm) 0/1, default all 1.
            past_key_values: the cache returned by a previous call.
            use_cache: also return the updated cache.
            last_only: compute the logits of the last position only (generation).

        Returns:
            logits (B, L, vocab_size) (L = 1 with ``last_only``), or
            ``(logits, cache)`` when ``use_cache``.
        """
        batch_size, seq_length = input_ids.shape
        past_length = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if memory is None and past_key_values is None:
            raise ValueError('TextDecoder needs a memory (or a cache holding its projections)')

        hidden_states = self.embeddings(input_ids, past_length=past_length)
        self_attention_mask = causal_padding_mask(attention_mask, seq_length, past_length,
                                                  input_ids.device)
        cross_attention_mask = padding_mask(memory_mask)

        presents = []
        for i, layer in enumerate(self.layers):
            past_key_value = past_key_values[i] if past_key_values is not None else None
            layer_memory = memory if past_key_value is None else None
            hidden_states, present = run_layer(
                layer, self.with_cp and not use_cache, hidden_states, self_attention_mask,
                layer_memory, cross_attention_mask, past_key_value, use_cache)
            presents.append(present)

        if last_only:
            hidden_states = hidden_states[:, -1:]
        logits = self.cls(hidden_states)
        if use_cache:
            return logits, tuple(presents)
        return logits

    @staticmethod
    def reorder_cache(cache: Cache, index: torch.Tensor) -> Cache:
        """Gather the batch rows ``index`` (N,) of every cached tensor."""
        return tuple(
            tuple(tensor.index_select(0, index.to(tensor.device)) for tensor in layer_cache)
            for layer_cache in cache)

    # ------------------------------------------------------------------ #
    # generation
    # ------------------------------------------------------------------ #
    def build_step_fn(self, memory: torch.Tensor, memory_mask: Optional[torch.Tensor],
                      use_cache: bool = True):
        """The ``(step_fn, reorder_fn)`` pair of :mod:`mplug2.models.decoders.generation`.

        ``memory`` has either one row per generated row, or one row per item
        shared by the ``N / B`` consecutive rows of its beams (why shared rows
        need no re-ordering: :mod:`mplug2.models.decoders.generation`).

        With the cache, the state is ``dict(cache=..., memory_mask=...)``; the
        self-attention cache (and, for a memory that is not shared, the
        cross-attention cache and the mask) are reordered. Without it, every
        call re-runs the full prefix (the official decoding) and the state is None.
        """

        def step_fn(tokens: torch.Tensor, state):
            if not use_cache:
                logits = self(tokens, None, memory, memory_mask, last_only=True)
                return logits[:, -1].float(), None
            if state is None:
                logits, cache = self(tokens, None, memory, memory_mask, use_cache=True,
                                     last_only=True)
                return logits[:, -1].float(), dict(cache=cache, memory_mask=memory_mask)
            logits, cache = self(tokens, None, None, state['memory_mask'],
                                 past_key_values=state['cache'], use_cache=True, last_only=True)
            return logits[:, -1].float(), dict(cache=cache, memory_mask=state['memory_mask'])

        def reorder_fn(state, index: torch.Tensor):
            if state is None:
                return None
            if memory.shape[0] != index.numel():  # shared memory: only the self-attention cache
                cache = tuple(
                    tuple(t.index_select(0, index.to(t.device)) for t in layer_cache[:2])
                    + tuple(layer_cache[2:]) for layer_cache in state['cache'])
                return dict(cache=cache, memory_mask=state['memory_mask'])
            mask = state['memory_mask']
            if mask is not None:
                mask = mask.index_select(0, index.to(mask.device))
            return dict(cache=self.reorder_cache(state['cache'], index), memory_mask=mask)

        return step_fn, reorder_fn

    @torch.no_grad()
    def generate(self,
                 memory: torch.Tensor,
                 memory_mask: Optional[torch.Tensor] = None,
                 input_ids: Optional[torch.Tensor] = None,
                 num_beams: int = 1,
                 max_length: int = 20,
                 min_length: int = 0,
                 bos_token_id: int = 101,
                 eos_token_id: int = 102,
                 pad_token_id: int = 0,
                 length_penalty: float = 0.6,
                 num_return_sequences: int = 1,
                 use_cache: bool = True,
                 return_scores: bool = False):
        """Greedy (``num_beams=1``) or beam search over ``memory``.

        Args:
            memory: (B, Lm, encoder_width); memory_mask: (B, Lm) or None.
            input_ids: (B, t0) prompt, default ``[CLS]`` (``bos_token_id``) alone.
            max_length: maximum number of generated steps (official semantics).
            min_length, eos_token_id, pad_token_id, length_penalty,
            num_return_sequences: see :mod:`mplug2.models.decoders.generation`.
            use_cache: KV-cached decoding (False re-runs the full prefix per step,
                as the official decoder).
            return_scores: also return the beam scores (None for greedy).

        Returns:
            (B * num_return_sequences, t0 + generated) token ids, including the
            prompt; or ``(sequences, scores)`` when ``return_scores``.
        """
        from mplug2.models.decoders.generation import beam_search, greedy_search

        batch_size = memory.shape[0]
        if input_ids is None:
            input_ids = torch.full((batch_size, 1), bos_token_id, dtype=torch.long,
                                   device=memory.device)
        if num_beams > 1:
            # beam_search calls step_fn with rows b * num_beams + k; those rows share memory
            # row b (no tiling: see the module docstring).
            step_fn, reorder_fn = self.build_step_fn(memory, memory_mask, use_cache)
            sequences, scores = beam_search(
                step_fn, reorder_fn, input_ids, num_beams=num_beams, max_length=max_length,
                min_length=min_length, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                length_penalty=length_penalty, num_return_sequences=num_return_sequences,
                use_cache=use_cache)
        else:
            if num_return_sequences != 1:
                raise ValueError('greedy search returns one sequence per input')
            step_fn, reorder_fn = self.build_step_fn(memory, memory_mask, use_cache)
            sequences = greedy_search(
                step_fn, reorder_fn, input_ids, max_length=max_length, min_length=min_length,
                eos_token_id=eos_token_id, pad_token_id=pad_token_id, use_cache=use_cache)
            scores = None
        if return_scores:
            return sequences, scores
        return sequences
