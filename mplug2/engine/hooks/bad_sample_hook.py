"""Report the samples that datasets replaced because their media could not be loaded."""
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mplug2.registry import HOOKS

__all__ = ['BadSampleReportHook', 'collect_skipped_samples', 'unique_skipped_samples']


def collect_skipped_samples(data_batch) -> List[dict]:
    """The ``skipped_samples`` records (``dict(index, filename, reason)``) of a data batch."""
    if not isinstance(data_batch, dict):
        return []
    samples = data_batch.get('data_samples') or []
    records = []
    for sample in samples:
        skipped = sample.get('skipped_samples', None) if hasattr(sample, 'get') else None
        if skipped:
            records.extend(dict(r) for r in skipped)
    return records


def unique_skipped_samples(records_per_rank: Sequence[Sequence[dict]]) -> List[dict]:
    """The distinct bad samples of the records of all ranks, first occurrence first.

    A bad sample is recorded by every sample whose replacement walk passed over it: a bad
    video with 24 questions is 24 consecutive bad indices, and each of them walks past the
    rest, so it appears 24 + 23 + ... + 1 times; the distributed sampler's padding and
    other ranks may record it again. One bad sample is one dataset index (with its file,
    so that the samples of concatenated datasets stay apart).
    """
    unique: Dict[tuple, dict] = {}
    for rank_records in records_per_rank:
        for record in rank_records:
            key = (record.get('index'), record.get('filename'))
            unique.setdefault(key, record)
    return list(unique.values())


@HOOKS.register_module()
class BadSampleReportHook(Hook):
    """Count and report the bad samples of datasets built with ``on_error='skip'``.

    The data samples carry ``skipped_samples`` (a training replacement lists the bad
    samples it walked past, an evaluation placeholder lists itself first); this hook reads
    them from every data batch (train, val and test), gathers them from all ranks at the
    end of each epoch, counts each bad sample (dataset index) once per epoch and mode
    (:func:`unique_skipped_samples`), and then

    * logs a warning with the count and the file names (at most ``max_files_in_log``,
      most frequent first; a video with several questions is one file counted once per
      question) when there were any. The epoch is numbered as in mmengine's log
      (``Epoch(train) [1]`` is "train epoch 1", ``Epoch(val) [1]`` is "val epoch 1");
    * stores ``bad_samples/<mode>_epoch`` (count of this epoch), ``bad_samples/<mode>_total``
      (sum of the epochs' counts since the start of the run) and ``bad_samples/<mode>_files``
      (``{filename: count}`` of this epoch) in ``runner.message_hub`` runtime info;
    * for val / test, also records the scalar ``<mode>/bad_samples`` so that it appears
      in the epoch's log line (this hook runs before ``LoggerHook``).

    Args:
        max_files_in_log: how many file names the warning lists.
    """
    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL)

    def __init__(self, max_files_in_log: int = 20) -> None:
        self.max_files_in_log = max_files_in_log
        self._records: Dict[str, List[dict]] = {'train': [], 'val': [], 'test': []}
        self._totals: Dict[str, int] = {'train': 0, 'val': 0, 'test': 0}

    # ----------------------------------------------------------------- collection
    def before_train_epoch(self, runner) -> None:
        self._records['train'] = []

    def before_val_epoch(self, runner) -> None:
        self._records['val'] = []

    def before_test_epoch(self, runner) -> None:
        self._records['test'] = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._records['train'].extend(collect_skipped_samples(data_batch))

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._records['val'].extend(collect_skipped_samples(data_batch))

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._records['test'].extend(collect_skipped_samples(data_batch))

    # ----------------------------------------------------------------- reporting
    def after_train_epoch(self, runner) -> None:
        self._report(runner, 'train')

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._report(runner, 'val')

    def after_test_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self._report(runner, 'test')

    @staticmethod
    def _epoch(runner, mode: str) -> Optional[int]:
        """The epoch as mmengine's log numbers it (``LogProcessor._get_epoch``), or None.

        ``runner.epoch`` is 0-based during a training epoch (the loop increments it after
        ``after_train_epoch``): train epoch ``runner.epoch + 1``. A validation during
        training runs after the increment: val epoch ``runner.epoch``. None for test, a
        validation without training and an iteration-based training (``Iter(train)``).
        """
        epoch = getattr(runner, 'epoch', None)
        train_loop = getattr(runner, '_train_loop', None)
        if epoch is None or mode == 'test' or isinstance(train_loop, IterBasedTrainLoop):
            return None
        if mode == 'train':
            return epoch + 1
        return None if train_loop is None or isinstance(train_loop, dict) else epoch

    def _report(self, runner, mode: str) -> int:
        """Gather this epoch's records from all ranks, log and store them; returns the count
        of distinct bad samples."""
        gathered = all_gather_object(self._records[mode])  # [local] when not distributed
        records = unique_skipped_samples(gathered)
        self._records[mode] = []
        count = len(records)
        self._totals[mode] += count
        files = Counter(r.get('filename', '<unknown>') for r in records)

        hub = runner.message_hub
        hub.update_info(f'bad_samples/{mode}_epoch', count)
        hub.update_info(f'bad_samples/{mode}_total', self._totals[mode])
        hub.update_info(f'bad_samples/{mode}_files', dict(files))
        if mode != 'train':
            hub.update_scalar(f'{mode}/bad_samples', count)

        if count and is_main_process():
            reasons = {}
            for record in records:
                reasons.setdefault(record.get('filename', '<unknown>'), record.get('reason', ''))
            shown = files.most_common(self.max_files_in_log)
            listing = '\n'.join(f'  {name} (x{n}): {reasons[name]}' for name, n in shown)
            more = len(files) - len(shown)
            epoch = self._epoch(runner, mode)
            where = mode if epoch is None else f'{mode} epoch {epoch}'
            runner.logger.warning(
                f'BadSampleReportHook: {count} bad sample(s) skipped during {where} '
                f'({len(files)} distinct file(s); {self._totals[mode]} in {mode} since the '
                f'start):\n{listing}' + (f'\n  ... and {more} more file(s)' if more > 0 else ''))
        return count
