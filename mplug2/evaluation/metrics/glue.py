"""GLUE metrics (scikit-learn / scipy) and the GLUE server's submission files.

Per task (GLUE's own choice): accuracy (SST-2, MNLI-m/mm, QNLI, RTE, WNLI); F1 and accuracy
(MRPC, QQP; F1 of the positive class 1); Matthews correlation (CoLA); Pearson and Spearman
correlations (STS-B). All in percent; ``score`` is their mean, the task's GLUE score.

An unlabelled split (the GLUE test sets) has nothing to score: the metric writes the
predictions in the submission format instead, ``index<TAB>prediction`` with the label names
(``entailment`` ..., ``0`` / ``1``, STS-B scores clipped to [0, 5]), one file per task named
as the server expects (``SST-2.tsv``, ``MNLI-m.tsv``, ``MNLI-mm.tsv``, ``AX.tsv`` ...). So
``tools/test.py CONFIG CKPT`` on a test split writes the file, without any special case in
the tool.
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from mplug2.datasets.glue import GlueTask, get_glue_task
from mplug2.registry import METRICS

__all__ = ['GlueMetric', 'glue_scores', 'write_glue_submission', 'GLUE_METRICS']

#: The metric names :func:`glue_scores` knows.
GLUE_METRICS = ('accuracy', 'f1', 'matthews', 'pearson', 'spearman')


def glue_scores(predictions: Sequence, labels: Sequence, metrics: Sequence[str]) -> Dict[str, float]:
    """The ``metrics`` (see :data:`GLUE_METRICS`) of ``predictions`` against ``labels`` in
    percent, and ``score``, their mean. Classes for accuracy / F1 / Matthews, real numbers
    for Pearson / Spearman."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    unknown = [name for name in metrics if name not in GLUE_METRICS]
    if unknown:
        raise ValueError(f'unknown GLUE metrics {unknown}; known: {list(GLUE_METRICS)}')
    if len(predictions) != len(labels) or not len(labels):
        raise ValueError(f'{len(predictions)} predictions for {len(labels)} labels')
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    functions = {
        'accuracy': lambda: accuracy_score(labels, predictions),
        'f1': lambda: f1_score(labels, predictions, pos_label=1, average='binary', zero_division=0),
        'matthews': lambda: matthews_corrcoef(labels, predictions),
        'pearson': lambda: pearsonr(predictions.astype(float), labels.astype(float))[0],
        'spearman': lambda: spearmanr(predictions.astype(float), labels.astype(float))[0],
    }
    results = {name: 100.0 * float(functions[name]()) for name in metrics}
    results['score'] = float(np.mean([results[name] for name in metrics]))
    return results


def _format_prediction(task: GlueTask, prediction) -> str:
    if task.is_regression:
        return f'{min(max(float(prediction), 0.0), 5.0):.3f}'
    return task.labels[int(prediction)]


def write_glue_submission(path: str, task: Union[str, GlueTask], indices: Sequence,
                          predictions: Sequence) -> str:
    """Write ``index<TAB>prediction`` rows (with a header) for the GLUE server to ``path``."""
    task = get_glue_task(task)
    if len(indices) != len(predictions):
        raise ValueError(f'{len(indices)} indices for {len(predictions)} predictions')
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write('index\tprediction\n')
        for index, prediction in zip(indices, predictions):
            f.write(f'{index}\t{_format_prediction(task, prediction)}\n')
    return path


def _run_directory() -> str:
    """The directory of the current run's log file (``WORK_DIR/TIMESTAMP``), else ``'.'``."""
    for handler in MMLogger.get_current_instance().handlers:
        if isinstance(handler, logging.FileHandler):
            return osp.dirname(handler.baseFilename)
    return '.'


