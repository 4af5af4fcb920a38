"""Open-ended VideoQA accuracy, as the official evaluation (exact string match)."""
import re
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mplug2.registry import METRICS

__all__ = ['VideoQAAccuracy', 'normalize_answer']

_SPACES = re.compile(r'\s+')


def normalize_answer(answer: str) -> str:
    """Lower-case, strip, collapse whitespace (only with ``VideoQAAccuracy(normalize=True)``)."""
    return _SPACES.sub(' ', answer.strip().lower())


@METRICS.register_module()
class VideoQAAccuracy(BaseMetric):
    """Exact-match accuracy of ``pred_answer`` against ``gt_answer``, in percent.

    The official evaluation (``video_qa_mplug2.py: cal_metric``) compares the decoded
    prediction with the annotated answer string as is, with no normalisation; so does
    this metric by default. With ``normalize=True`` both sides are lower-cased and their
    whitespace collapsed first. A ``gt_answer`` list counts a prediction equal to any of
    its answers as correct.

    Results: ``acc``, and ``acc_<type>`` for every ``question_type`` when the samples
    carry one (set ``per_type=False`` to turn this off).

    Args:
        normalize: normalise the answers before comparing.
        per_type: report the accuracy per ``question_type`` too.
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix = 'videoqa'

    def __init__(self, normalize: bool = False, per_type: bool = True,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.normalize = normalize
        self.per_type = per_type

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            pred = sample.get('pred_answer')
            gt = sample.get('gt_answer')
            if pred is None or gt is None:
                raise KeyError('VideoQAAccuracy needs pred_answer and gt_answer in every data '
                               f'sample; got the keys {sorted(sample.keys())}')
            self.results.append(dict(pred=pred, gt=[gt] if isinstance(gt, str) else list(gt),
                                     question_type=sample.get('question_type')))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('VideoQAAccuracy got no results')
        norm = normalize_answer if self.normalize else (lambda a: a)
        totals = defaultdict(lambda: [0, 0])  # type -> [correct, count]
        for result in results:
            correct = norm(result['pred']) in {norm(a) for a in result['gt']}
            keys = ['']
            if self.per_type and result['question_type'] is not None:
                keys.append(str(result['question_type']))
            for key in keys:
                totals[key][0] += int(correct)
                totals[key][1] += 1
        metrics = {'acc': 100.0 * totals[''][0] / totals[''][1]}
        for key in sorted(k for k in totals if k):
            metrics[f'acc_{key}'] = 100.0 * totals[key][0] / totals[key][1]
        return metrics
