"""CIDEr-D as a reward for self-critical sequence training (SCST).

The same formula as the COCO caption evaluation (``pycocoevalcap``'s ``Cider``, which is
CIDEr-D): tf-idf vectors of 1- to 4-grams, clipped cosine similarity to each reference,
Gaussian length penalty (sigma 6), averaged over n and references, times 10. The
difference is the document frequency: evaluation takes it from the references being
scored, while a reward needs a fixed one, from the training corpus (``corpus``), so
that a candidate's reward does not depend on the rest of its batch. Pure Python, no Java.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Optional, Sequence

__all__ = ['CiderD']

NGram = tuple


def _ngrams(sentence: str, n: int) -> Counter:
    words = sentence.split()
    return Counter(tuple(words[i:i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


class CiderD:
    """CIDEr-D scorer.

    Args:
        corpus: reference sets of the training corpus (one list of captions per video or
            image) for the document frequency. None: use the references given to each call.
        n: longest n-gram. sigma: width of the length penalty.
    """

    def __init__(self, corpus: Optional[Iterable[Sequence[str]]] = None, n: int = 4, sigma: float = 6.0):
        self.n = n
        self.sigma = sigma
        self.document_frequency: Optional[Counter] = None
        self.log_num_documents = 0.0
        if corpus is not None:
            self.document_frequency, self.log_num_documents = self._document_frequency(corpus)

    def _document_frequency(self, reference_sets: Iterable[Sequence[str]]) -> tuple[Counter, float]:
        frequency: Counter = Counter()
        count = 0
        for references in reference_sets:
            count += 1
            frequency.update({gram for ref in references for gram in _ngrams(ref, self.n)})
        return frequency, math.log(max(count, 1))

    def _vector(self, counts: Counter, frequency: Counter, log_docs: float):
        vector = [dict() for _ in range(self.n)]
        norm = [0.0] * self.n
        for gram, term_frequency in counts.items():
            weight = term_frequency * (log_docs - math.log(max(1.0, frequency[gram])))
            vector[len(gram) - 1][gram] = weight
            norm[len(gram) - 1] += weight * weight
        length = sum(count for gram, count in counts.items() if len(gram) == 1)
        return vector, [math.sqrt(value) for value in norm], length

    def _similarity(self, hyp, ref) -> list[float]:
        (vec_h, norm_h, len_h), (vec_r, norm_r, len_r) = hyp, ref
        penalty = math.exp(-((len_h - len_r) ** 2) / (2 * self.sigma ** 2))
        values = []
        for k in range(self.n):
            value = sum(min(weight, vec_r[k].get(gram, 0.0)) * vec_r[k].get(gram, 0.0)
                        for gram, weight in vec_h[k].items())
            if norm_h[k] != 0 and norm_r[k] != 0:
                value /= norm_h[k] * norm_r[k]
            values.append(value * penalty)
        return values

    def score(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """CIDEr-D of each candidate against its references (lower-cased, tokenised by spaces)."""
        if len(candidates) != len(references):
            raise ValueError(f'{len(candidates)} candidates but {len(references)} reference sets')
        if self.document_frequency is None:
            frequency, log_docs = self._document_frequency(references)
        else:
            frequency, log_docs = self.document_frequency, self.log_num_documents
        scores = []
        for candidate, refs in zip(candidates, references):
            if not refs:
                raise ValueError(f'candidate {candidate!r} has no reference')
            hyp = self._vector(_ngrams(candidate, self.n), frequency, log_docs)
            total = [0.0] * self.n
            for ref in refs:
                sims = self._similarity(hyp, self._vector(_ngrams(ref, self.n), frequency, log_docs))
                total = [a + b for a, b in zip(total, sims)]
            scores.append(10.0 * sum(total) / self.n / len(refs))
        return scores
