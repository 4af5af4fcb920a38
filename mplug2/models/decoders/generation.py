"""Autoregressive decoding for the mPLUG-2 text decoder: greedy and beam search.

Both searches drive the model through two callables, so that they know nothing
about the decoder, its memory or its cache layout:

``step_fn(tokens, state) -> (logits, new_state)``
    ``logits`` is a float tensor ``(N, V)``: the next-token logits of the
    **last** position of every row.

    * ``use_cache=True``: the first call receives the whole prompt ``(N, t0)``
      and ``state=None``; every later call receives only the tokens chosen at
      the previous step ``(N, 1)`` and the state returned by the previous call
      (after :func:`beam_search` re-ordered it with ``reorder_fn``).
    * ``use_cache=False``: every call receives the full prefix ``(N, t)`` and
      ``state=None``; the returned state is ignored.  This is how the official
      code decodes (it re-runs the decoder on the whole prefix each step).

``reorder_fn(state, index) -> state``
    Gathers the batch rows of ``state`` by ``index`` (a ``LongTensor (N,)``),
    e.g. ``past_key_values[l][i].index_select(0, index)``.  Only called by
    :func:`beam_search` with ``use_cache=True``; greedy search never permutes
    rows, so its ``reorder_fn`` may be ``None``.

The number of rows ``N`` never changes during a search.  Beam search works on
``N = B * num_beams`` rows laid out batch-major (row ``b * num_beams + k`` is
beam ``k`` of item ``b``, i.e. ``input_ids.repeat_interleave(num_beams, 0)``).

How the beams share the memory (encoder states and masks, captured inside
``step_fn``) is the caller's choice; the searches never see it.  ``index`` only
ever permutes rows *within* an item (row ``b * num_beams + k`` is always
replaced by a row of the same item ``b``; frozen items keep theirs), so
anything that is the same for all beams of an item stays valid without
re-ordering.  A caller may therefore either tile the memory once
(``repeat_interleave(num_beams, 0)``, one row per decoder row) or keep one
memory row per item shared by its ``num_beams`` rows, as
:meth:`mplug2.models.decoders.TextDecoder.generate` does (no tiling; its
cross-attention cache then needs no re-ordering either).  Everything
row-dependent that changes during the search (the self-attention KV cache)
must live in ``state`` and be gathered by ``reorder_fn``.

Official semantics (mPLUG-2 ``TextGenerator._fast_translate_batch``, itself a
re-implementation of OpenNMT's fast beam search) reproduced by
:func:`beam_search`:

* log-probs are ``log(softmax(logits))`` (computed in the logits' precision,
  upcast to float32 for half/bfloat16 logits); while ``step < min_length``
  (``step`` counts generation steps from 0) the eos log-prob is set to -1e20.
* At the first step only beam 0 of each item is alive (the others start at
  ``-inf``), so the first expansion yields ``num_beams`` distinct tokens.
* Candidates ``(cum + log_prob) / lp`` with the GNMT penalty
  ``lp = ((5 + step + 1) / 6) ** length_penalty``; top-k over
  ``beam x vocab`` is taken on these normalised scores; the new cumulative
  log-prob is ``top_score * lp``.
* Every beam that emits eos is saved as a finished hypothesis (sequence up to
  and including that eos, normalised score of that step) but **stays alive**
  and keeps extending.
* An item ends when its top beam (index 0 after top-k) emits eos, or at the
  last step (``step + 1 == max_length``).  Then **all** its current beams are
  saved as hypotheses (eos or not; the official code fills its whole
  ``is_finished`` row), with their normalised scores of that step.
* The result of an item is its hypotheses sorted by score, descending; the
  first ``num_return_sequences`` are returned.  Ties keep insertion order
  (earlier step first, then lower beam index), exactly like Python's stable
  ``sorted`` in the official code.  A hypothesis saved at the end of the search
  may contain an inner eos (a beam that emitted eos earlier and kept going);
  it is returned verbatim, as the official code does (its text decoding just
  deletes the ``[SEP]`` strings).
* No repetition penalty, no n-gram blocking.

Instead of removing finished items from the batch (official), finished items
are **frozen**: they stay in the batch, their rows are kept in place (identity
re-ordering), fed ``pad_token_id`` and their scores and hypotheses are no
longer updated.  The search of one item never looks at another item, so the
results are identical to the official algorithm, while ``N`` stays constant and
the caller's memory captured in ``step_fn`` never has to shrink.  The price is
some wasted compute on finished items (decoding stops as soon as all items are
finished).

Instead of keeping every hypothesis, each item keeps a running top-R list
(``R = num_return_sequences``), merged each step with a stable sort in which
the old entries precede the new ones; this yields exactly the first R entries
of the official sorted list.
"""
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['greedy_search', 'beam_search', 'gnmt_length_penalty']

