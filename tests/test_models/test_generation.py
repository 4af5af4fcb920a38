"""Tests of ``mplug2.models.decoders.generation`` (greedy and beam search)."""
import math

import pytest
import torch
from torch import nn

from mplug2.models.decoders.generation import (beam_search, gnmt_length_penalty,
                                               greedy_search)

BOS, EOS, PAD = 1, 2, 0


# --------------------------------------------------------------------------
# A tiny causal self-attention LM with a real per-step K/V cache and a
# per-item "memory" vector (captured in step_fn, tiled like the decoder's).
# --------------------------------------------------------------------------
class ToyLM(nn.Module):

    def __init__(self, vocab_size=11, dim=16, max_pos=64, seed=0,
                 temperature=3.0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)

        def param(*shape):
            return nn.Parameter(
                torch.randn(*shape, generator=gen, dtype=torch.float64))

        self.emb = param(vocab_size, dim)
        self.pos = param(max_pos, dim)
        self.wq, self.wk, self.wv = param(dim, dim), param(dim, dim), param(
            dim, dim)
        self.out = param(dim, vocab_size)
        self.temperature = temperature

    def forward(self, tokens, memory, past=None):
        """tokens (N, t), memory (N, D); past = (k, v) each (N, T, D)."""
        past_len = 0 if past is None else past[0].size(1)
        t = tokens.size(1)
        pos = torch.arange(past_len, past_len + t)
        x = self.emb[tokens] + self.pos[pos] + memory[:, None]
        q, k, v = x @ self.wq, x @ self.wk, x @ self.wv
        if past is not None:
            k = torch.cat([past[0], k], dim=1)
            v = torch.cat([past[1], v], dim=1)
        att = q @ k.transpose(1, 2) / math.sqrt(q.size(-1))
        key_pos = torch.arange(past_len + t)
        causal = key_pos[None, :] > pos[:, None]
        att = att.masked_fill(causal, float('-inf')).softmax(-1)
        h = x + att @ v
        logits = torch.tanh(h) @ self.out * self.temperature
        return logits[:, -1], (k, v)


def make_fns(model, memory):
    """step_fn / reorder_fn pair; ``memory`` already tiled to N rows."""

    def step_fn(tokens, state):
        return model(tokens, memory, state)

    def reorder_fn(state, index):
        return tuple(s.index_select(0, index) for s in state)

    return step_fn, reorder_fn


