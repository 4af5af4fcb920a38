"""ROUGE-1/2/L F1 of generated summaries (Gigaword), with Google's ``rouge-score`` package."""
import re
from typing import Dict, List, Optional, Sequence, Union

from mmengine.evaluator import BaseMetric

from mplug2.registry import METRICS

__all__ = ['RougeMetric', 'rouge_f1', 'normalize_unk', 'copy_baseline']

#: rouge-score's names of the reported scores.
ROUGE_TYPES = {'rouge1': 'ROUGE-1', 'rouge2': 'ROUGE-2', 'rougeL': 'ROUGE-L'}
# The unknown-word tokens a model or a data release may write, as whole words.
_UNK_FORMS = re.compile(r'(?<!\S)(?:\[UNK\]|<unk>|UNK)(?!\S)')


def normalize_unk(text: str, unk_token: str = 'UNK') -> str:
    """``[UNK]`` (BERT), ``<unk>`` and ``UNK`` (Gigaword) as whole words -> ``unk_token``."""
    return _UNK_FORMS.sub(unk_token, text)


def copy_baseline(source: str, num_words: int) -> str:
    """The copy-the-input baseline: the first ``num_words`` words of ``source``."""
    return ' '.join(source.split()[:num_words])


def _scorer(use_stemmer: bool, rouge_types: Sequence[str] = tuple(ROUGE_TYPES)):
    try:
        from rouge_score import rouge_scorer
    except ImportError as err:  # pragma: no cover - rouge-score is a runtime requirement
        raise ImportError('RougeMetric needs the rouge-score package (pip install '
                          'rouge-score==0.1.2)') from err
    return rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)


def rouge_f1(predictions: Sequence[str],
             references: Sequence[Union[str, Sequence[str]]],
             use_stemmer: bool = True,
             unk_token: str = 'UNK',
             remove_unk: bool = False) -> Dict[str, float]:
    """Mean ROUGE-1/2/L F1 (percent) of ``predictions`` against ``references``.

    A reference may be a list (several references: the best F1 of each ROUGE type counts,
    rouge-score's ``score_multi``). Unknown-word tokens are handled as :class:`RougeMetric`
    says.
    """
    if len(predictions) != len(references):
        raise ValueError(f'{len(predictions)} predictions but {len(references)} references')
    if not predictions:
        raise ValueError('no predictions to score')
    scorer = _scorer(use_stemmer)

    def prepare(text: str) -> str:
        text = normalize_unk(text, unk_token)
        if remove_unk:
            text = ' '.join(word for word in text.split() if word != unk_token)
        return text

    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, refs in zip(predictions, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        # rouge-score: score(target, prediction)
        scores = scorer.score_multi([prepare(r) for r in refs], prepare(prediction))
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {ROUGE_TYPES[name]: 100.0 * total / len(predictions) for name, total in totals.items()}


@METRICS.register_module()
class RougeMetric(BaseMetric):
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 (percent, mean over the samples) of ``pred_summary``
    against ``gt_summary``, as the Gigaword literature reports them.

    Scores come from Google's ``rouge-score`` package (``RougeScorer``, Porter stemming on as in
    the summarization literature; ROUGE-L is the sentence-level LCS, right for one-sentence
    headlines). Its tokenizer lower-cases and keeps only ``[a-z0-9]`` runs: ``#`` (Gigaword's
    digit mask), ``-lrb-`` brackets and punctuation do not count as written. The numbers are
    close to, but not the same as, those of the Perl ROUGE-1.5.5 (``files2rouge``) many papers
    used.

    Unknown words (the usual Gigaword test-set handling): the Rush et al. test references
    contain ``UNK`` for rare words and are scored as they are: an ``UNK`` in the prediction
    matches an ``UNK`` in the reference, like any word (GLM's Gigaword evaluation, for one,
    maps the model's ``[UNK]`` to ``UNK`` and scores the references as is). A BERT model
    writes the unknown word as ``[UNK]`` (some data releases write ``<unk>``): these are
    mapped to ``unk_token`` (``UNK``) in predictions and references before scoring.
    ``remove_unk=True`` instead removes every unknown-word token from both sides (an
    evaluation some papers used; not the default).

    A list in ``gt_summary`` is a set of references: the best F1 counts (``score_multi``).

    With ``copy_baseline_words=N`` the metric also scores the copy-the-input baseline (the
    first N words of the sample's ``source``) on the same samples: ``copyN_ROUGE-1`` ... (Rush
    et al. 2015's PREFIX baseline is the same idea: the first 75 characters of the input.)

    Args:
        use_stemmer: Porter stemming of the words (default True).
        unk_token: what ``[UNK]`` / ``<unk>`` / ``UNK`` become before scoring.
        remove_unk: drop the unknown-word tokens from both sides.
        copy_baseline_words: N of the copy baseline; None: not computed.
        pred_key, gt_key, source_key: the data-sample fields read.
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric` (prefix ``rouge``).
    """
    default_prefix = 'rouge'

    def __init__(self,
                 use_stemmer: bool = True,
                 unk_token: str = 'UNK',
                 remove_unk: bool = False,
                 copy_baseline_words: Optional[int] = None,
                 pred_key: str = 'pred_summary',
                 gt_key: str = 'gt_summary',
                 source_key: str = 'source',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if copy_baseline_words is not None and copy_baseline_words < 1:
            raise ValueError(f'copy_baseline_words must be a positive int or None, got '
                             f'{copy_baseline_words!r}')
        self.use_stemmer = use_stemmer
        self.unk_token = unk_token
        self.remove_unk = remove_unk
        self.copy_baseline_words = copy_baseline_words
        self.pred_key, self.gt_key, self.source_key = pred_key, gt_key, source_key
        _scorer(use_stemmer)  # fail at build time when rouge-score is missing

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred, gt = sample.get(self.pred_key), sample.get(self.gt_key)
            if pred is None or gt is None:
                raise KeyError(f'RougeMetric needs {self.pred_key} and {self.gt_key} in every '
                               f'data sample; got the keys {sorted(sample.keys())}')
            result = dict(pred=pred, gt=gt if isinstance(gt, str) else list(gt))
            if self.copy_baseline_words:
                source = sample.get(self.source_key)
                if source is None:
                    raise KeyError(f'RougeMetric(copy_baseline_words={self.copy_baseline_words}) '
                                   f'needs {self.source_key!r} in every data sample; got the '
                                   f'keys {sorted(sample.keys())}')
                result['copy'] = copy_baseline(source, self.copy_baseline_words)
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('RougeMetric got no results')
        options = dict(use_stemmer=self.use_stemmer, unk_token=self.unk_token,
                       remove_unk=self.remove_unk)
        references = [r['gt'] for r in results]
        metrics = rouge_f1([r['pred'] for r in results], references, **options)
        if self.copy_baseline_words:
            copy = rouge_f1([r['copy'] for r in results], references, **options)
            metrics.update({f'copy{self.copy_baseline_words}_{k}': v for k, v in copy.items()})
        return metrics
