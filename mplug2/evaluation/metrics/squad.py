"""SQuAD v1.1 / v2.0 exact match and F1, over the windows of the span model.

The scoring is the official one, taken from torchmetrics' SQuAD implementation (pinned
1.9.0; the same normalisation and token F1 as the official ``evaluate-v1.1.py``): answers are
lower-cased, punctuation and the articles a / an / the are removed and whitespace is
collapsed; a prediction scores the maximum over the reference answers. SQuAD v2.0 adds the
official ``evaluate-v2.0.py`` rules: an unanswerable question has the single reference ``''``
(also when its reference answers all normalise to nothing), so the empty prediction scores
1 on it and 0 on an answerable one; the scores are also reported for the answerable
(``HasAns``) and unanswerable (``NoAns``) questions apart.

Per question, the windows' predictions are combined as BERT's ``run_squad.py`` and Hugging
Face's ``utils_qa.py`` do: the answer is the best-scoring span over all its windows; for
v2.0 the null score is the lowest ``[CLS]`` score over the windows, and the prediction is
the empty answer when ``null_score - best_span_score > null_score_diff_threshold``.
"""
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from torchmetrics.functional.text.squad import (_compute_exact_match_score, _compute_f1_score,
                                                _metric_max_over_ground_truths, _normalize_text)

from mplug2.registry import METRICS

__all__ = ['SquadMetric', 'combine_windows', 'choose_answer', 'squad_scores',
           'normalize_squad_answer']


def normalize_squad_answer(text: str) -> str:
    """The official SQuAD answer normalisation (lower case, no punctuation, no a / an /
    the, single spaces)."""
    return _normalize_text(text)


def choose_answer(best_span_text: Optional[str], best_span_score: Optional[float],
                  null_score: float, threshold: float = 0.0) -> str:
    """SQuAD v2.0's decision: ``''`` (no answer) when ``null_score - best_span_score >
    threshold`` or there is no span at all, else the best span's text."""
    if best_span_text is None or best_span_score is None:
        return ''
    return '' if null_score - best_span_score > threshold else best_span_text


def combine_windows(windows: Sequence[dict], with_negative: bool = False,
                    null_score_diff_threshold: float = 0.0) -> Dict[str, dict]:
    """Per question id, the prediction from its windows.

    Args:
        windows: ``dict(example_id, spans=[dict(text, score), ...], null_score)`` per window.
        with_negative: SQuAD v2.0 (the empty answer can be predicted).
        null_score_diff_threshold: see :func:`choose_answer`.

    Returns:
        ``{id: dict(prediction_text, best_score, null_score)}`` in the order the questions
        first appear (``best_score`` None when no window had a span).
    """
    best: Dict[str, dict] = OrderedDict()
    for window in windows:
        entry = best.setdefault(window['example_id'],
                                dict(text=None, score=None, null_score=None))
        null = float(window['null_score'])
        if entry['null_score'] is None or null < entry['null_score']:
            entry['null_score'] = null
        for span in window['spans']:
            if entry['score'] is None or span['score'] > entry['score']:
                entry['text'], entry['score'] = span['text'], float(span['score'])
    results = OrderedDict()
    for qid, entry in best.items():
        if with_negative:
            text = choose_answer(entry['text'], entry['score'], entry['null_score'],
                                 null_score_diff_threshold)
        else:
            text = entry['text'] if entry['text'] is not None else ''
        results[qid] = dict(prediction_text=text, best_score=entry['score'],
                            null_score=entry['null_score'])
    return results