@METRICS.register_module()
class GlueMetric(BaseMetric):
    """The GLUE metrics of one task; the submission file for an unlabelled split.

    Reads ``pred_label`` (class index, or the score for STS-B), ``gt_label`` (absent in
    test splits), ``index`` and ``sample_idx`` from the samples (``GlueDataset`` and
    ``MPLUG2TextClassifier`` write them). Labelled splits: ``accuracy`` / ``f1`` /
    ``matthews`` / ``pearson`` / ``spearman`` as the task asks, and ``score`` (their mean),
    in percent. Unlabelled splits: the submission file (no scores).

    Args:
        task: the GLUE task (``'SST-2'``, ``'MNLI-mm'`` ...); None: the dataset's
            (``dataset_meta['task']``, set by :class:`~mplug2.datasets.GlueDataset`).
        metrics: override the task's metrics (names of :data:`GLUE_METRICS`).
        submission_dir: where to write the submission file; None: the directory of the
            run's log file (``WORK_DIR/TIMESTAMP/``), or the current directory without one.
        write_submission: ``'auto'`` (default): write the file for unlabelled splits only;
            True: for labelled splits too (e.g. to inspect dev predictions); False: never.
        collect_device, prefix: see :class:`mmengine.evaluator.BaseMetric`.
    """
    default_prefix = 'glue'

    def __init__(self,
                 task: Optional[str] = None,
                 metrics: Optional[Sequence[str]] = None,
                 submission_dir: Optional[str] = None,
                 write_submission: Union[str, bool] = 'auto',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if write_submission not in ('auto', True, False):
            raise ValueError(f"write_submission must be 'auto', True or False, got {write_submission!r}")
        self.task = None if task is None else get_glue_task(task).name
        self.metrics = None if metrics is None else tuple(metrics)
        if self.metrics is not None:
            unknown = [name for name in self.metrics if name not in GLUE_METRICS]
            if unknown:
                raise ValueError(f'unknown GLUE metrics {unknown}; known: {list(GLUE_METRICS)}')
        self.submission_dir = submission_dir
        self.write_submission = write_submission
        #: The path of the last submission file written.
        self.last_submission: Optional[str] = None

    def _task(self) -> GlueTask:
        name = self.task or (self.dataset_meta or {}).get('task')
        if name is None:
            raise ValueError('GlueMetric needs a task: GlueMetric(task=...) or a GlueDataset, '
                             "whose metainfo names it (dataset_meta['task'])")
        return get_glue_task(name)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            prediction = sample.get('pred_label')
            if prediction is None:
                raise KeyError('GlueMetric needs pred_label in every data sample; got the keys '
                               f'{sorted(sample.keys())}')
            if hasattr(prediction, 'item'):
                prediction = prediction.item()
            label = sample.get('gt_label')
            if label is not None and hasattr(label, 'item'):
                label = label.item()
            self.results.append(dict(pred=prediction, gt=label, index=sample.get('index'),
                                     sample_idx=sample.get('sample_idx')))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not results:
            raise ValueError('GlueMetric got no results')
        task = self._task()
        if all(r['sample_idx'] is not None for r in results):
            results = sorted(results, key=lambda r: r['sample_idx'])
        labelled = [r['gt'] is not None for r in results]
        if any(labelled) and not all(labelled):
            raise ValueError(f'GlueMetric({task.name}): {labelled.count(False)} of {len(results)} '
                             'samples have no gt_label: a split is labelled or not')
        predictions = [r['pred'] for r in results]
        write = self.write_submission is True or (self.write_submission == 'auto'
                                                  and not labelled[0])
        if write:
            self._write(task, results, predictions)
        if not labelled[0]:
            return {}
        return glue_scores(predictions, [r['gt'] for r in results], self.metrics or task.metrics)

    def _write(self, task: GlueTask, results: List[dict], predictions: list) -> None:
        directory = self.submission_dir if self.submission_dir is not None else _run_directory()
        path = osp.join(directory, task.submission)
        indices = [r['index'] if r['index'] is not None else position
                   for position, r in enumerate(results)]
        if is_main_process():
            write_glue_submission(path, task, indices, predictions)
        self.last_submission = path
        print_log(f'GlueMetric: {len(results)} {task.name} predictions written to {path} '
                  '(GLUE submission format)', logger='current')