def toy_setup(batch_size, seed, vocab_size=11, prompt_len=1):
    model = ToyLM(vocab_size=vocab_size, seed=seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    memory = torch.randn(batch_size, 16, generator=gen, dtype=torch.float64)
    prompt = torch.randint(3, vocab_size, (batch_size, prompt_len),
                           generator=gen)
    prompt[:, 0] = BOS
    return model, memory, prompt


def run_greedy(model, memory, prompt, use_cache=True, **kw):
    step_fn, reorder_fn = make_fns(model, memory)
    return greedy_search(step_fn, reorder_fn, prompt, eos_token_id=EOS,
                         pad_token_id=PAD, use_cache=use_cache, **kw)


def run_beam(model, memory, prompt, num_beams, use_cache=True, **kw):
    step_fn, reorder_fn = make_fns(
        model, memory.repeat_interleave(num_beams, dim=0))
    return beam_search(step_fn, reorder_fn, prompt, num_beams=num_beams,
                       eos_token_id=EOS, pad_token_id=PAD,
                       use_cache=use_cache, **kw)


# --------------------------------------------------------------------------
# Slow, literal reference of the official algorithm (per item, Python loops,
# finished items removed, every hypothesis kept, stable sort at the end).
# --------------------------------------------------------------------------
def reference_beam_search(next_logits, prompt, num_beams, max_length,
                          min_length, alpha, num_return):
    """``next_logits(list of prefixes) -> (n, V) float64 logits``."""
    beams = [(list(prompt), 0.0)] + [(list(prompt), -math.inf)] * (
        num_beams - 1)
    hypotheses = []
    for step in range(max_length):
        lp = ((5.0 + (step + 1)) / 6.0)**alpha
        logits = next_logits([seq for seq, _ in beams])
        candidates = []
        for k, (seq, cum) in enumerate(beams):
            log_probs = torch.log(torch.softmax(logits[k], -1)).tolist()
            if step < min_length:
                log_probs[EOS] = -1e20
            for tok, lpv in enumerate(log_probs):
                candidates.append(
                    ((cum + lpv) / lp, k * len(log_probs) + tok, seq + [tok]))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        top = candidates[:num_beams]
        beams = [(seq, score * lp) for score, _, seq in top]
        item_done = step + 1 == max_length or top[0][2][-1] == EOS
        for score, _, seq in top:
            if item_done or seq[-1] == EOS:
                hypotheses.append((score, seq))
        if item_done:
            break
    ranked = sorted(hypotheses, key=lambda h: h[0], reverse=True)
    return ranked[:num_return]


def reference_greedy(next_logits, prompt, max_length, min_length):
    seq = list(prompt)
    for step in range(max_length):
        log_probs = torch.log(torch.softmax(next_logits([seq])[0], -1))
        if step < min_length:
            log_probs[EOS] = -1e20
        tok = int(log_probs.argmax())
        seq.append(tok)
        if tok == EOS:
            break
    return seq


def toy_next_logits(model, memory_row):

    def next_logits(prefixes):
        tokens = torch.tensor(prefixes, dtype=torch.long)
        mem = memory_row[None].expand(len(prefixes), -1)
        return model(tokens, mem)[0]

    return next_logits


def pad_rows(rows, value=PAD):
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


# --------------------------------------------------------------------------
# Scripted LM: next-token distribution is a fixed table of the generated
# prefix, so the official result can be computed by hand.
# Tokens: 0 pad, 1 bos, 2 eos, 3 a, 4 b, 5 c.
# --------------------------------------------------------------------------
A, B_, C = 3, 4, 5
SCRIPT = {
    (): {A: .5, B_: .4, EOS: .05, C: .03, PAD: .01, BOS: .01},
    (A, ): {EOS: .66, A: .12, B_: .10, C: .08, PAD: .02, BOS: .02},
    (B_, ): {C: .9, EOS: .03, A: .025, B_: .02, PAD: .015, BOS: .01},
    (B_, C): {EOS: .88, A: .04, B_: .03, C: .025, PAD: .015, BOS: .01},
}
DEFAULT = {EOS: .5, A: .3, B_: .1, C: .06, PAD: .03, BOS: .01}


def scripted_logits(prefixes):
    rows = []
    for seq in prefixes:
        table = SCRIPT.get(tuple(seq[1:]), DEFAULT)
        rows.append([math.log(table[v]) for v in range(6)])
    return torch.tensor(rows, dtype=torch.float64)


def scripted_step_fn(tokens, state):
    """Uncached and cached at once: the state is the full prefix."""
    prefix = tokens if state is None else torch.cat([state, tokens], 1)
    return scripted_logits(prefix.tolist()), prefix


def scripted_reorder(state, index):
    return state.index_select(0, index)


def run_scripted(num_beams, use_cache=True, **kw):
    prompt = torch.tensor([[BOS]])
    return beam_search(scripted_step_fn, scripted_reorder, prompt,
                       num_beams=num_beams, eos_token_id=EOS,
                       pad_token_id=PAD, use_cache=use_cache, **kw)


def lp(step, alpha=0.6):
    return ((5.0 + step + 1) / 6.0)**alpha


LOG = {k: {t: math.log(p) for t, p in v.items()} for k, v in SCRIPT.items()}
LOG_DEFAULT = {t: math.log(p) for t, p in DEFAULT.items()}
# Raw log-probs of the interesting paths.
P_A_EOS = LOG[()][A] + LOG[(A, )][EOS]  # -1.1087
P_BC = LOG[()][B_] + LOG[(B_, )][C]  # -1.0217
P_BC_EOS = P_BC + LOG[(B_, C)][EOS]  # -1.1495
P_A_EOS_EOS = P_A_EOS + LOG_DEFAULT[EOS]


class TestScriptedBeamSearch:

    def test_length_penalty_changes_winner_and_eos_beam_kept_alive(self):
        # step 0: beams [a, b]; step 1: [b c, a eos] -> "a eos" is saved but
        # is not the top beam, so the item goes on and the beam stays alive;
        # step 2: [b c eos, a eos eos] -> top beam eos, both beams saved.
        # alpha 0.6: b c eos (-1.1495/lp(2)) beats a eos (-1.1087/lp(1)).
        seqs, scores = run_scripted(2, max_length=5, num_return_sequences=2)
        assert seqs.tolist() == [[BOS, B_, C, EOS], [BOS, A, EOS, PAD]]
        expected = [P_BC_EOS / lp(2), P_A_EOS / lp(1)]
        assert scores.tolist() == pytest.approx(expected, abs=1e-9)

        # Without length penalty the shorter, more probable one wins.
        seqs, scores = run_scripted(2, max_length=5, num_return_sequences=2,
                                    length_penalty=0.0)
        assert seqs.tolist() == [[BOS, A, EOS, PAD], [BOS, B_, C, EOS]]
        assert scores.tolist() == pytest.approx([P_A_EOS, P_BC_EOS],
                                                abs=1e-9)

    def test_beam_that_emitted_eos_keeps_extending(self):
        # With 3 beams, step 2 is [b c eos, a eos eos, a eos a]: the beam
        # that emitted eos at step 1 kept extending and is saved again.
        seqs, scores = run_scripted(3, max_length=5, num_return_sequences=3)
        assert seqs.tolist() == [[BOS, B_, C, EOS], [BOS, A, EOS, PAD],
                                 [BOS, A, EOS, EOS]]
        expected = [P_BC_EOS / lp(2), P_A_EOS / lp(1), P_A_EOS_EOS / lp(2)]
        assert scores.tolist() == pytest.approx(expected, abs=1e-9)

    def test_min_length_bans_eos(self):
        # alpha 0: without min_length "a eos" wins; min_length=2 bans eos at
        # step 1, so beams are [b c, a a] and "b c eos" wins.
        seqs, _ = run_scripted(2, max_length=5, length_penalty=0.0)
        assert seqs.tolist() == [[BOS, A, EOS]]
        seqs, scores = run_scripted(2, max_length=5, length_penalty=0.0,
                                    min_length=2, num_return_sequences=2)
        p_a_a_eos = LOG[()][A] + LOG[(A, )][A] + LOG_DEFAULT[EOS]
        assert seqs.tolist() == [[BOS, B_, C, EOS], [BOS, A, A, EOS]]
        assert scores.tolist() == pytest.approx([P_BC_EOS, p_a_a_eos],
                                                abs=1e-9)

    def test_finish_by_max_length(self):
        # max_length=2: the last step saves all beams, eos or not.
        seqs, scores = run_scripted(2, max_length=2, num_return_sequences=2)
        assert seqs.tolist() == [[BOS, B_, C], [BOS, A, EOS]]
        assert scores.tolist() == pytest.approx(
            [P_BC / lp(1), P_A_EOS / lp(1)], abs=1e-9)
        # max_length=1: no eos at all.
        seqs, scores = run_scripted(2, max_length=1, num_return_sequences=2)
        assert seqs.tolist() == [[BOS, A], [BOS, B_]]
        assert scores.tolist() == pytest.approx(
            [LOG[()][A], LOG[()][B_]], abs=1e-9)

    @pytest.mark.parametrize('use_cache', [True, False])
    def test_matches_reference(self, use_cache):
        for kw in [dict(max_length=5), dict(max_length=2),
                   dict(max_length=5, length_penalty=0.0, min_length=2)]:
            for k in (1, 2, 3, 4):
                seqs, scores = run_scripted(
                    k, use_cache=use_cache, num_return_sequences=k, **kw)
                ref = reference_beam_search(
                    scripted_logits, [BOS], k, kw['max_length'],
                    kw.get('min_length', 0), kw.get('length_penalty', 0.6), k)
                assert seqs.tolist() == pad_rows([s for _, s in ref]).tolist()
                assert scores.tolist() == pytest.approx(
                    [s for s, _ in ref], abs=1e-12)


def test_gnmt_length_penalty():
    assert gnmt_length_penalty(0, 0.6) == 1.0
    assert gnmt_length_penalty(2, 0.6) == pytest.approx((8 / 6)**0.6)
    assert gnmt_length_penalty(7, 0.0) == 1.0


# --------------------------------------------------------------------------
# Random toy LMs against the reference.
# --------------------------------------------------------------------------
CONFIGS = [
    # seed, batch, beams, min_len, max_len, alpha, n_return, prompt_len
    (0, 3, 3, 0, 6, 0.6, 1, 1),
    (1, 2, 5, 1, 8, 0.6, 5, 1),
    (2, 4, 2, 3, 5, 0.0, 2, 2),
    (3, 1, 4, 0, 10, 1.0, 3, 1),
    (4, 5, 1, 2, 7, 0.6, 1, 3),
    (5, 3, 3, 4, 4, 0.6, 3, 1),
    (6, 2, 4, 0, 1, 0.6, 2, 1),
]


@pytest.mark.parametrize('use_cache', [True, False])
@pytest.mark.parametrize('cfg', CONFIGS)
def test_beam_search_matches_reference(cfg, use_cache):
    seed, bsz, beams, min_len, max_len, alpha, n_ret, plen = cfg
    model, memory, prompt = toy_setup(bsz, seed, prompt_len=plen)
    seqs, scores = run_beam(model, memory, prompt, beams, use_cache=use_cache,
                            max_length=max_len, min_length=min_len,
                            length_penalty=alpha,
                            num_return_sequences=n_ret)
    expected_rows, expected_scores = [], []
    for b in range(bsz):
        ref = reference_beam_search(
            toy_next_logits(model, memory[b]), prompt[b].tolist(), beams,
            max_len, min_len, alpha, n_ret)
        assert len(ref) == n_ret
        expected_rows += [s for _, s in ref]
        expected_scores += [s for s, _ in ref]
    assert seqs.tolist() == pad_rows(expected_rows).tolist()
    assert scores.tolist() == pytest.approx(expected_scores, abs=1e-9)
    assert seqs.shape[0] == bsz * n_ret and scores.shape == (bsz * n_ret, )


def test_reference_exercises_the_quirks():
    """The random configurations above do hit the interesting rules."""
    saw_non_top_eos = saw_inner_eos = saw_max_len = False
    for seed, bsz, beams, min_len, max_len, alpha, n_ret, plen in CONFIGS:
        model, memory, prompt = toy_setup(bsz, seed, prompt_len=plen)
        for b in range(bsz):
            ref = reference_beam_search(
                toy_next_logits(model, memory[b]), prompt[b].tolist(), beams,
                max_len, min_len, alpha, beams)
            for _, seq in ref:
                gen = seq[plen:]
                saw_inner_eos |= EOS in gen[:-1]
                saw_max_len |= len(gen) == max_len and gen[-1] != EOS
            saw_non_top_eos |= len({len(s) for _, s in ref}) > 1
    assert saw_non_top_eos and saw_inner_eos and saw_max_len


@pytest.mark.parametrize('seed', range(4))
def test_cached_equals_uncached(seed):
    model, memory, prompt = toy_setup(4, seed, prompt_len=2)
    for kw in [dict(max_length=8), dict(max_length=6, min_length=3)]:
        g1 = run_greedy(model, memory, prompt, use_cache=True, **kw)
        g2 = run_greedy(model, memory, prompt, use_cache=False, **kw)
        assert torch.equal(g1, g2)
        s1, p1 = run_beam(model, memory, prompt, 3, use_cache=True,
                          num_return_sequences=3, **kw)
        s2, p2 = run_beam(model, memory, prompt, 3, use_cache=False,
                          num_return_sequences=3, **kw)
        assert torch.equal(s1, s2)
        torch.testing.assert_close(p1, p2, rtol=0, atol=1e-12)


@pytest.mark.parametrize('seed', range(5))
def test_beam_one_equals_greedy(seed):
    model, memory, prompt = toy_setup(6, seed)
    for kw in [dict(max_length=9), dict(max_length=5, min_length=2),
               dict(max_length=1)]:
        greedy = run_greedy(model, memory, prompt, **kw)
        for alpha in (0.0, 0.6):
            seqs, _ = run_beam(model, memory, prompt, 1, length_penalty=alpha,
                               **kw)
            assert torch.equal(seqs, greedy)


@pytest.mark.parametrize('seed', range(3))
def test_greedy_matches_reference(seed):
    model, memory, prompt = toy_setup(5, seed, prompt_len=2)
    out = run_greedy(model, memory, prompt, max_length=7, min_length=2)
    rows = [
        reference_greedy(
            toy_next_logits(model, memory[b]), prompt[b].tolist(), 7, 2)
        for b in range(5)
    ]
    assert out.tolist() == pad_rows(rows).tolist()
    # Pad after eos, and eos never before min_length.
    for row in out.tolist():
        gen = row[2:]
        assert EOS not in gen[:2]
        if EOS in gen:
            assert all(t == PAD for t in gen[gen.index(EOS) + 1:])


def test_batched_equals_single():
    model, memory, prompt = toy_setup(5, 7)
    kw = dict(max_length=8, min_length=1)
    seqs, scores = run_beam(model, memory, prompt, 4, num_return_sequences=2,
                            **kw)
    greedy = run_greedy(model, memory, prompt, **kw)
    rows, single_scores, greedy_rows = [], [], []
    for b in range(5):
        s, p = run_beam(model, memory[b:b + 1], prompt[b:b + 1], 4,
                        num_return_sequences=2, **kw)
        rows += s.tolist()
        single_scores += p.tolist()
        greedy_rows += run_greedy(model, memory[b:b + 1], prompt[b:b + 1],
                                  **kw).tolist()

    def strip(r):
        while r and r[-1] == PAD:
            r = r[:-1]
        return r

    assert [strip(r) for r in seqs.tolist()] == [strip(r) for r in rows]
    assert scores.tolist() == pytest.approx(single_scores, abs=1e-12)
    assert [strip(r) for r in greedy.tolist()] == [
        strip(r) for r in greedy_rows
    ]


def test_greedy_stops_early_and_pads():
    # Scripted LM: greedy path is a, eos.
    calls = []

    def step_fn(tokens, state):
        calls.append(tokens.shape)
        return scripted_step_fn(tokens, state)

    out = greedy_search(step_fn, None, torch.tensor([[BOS], [BOS]]),
                        max_length=10, eos_token_id=EOS, pad_token_id=PAD)
    assert out.tolist() == [[BOS, A, EOS]] * 2
    assert calls == [(2, 1), (2, 1)]


def test_step_fn_protocol():
    """Cached: prompt first then single tokens; uncached: full prefixes."""
    for use_cache in (True, False):
        seen = []

        def step_fn(tokens, state):
            seen.append((tuple(tokens.shape), state is None))
            return scripted_step_fn(tokens, state)

        beam_search(step_fn, scripted_reorder, torch.tensor([[BOS]] * 2),
                    num_beams=3, max_length=3, eos_token_id=EOS,
                    pad_token_id=PAD, use_cache=use_cache)
        if use_cache:
            assert seen == [((6, 1), True), ((6, 1), False), ((6, 1), False)]
        else:
            assert seen == [((6, 1), True), ((6, 2), True), ((6, 3), True)]


def test_invalid_arguments():
    prompt = torch.tensor([[BOS]])
    with pytest.raises(ValueError, match=r'num_return_sequences must be in \[1, num_beams\], got 3 '
                                         r'\(num_beams=2\)'):
        run_scripted(2, max_length=3, num_return_sequences=3)
    with pytest.raises(ValueError, match='max_length must be >= 1, got 0'):
        run_scripted(2, max_length=0)
    with pytest.raises(ValueError, match='beam_search with use_cache=True needs a reorder_fn'):
        beam_search(scripted_step_fn, None, prompt, num_beams=2, max_length=3,
                    eos_token_id=EOS, pad_token_id=PAD, use_cache=True)