StepFn = Callable[[Tensor, Any], Tuple[Tensor, Any]]
ReorderFn = Callable[[Any, Tensor], Any]

#: Log-prob given to eos while ``step < min_length`` (official value).
EOS_BAN_LOGPROB = -1e20


def gnmt_length_penalty(step: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + step + 1) / 6) ** alpha`` of 0-based ``step``."""
    return ((5.0 + (step + 1)) / 6.0)**alpha


def _log_probs(logits: Tensor, step: int, min_length: int,
               eos_token_id: int) -> Tensor:
    """``log(softmax(logits))`` with the official min-length eos ban."""
    if logits.dim() != 2:
        raise ValueError('step_fn must return logits of shape (N, V), got '
                         f'{tuple(logits.shape)}')
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    # Official numerics: log of softmax (not log_softmax).
    log_probs = torch.log(torch.softmax(logits, dim=-1))
    if step < min_length:
        log_probs[:, eos_token_id] = EOS_BAN_LOGPROB
    return log_probs


def _check_common(input_ids: Tensor, max_length: int, min_length: int):
    if input_ids.dim() != 2 or input_ids.size(1) < 1:
        raise ValueError('input_ids must be (B, t0) with t0 >= 1, got '
                         f'{tuple(input_ids.shape)}')
    if input_ids.dtype != torch.long:
        raise TypeError(f'input_ids must be int64, got {input_ids.dtype}')
    if max_length < 1:
        raise ValueError(f'max_length must be >= 1, got {max_length}')
    if min_length < 0:
        raise ValueError(f'min_length must be >= 0, got {min_length}')


def _check_rows(logits: Tensor, num_rows: int):
    if logits.size(0) != num_rows:
        raise ValueError(f'step_fn returned {logits.size(0)} rows, expected '
                         f'{num_rows}')


@torch.no_grad()
def greedy_search(step_fn: StepFn,
                  reorder_fn: Optional[ReorderFn],
                  input_ids: Tensor,
                  *,
                  max_length: int,
                  min_length: int = 0,
                  eos_token_id: int,
                  pad_token_id: int,
                  use_cache: bool = True) -> Tensor:
    """Greedy decoding.

    Each step takes the argmax of ``log(softmax(logits))`` (eos banned with
    -1e20 while ``step < min_length``, as in beam search).  Runs at most
    ``max_length`` steps and stops early once every row has emitted eos.

    Mathematically this is :func:`beam_search` with ``num_beams=1``: with one
    beam the top beam is the only beam, so the first eos ends the item and the
    only hypothesis is the greedy sequence (the length penalty and the
    cumulative score are positive rescalings / shifts that do not change the
    argmax).  The outputs agree token for token barring exact floating-point
    ties between the two best tokens.

    Args:
        step_fn: see the module docstring.
        reorder_fn: unused (rows are never permuted); accepted for symmetry
            with :func:`beam_search`.
        input_ids: ``(B, t0)`` prompt, e.g. ``[[101]] * B``.

    Returns:
        ``(B, t0 + steps)`` int64: the prompt followed by the generated
        tokens; positions after a row's eos hold ``pad_token_id``.
    """
    del reorder_fn
    _check_common(input_ids, max_length, min_length)
    num_rows = input_ids.size(0)
    seqs = input_ids
    unfinished = torch.ones(num_rows, dtype=torch.bool, device=seqs.device)
    state = None
    tokens = seqs
    for step in range(max_length):
        logits, new_state = step_fn(tokens, state)
        _check_rows(logits, num_rows)
        state = new_state if use_cache else None
        log_probs = _log_probs(logits, step, min_length, eos_token_id)
        next_tokens = log_probs.argmax(dim=-1)
        next_tokens = torch.where(unfinished, next_tokens,
                                  next_tokens.new_full((), pad_token_id))
        seqs = torch.cat([seqs, next_tokens[:, None]], dim=1)
        unfinished = unfinished & next_tokens.ne(eos_token_id)
        if not bool(unfinished.any()):
            break
        tokens = next_tokens[:, None] if use_cache else seqs
    return seqs


@torch.no_grad()
def beam_search(step_fn: StepFn,
                reorder_fn: Optional[ReorderFn],
                input_ids: Tensor,
                *,
                num_beams: int,
                max_length: int,
                min_length: int = 0,
                eos_token_id: int,
                pad_token_id: int,
                length_penalty: float = 0.6,
                num_return_sequences: int = 1,
                use_cache: bool = True) -> Tuple[Tensor, Tensor]:
    """Beam search with the official mPLUG-2 (OpenNMT fast) semantics.

    See the module docstring for the exact algorithm, the ``step_fn`` /
    ``reorder_fn`` protocol and the batch layout (``B * num_beams`` rows,
    batch-major; finished items are frozen in place, never removed).

    Args:
        step_fn, reorder_fn: see the module docstring.  ``reorder_fn`` is
            required when ``use_cache=True``.
        input_ids: ``(B, t0)`` prompt (expanded to ``B * num_beams`` rows
            here with ``repeat_interleave``).
        num_beams: beam size K.
        max_length: maximum number of generation steps.
        min_length: eos is banned while ``step < min_length``.
        length_penalty: GNMT alpha (0 disables the penalty).
        num_return_sequences: hypotheses returned per item,
            ``1 <= R <= num_beams``.

    Returns:
        ``sequences`` ``(B * R, t0 + L)`` int64 (row ``b * R + r`` is the
        ``r``-th best hypothesis of item ``b``; it includes the prompt and is
        right-padded with ``pad_token_id``; ``L`` is the longest returned
        hypothesis) and ``scores`` ``(B * R,)``: their length-normalised
        scores (official ``topk_scores``).
    """
    _check_common(input_ids, max_length, min_length)
    if num_beams < 1:
        raise ValueError(f'num_beams must be >= 1, got {num_beams}')
    if not 1 <= num_return_sequences <= num_beams:
        raise ValueError('num_return_sequences must be in [1, num_beams], '
                         f'got {num_return_sequences} (num_beams={num_beams})')
    if use_cache and reorder_fn is None:
        raise ValueError('beam_search with use_cache=True needs a reorder_fn')

    device = input_ids.device
    batch_size, prompt_len = input_ids.shape
    num_rows = batch_size * num_beams
    num_keep = num_return_sequences
    full_len = prompt_len + max_length

    seqs = input_ids.repeat_interleave(num_beams, dim=0)  # (N, t)
    # Identity row index of every (item, beam) and the first row of each item.
    row_ids = torch.arange(num_rows, device=device).view(batch_size, num_beams)
    beam_offset = row_ids[:, :1]  # (B, 1)
    pad = torch.full((), pad_token_id, dtype=torch.long, device=device)

    cum_log_probs: Optional[Tensor] = None  # (B, K), dtype of the log-probs
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)

    # Running top-R finished hypotheses of every item.
    best_scores: Optional[Tensor] = None  # (B, R)
    best_valid = torch.zeros(batch_size, num_keep, dtype=torch.bool,
                             device=device)
    best_seqs = torch.full((batch_size, num_keep, full_len), pad_token_id,
                           dtype=torch.long, device=device)
    best_lens = torch.zeros(batch_size, num_keep, dtype=torch.long,
                            device=device)

    state = None
    tokens = seqs
    for step in range(max_length):
        logits, new_state = step_fn(tokens, state)
        _check_rows(logits, num_rows)
        state = new_state if use_cache else None
        log_probs = _log_probs(logits, step, min_length, eos_token_id)
        vocab_size = log_probs.size(-1)
        if cum_log_probs is None:
            # Only beam 0 is alive at the first step.
            cum_log_probs = log_probs.new_full((batch_size, num_beams),
                                               float('-inf'))
            cum_log_probs[:, 0] = 0.0
            best_scores = log_probs.new_full((batch_size, num_keep),
                                             float('-inf'))

        penalty = gnmt_length_penalty(step, length_penalty)
        # Same operations, in the same order, as the official code.
        curr_scores = (log_probs + cum_log_probs.view(-1, 1)) / penalty
        top_scores, top_ids = curr_scores.view(batch_size, -1).topk(
            num_beams, dim=-1)  # (B, K)
        new_cum = top_scores * penalty
        src_beam = torch.div(top_ids, vocab_size, rounding_mode='floor')
        next_tokens = top_ids.fmod(vocab_size)
        src_rows = src_beam + beam_offset  # (B, K)

        # Freeze the items finished at an earlier step.
        frozen = finished[:, None]
        src_rows = torch.where(frozen, row_ids, src_rows)
        next_tokens = torch.where(frozen, pad, next_tokens)
        cum_log_probs = torch.where(frozen, cum_log_probs, new_cum)

        seqs = torch.cat(
            [seqs.index_select(0, src_rows.view(-1)),
             next_tokens.view(-1, 1)], dim=1)

        alive = ~finished
        is_eos = next_tokens.eq(eos_token_id) & alive[:, None]
        if step + 1 == max_length:
            ending = alive
        else:
            ending = is_eos[:, 0]
        save = is_eos | ending[:, None]  # (B, K)

        if bool(save.any()):
            cur_len = seqs.size(1)
            cand_seqs = F.pad(
                seqs.view(batch_size, num_beams, cur_len),
                (0, full_len - cur_len), value=pad_token_id)
            cand_scores = torch.where(
                save, top_scores, top_scores.new_full((), float('-inf')))
            all_scores = torch.cat([best_scores, cand_scores], dim=1)
            all_valid = torch.cat([best_valid, save], dim=1)
            all_seqs = torch.cat([best_seqs, cand_seqs], dim=1)
            all_lens = torch.cat(
                [best_lens, best_lens.new_full(save.shape, cur_len)], dim=1)
            # Lexicographic (valid first, then score descending) stable sort:
            # ties keep insertion order (old entries, then beam order).
            order = all_scores.sort(dim=1, descending=True, stable=True)[1]
            valid_sorted = all_valid.gather(1, order).to(torch.uint8)
            order = order.gather(
                1, valid_sorted.sort(dim=1, descending=True, stable=True)[1])
            keep = order[:, :num_keep]
            best_scores = all_scores.gather(1, keep)
            best_valid = all_valid.gather(1, keep)
            best_lens = all_lens.gather(1, keep)
            best_seqs = all_seqs.gather(
                1, keep[:, :, None].expand(-1, -1, full_len))

        finished = finished | ending
        if bool(finished.all()):
            break
        if use_cache:
            state = reorder_fn(state, src_rows.view(-1))
            tokens = next_tokens.view(-1, 1)
        else:
            tokens = seqs

    out_len = int(best_lens.max())
    sequences = best_seqs[:, :, :out_len].reshape(batch_size * num_keep,
                                                  out_len)
    return sequences, best_scores.reshape(-1)
