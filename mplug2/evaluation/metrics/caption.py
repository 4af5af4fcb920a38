"""Captioning metrics (BLEU, METEOR, ROUGE-L, CIDEr, optionally SPICE) via pycocoevalcap."""
import shutil
import subprocess
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mplug2.registry import METRICS

__all__ = ['CaptionMetric', 'coco_caption_scores', 'java_available']


def java_available() -> Optional[str]:
    """Why Java cannot be used (a sentence), or None when ``java -version`` runs."""
    if shutil.which('java') is None:
        return 'no `java` executable on PATH'
    try:
        subprocess.run(['java', '-version'], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return f'`java -version` failed: {err}'
    return None


SCORERS = ('BLEU', 'METEOR', 'ROUGE_L', 'CIDEr', 'SPICE')


def coco_caption_scores(predictions: Dict[int, str], references: Dict[int, List[str]],
                        use_spice: bool = False,
                        scorers: Sequence[str] = ('BLEU', 'METEOR', 'ROUGE_L', 'CIDEr')
                        ) -> Dict[str, float]:
    """COCO caption scores (fractions, not %) of ``predictions`` against ``references``.

    Both are keyed by the same integer ids. ``scorers`` picks among ``BLEU`` (BLEU-1..4),
    ``METEOR``, ``ROUGE_L``, ``CIDEr`` (``SPICE`` is added by ``use_spice``). Captions
    are tokenised with the Stanford PTB tokenizer (lower-cased, punctuation removed), as
    the official evaluation (``language_evaluation.CocoEvaluator``) does. Needs Java for
    the tokenizer, METEOR and SPICE; SPICE also downloads Stanford CoreNLP on first use,
    which fails offline.
    """
    reason = java_available()
    if reason is not None:
        raise RuntimeError(f'CaptionMetric needs Java for the PTB tokenizer and METEOR '
                           f'({reason}). Install a Java runtime (e.g. apt-get install '
                           f'default-jre-headless).')
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    unknown = set(scorers) - set(SCORERS)
    if unknown:
        raise ValueError(f'unknown scorer(s) {sorted(unknown)}; choose from {SCORERS}')
    if set(predictions) != set(references):
        raise ValueError('predictions and references must have the same ids')
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{'caption': c} for c in refs] for i, refs in references.items()})
    res = tokenizer.tokenize({i: [{'caption': p}] for i, p in predictions.items()})
    wanted = set(scorers) | ({'SPICE'} if use_spice else set())
    chosen = []
    if 'BLEU' in wanted:
        chosen.append((Bleu(4), ['BLEU_1', 'BLEU_2', 'BLEU_3', 'BLEU_4']))
    if 'METEOR' in wanted:
        chosen.append((Meteor(), ['METEOR']))
    if 'ROUGE_L' in wanted:
        chosen.append((Rouge(), ['ROUGE_L']))
    if 'CIDEr' in wanted:
        chosen.append((Cider(), ['CIDEr']))
    if 'SPICE' in wanted:
        from pycocoevalcap.spice.spice import Spice
        chosen.append((Spice(), ['SPICE']))
    scores = {}
    for scorer, names in chosen:
        score, _ = scorer.compute_score(gts, res)
        values = score if isinstance(score, (list, tuple)) else [score]
        scores.update({name: float(value) for name, value in zip(names, values)})
        if hasattr(scorer, 'close'):
            scorer.close()
    return scores


@METRICS.register_module()
class CaptionMetric(BaseMetric):
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr (and SPICE with ``use_spice=True``), in percent.

    Reads ``pred_caption`` (str) and ``gt_caption`` (list of references) from every data
    sample, keyed by ``video_id`` (strings are fine: they are mapped to integers
    internally; a video seen twice keeps its first prediction).

    Args:
        use_spice: also compute SPICE (needs Stanford CoreNLP, downloaded on first use).
        scorers: the scorers to run, among ``'BLEU'``, ``'METEOR'``, ``'ROUGE_L'``,
            ``'CIDEr'`` (all by default; METEOR's Java start-up takes ~15 s, drop it for
            quick validation runs).
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix = 'caption'

    def __init__(self, use_spice: bool = False,
                 scorers: Sequence[str] = ('BLEU', 'METEOR', 'ROUGE_L', 'CIDEr'),
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.use_spice = use_spice
        self.scorers = tuple(scorers)
        reason = java_available()
        if reason is not None:
            print_log(f'CaptionMetric: Java is not usable ({reason}); evaluation will fail.',
                      logger='current', level=30)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred, refs = sample.get('pred_caption'), sample.get('gt_caption')
            if pred is None or refs is None:
                raise KeyError('CaptionMetric needs pred_caption and gt_caption in every '
                               'data sample')
            refs = [refs] if isinstance(refs, str) else list(refs)
            video_id = sample.get('video_id', sample.get('sample_idx'))
            self.results.append(dict(video_id=str(video_id), pred=str(pred), refs=refs))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('CaptionMetric got no results')
        ids: Dict[str, int] = {}
        predictions, references = {}, {}
        for result in results:
            if result['video_id'] in ids:
                continue
            index = ids[result['video_id']] = len(ids)
            predictions[index] = result['pred']
            references[index] = result['refs']
        scores = coco_caption_scores(predictions, references, self.use_spice, self.scorers)
        return {name: 100.0 * value for name, value in scores.items()}