def squad_scores(predictions: Dict[str, str], references: Dict[str, List[str]],
                 with_negative: bool = False) -> Dict[str, float]:
    """Exact match and F1 in percent over the questions of ``references``.

    Args:
        predictions: ``{id: answer}`` (``''``: no answer). A question without a prediction
            is an error.
        references: ``{id: [reference answers]}`` (an empty list: unanswerable, v2.0).
        with_negative: SQuAD v2.0 rules and the ``HasAns_*`` / ``NoAns_*`` breakdown.

    Returns:
        ``exact_match``, ``f1``, ``total``; for v2.0 also ``HasAns_exact``, ``HasAns_f1``,
        ``HasAns_total``, ``NoAns_exact``, ``NoAns_f1``, ``NoAns_total`` (a part without
        questions is left out).
    """
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise ValueError(f'no prediction for {len(missing)} of {len(references)} questions '
                         f'(first: {missing[:5]})')
    if not references:
        raise ValueError('no question to score')
    exact, f1, has_answer = {}, {}, {}
    for qid, answers in references.items():
        prediction = predictions[qid]
        if with_negative:
            # evaluate-v2.0.py: references that normalise to nothing do not count.
            answers = [a for a in answers if _normalize_text(a)] or ['']
        elif not answers:
            raise ValueError(f'question {qid!r} has no reference answer (SQuAD v1.1 needs one; '
                             'with_negative=True scores SQuAD v2.0)')
        has_answer[qid] = answers != ['']
        exact[qid] = float(_metric_max_over_ground_truths(_compute_exact_match_score,
                                                          prediction, answers))
        f1[qid] = float(_metric_max_over_ground_truths(_compute_f1_score, prediction, answers))

    def mean(values: Dict[str, float], ids) -> float:
        return 100.0 * sum(values[qid] for qid in ids) / len(ids)

    ids = list(references)
    scores = dict(exact_match=mean(exact, ids), f1=mean(f1, ids), total=len(ids))
    if with_negative:
        for name, part in (('HasAns', [q for q in ids if has_answer[q]]),
                           ('NoAns', [q for q in ids if not has_answer[q]])):
            if part:
                scores.update({f'{name}_exact': mean(exact, part), f'{name}_f1': mean(f1, part),
                               f'{name}_total': len(part)})
    return scores


@METRICS.register_module()
class SquadMetric(BaseMetric):
    """SQuAD exact match and F1 (``squad/exact_match``, ``squad/f1``, in percent) of the
    span model's window predictions (``pred_spans``, ``null_score``), against the samples'
    ``gt_answers``, one score per question (``example_id``).

    Args:
        with_negative: SQuAD v2.0: predict no answer by the null score and score the
            unanswerable questions (adds the ``HasAns`` / ``NoAns`` breakdown).
        null_score_diff_threshold: v2.0, see :func:`choose_answer` (0.0 as BERT; tune it on
            the dev set, BERT suggests -1.0 to -5.0).
        prediction_file: write ``{id: answer}`` there (the official evaluation scripts'
            input) when given.
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix = 'squad'

    def __init__(self, with_negative: bool = False, null_score_diff_threshold: float = 0.0,
                 prediction_file: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.with_negative = with_negative
        self.null_score_diff_threshold = null_score_diff_threshold
        self.prediction_file = prediction_file

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            get = sample.get if hasattr(sample, 'get') else sample.__getitem__
            spans = get('pred_spans')
            if spans is None:
                raise KeyError('SquadMetric needs pred_spans and null_score from MPLUG2SpanQA')
            self.results.append(dict(
                example_id=get('example_id'),
                spans=[dict(text=s['text'], score=float(s['score'])) for s in spans],
                null_score=float(get('null_score')),
                gt_answers=list(get('gt_answers'))))

    def compute_metrics(self, results: list) -> dict:
        references = OrderedDict()
        for window in results:
            references.setdefault(window['example_id'], window['gt_answers'])
        combined = combine_windows(results, self.with_negative, self.null_score_diff_threshold)
        predictions = {qid: entry['prediction_text'] for qid, entry in combined.items()}
        if self.prediction_file:
            directory = osp.dirname(osp.abspath(self.prediction_file))
            os.makedirs(directory, exist_ok=True)
            with open(self.prediction_file, 'w', encoding='utf-8') as f:
                json.dump(predictions, f, ensure_ascii=False, indent=1)
            print_log(f'SquadMetric: {len(predictions)} predictions written to '
                      f'{self.prediction_file}', logger='current')
        scores = squad_scores(predictions, references, self.with_negative)
        return {key: float(value) for key, value in scores.items()}
