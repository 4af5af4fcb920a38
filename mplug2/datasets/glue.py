"""GLUE (Wang et al., 2019): sentence and sentence-pair classification, read from the files
people have, never downloaded.

Accepted files (by extension):

* ``.tsv``: the GLUE distribution (``download_glue_data.py``: ``glue_data/SST-2/train.tsv``
  ...). The columns are found by name in the header (the table below), except for CoLA's
  ``train.tsv`` / ``dev.tsv``, which have no header (``source, label, original_label,
  sentence``). Fields are split at tabs only (no quoting: GLUE's sentences contain quote
  characters). Test files have no label column.
* ``.jsonl`` / ``.json``: one record per sentence (pair), with the TSV column names or those
  of the Hugging Face ``glue`` exports (``sentence``, ``premise``/``hypothesis``,
  ``question1``/``question2`` ..., ``label``, ``idx``).
* ``.parquet``: a Hugging Face ``glue`` export (``glue/sst2/train-00000-of-00001.parquet``);
  its test splits carry ``label = -1``.

=========  ==========================  ======================  ============================
task       text_a / text_b (TSV)       label (TSV)             classes (index: TSV label)
=========  ==========================  ======================  ============================
CoLA       sentence                    label (no header)       0 unacceptable, 1 acceptable
SST-2      sentence                    label                   0 negative, 1 positive
MRPC       #1 String / #2 String       Quality                 0 not_equivalent, 1 equivalent
STS-B      sentence1 / sentence2       score                   regression, 0-5
QQP        question1 / question2       is_duplicate            0 not_duplicate, 1 duplicate
MNLI(-mm)  sentence1 / sentence2       gold_label              entailment, neutral, contradiction
QNLI       question / sentence         label                   entailment, not_entailment
RTE        sentence1 / sentence2       label                   entailment, not_entailment
WNLI       sentence1 / sentence2       label                   0 not_entailment, 1 entailment
AX         sentence1 / sentence2       (test only)             as MNLI
=========  ==========================  ======================  ============================

The class indices are those of the Hugging Face exports, so their integer labels are read as
they are. Bad input (a row with the wrong number of columns, an empty sentence, a label that
is not one of the task's, a repeated id) is an :class:`AnnotationError` naming the file and
line (``file.tsv:LINE``, 1-based; ``file.parquet[ROW]``, 0-based); ``bad_rows='skip'`` skips
such rows instead, counts them and reports them in one warning (``skipped_rows``).
"""
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mplug2.registry import DATASETS
from .annotation_io import _read_text, iter_records
from .errors import AnnotationError

__all__ = ['GlueDataset', 'GlueTask', 'GLUE_TASKS', 'get_glue_task', 'read_glue_file']


@dataclass(frozen=True)
class GlueTask:
    """Columns, labels and submission file of one GLUE task.

    ``text_a`` / ``text_b`` / ``label`` / ``ids``: accepted column (field) names, the first
    present wins; ``text_b=()`` for single-sentence tasks. ``labels``: the label strings of
    the TSV files and of the submission, in class-index order (None: regression).
    ``classes``: readable class names. ``headerless``: the columns of files without a header
    (CoLA). ``metrics``: what :class:`~mplug2.evaluation.GlueMetric` reports.
    """
    name: str
    text_a: Tuple[str, ...]
    text_b: Tuple[str, ...]
    label: Tuple[str, ...]
    labels: Optional[Tuple[str, ...]]
    classes: Tuple[str, ...]
    submission: str
    metrics: Tuple[str, ...]
    ids: Tuple[str, ...] = ('index', 'idx', 'id')
    headerless: Optional[Tuple[str, ...]] = None

    @property
    def is_pair(self) -> bool:
        return bool(self.text_b)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_classes(self) -> int:
        """Outputs of the classifier: the number of classes, 1 for regression."""
        return 1 if self.labels is None else len(self.labels)


_NLI3 = ('entailment', 'neutral', 'contradiction')
_NLI2 = ('entailment', 'not_entailment')
_PAIR = (('sentence1', 'premise'), ('sentence2', 'hypothesis'))


def _task(name, text_a, text_b, label, labels, classes, submission, metrics, **kwargs):
    return GlueTask(name, tuple(text_a), tuple(text_b), tuple(label), labels, tuple(classes),
                    submission, tuple(metrics), **kwargs)


#: The GLUE tasks by name (see the module docstring).
GLUE_TASKS: Dict[str, GlueTask] = {task.name: task for task in (
    _task('CoLA', ['sentence'], [], ['label'], ('0', '1'), ('unacceptable', 'acceptable'),
          'CoLA.tsv', ['matthews'],
          headerless=('source', 'label', 'original_label', 'sentence')),
    _task('SST-2', ['sentence'], [], ['label'], ('0', '1'), ('negative', 'positive'),
          'SST-2.tsv', ['accuracy']),
    _task('MRPC', ['#1 String', 'sentence1'], ['#2 String', 'sentence2'], ['Quality', 'label'],
          ('0', '1'), ('not_equivalent', 'equivalent'), 'MRPC.tsv', ['f1', 'accuracy']),
    _task('STS-B', *_PAIR, ['score', 'label'], None, ('similarity', ), 'STS-B.tsv',
          ['pearson', 'spearman']),
    _task('QQP', ['question1'], ['question2'], ['is_duplicate', 'label'], ('0', '1'),
          ('not_duplicate', 'duplicate'), 'QQP.tsv', ['f1', 'accuracy']),
    _task('MNLI', *_PAIR, ['gold_label', 'label'], _NLI3, _NLI3, 'MNLI-m.tsv', ['accuracy']),
    _task('MNLI-mm', *_PAIR, ['gold_label', 'label'], _NLI3, _NLI3, 'MNLI-mm.tsv', ['accuracy']),
    _task('AX', *_PAIR, ['gold_label', 'label'], _NLI3, _NLI3, 'AX.tsv', ['matthews']),
    _task('QNLI', ['question'], ['sentence'], ['label'], _NLI2, _NLI2, 'QNLI.tsv', ['accuracy']),
    _task('RTE', *_PAIR, ['label'], _NLI2, _NLI2, 'RTE.tsv', ['accuracy']),
    _task('WNLI', *_PAIR, ['label'], ('0', '1'), ('not_entailment', 'entailment'), 'WNLI.tsv',
          ['accuracy']),
)}

#: Other spellings of the task names (case-insensitive): the Hugging Face config names.
_ALIASES = {'sst2': 'SST-2', 'stsb': 'STS-B', 'mnli-m': 'MNLI', 'mnli_matched': 'MNLI',
            'mnli_mismatched': 'MNLI-mm', 'mnli-mismatched': 'MNLI-mm', 'mnli-matched': 'MNLI',
            'ax': 'AX', 'diagnostic': 'AX'}


def get_glue_task(task: Union[str, GlueTask]) -> GlueTask:
    """The :class:`GlueTask` of a name (``'SST-2'``, ``'sst2'``, ``'MNLI-mm'`` ...)."""
    if isinstance(task, GlueTask):
        return task
    by_lower = {name.lower(): name for name in GLUE_TASKS}
    name = _ALIASES.get(str(task).lower(), by_lower.get(str(task).lower()))
    if name is None:
        raise KeyError(f'unknown GLUE task {task!r}; tasks: {", ".join(GLUE_TASKS)}')
    return GLUE_TASKS[name]


# ----------------------------------------------------------------------------- reading
Row = Tuple[str, dict]  # (where, fields)


def _read_tsv(path: str, task: GlueTask) -> Tuple[List[str], List[Row], List[Tuple[str, str]]]:
    """``(columns, rows, bad)`` of a GLUE TSV file: the rows as ``('path:LINE', {column:
    value})``; ``bad``: ``(where, reason)`` of the rows with the wrong number of columns."""
    text = _read_text(path)
    lines = [line[:-1] if line.endswith('\r') else line for line in text.split('\n')]
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise AnnotationError(f'{path}:1', 'no rows: the file is empty' if not text else
                              'no rows: the file holds only blank lines')
    first_number, first = numbered[0]
    header = first.split('\t')
    known = set(task.text_a) | set(task.text_b) | set(task.label) | set(task.ids)
    if known & set(header):
        columns, data = header, numbered[1:]
    elif task.headerless is not None:
        columns, data = list(task.headerless), numbered
    else:
        raise AnnotationError(f'{path}:{first_number}', f'expected a header naming the columns of '
                              f'{task.name} (e.g. {", ".join(task.text_a + task.text_b)}), got '
                              f'{header[:6]}')
    rows, bad = [], []
    for number, line in data:
        fields = line.split('\t')
        where = f'{path}:{number}'
        if len(fields) != len(columns):
            bad.append((where, f'{len(fields)} tab-separated columns, expected {len(columns)} '
                        f'({", ".join(columns)})'))
            continue
        rows.append((where, dict(zip(columns, fields))))
    return columns, rows, bad


def _read_parquet(path: str) -> Tuple[List[str], List[Row]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - pyarrow is a runtime requirement
        raise ImportError(f'reading {path} needs pyarrow (pip install pyarrow)') from err
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001  pyarrow raises several types for bad files
        raise AnnotationError(path, f'not a readable parquet file ({err})') from None
    records = table.to_pylist()
    if not records:
        raise AnnotationError(path, 'no rows: the parquet table is empty')
    return list(table.column_names), [(f'{path}[{i}]', r) for i, r in enumerate(records)]


def read_glue_file(path: str, task: Union[str, GlueTask]) -> Tuple[List[str], List[Row], list]:
    """``(columns, rows, bad)`` of a ``.tsv``, ``.jsonl``/``.json`` or ``.parquet`` file:
    the rows as ``(where, record)``, ``bad`` the ``(where, reason)`` of malformed TSV rows."""
    task = get_glue_task(task)
    path = str(path)
    if path.endswith('.tsv'):
        return _read_tsv(path, task)
    if path.endswith('.parquet'):
        columns, rows = _read_parquet(path)
        return columns, rows, []
    if path.endswith(('.jsonl', '.json')):
        rows = list(iter_records(path))
        columns = list(dict.fromkeys(key for _, record in rows for key in record))
        return columns, rows, []
    raise ValueError(f'{path}: unknown GLUE file type; expected .tsv (the GLUE distribution), '
                     '.jsonl / .json or .parquet')


def _first(names: Sequence[str], columns: Sequence[str]) -> Optional[str]:
    return next((name for name in names if name in columns), None)


# ----------------------------------------------------------------------------- dataset
@DATASETS.register_module()
class GlueDataset(BaseDataset):
    """One split of a GLUE task (or the synthetic demo data, which uses the RTE format).

    Per sample: ``text_a``, ``text_b`` (pair tasks), ``gt_label`` (the class index, or the
    float score for STS-B; absent in unlabelled test splits), ``index`` (the row id of the
    file: its ``index`` / ``id`` / ``idx`` column, else the 0-based row number; the GLUE
    submission's first column) and ``task``. The texts are kept as written, stripped of
    surrounding spaces; lower-casing and WordPiece are the tokenizer's (BERT uncased).

    ``metainfo``: ``task``, ``classes`` (readable names), ``labels`` (the TSV / submission
    label strings, None for regression), ``submission_file`` (e.g. ``'SST-2.tsv'``),
    ``metrics``, ``is_pair``, ``num_classes``, ``labelled`` (whether the split has labels).

    Args:
        task: ``'CoLA'``, ``'SST-2'``, ``'MRPC'``, ``'STS-B'``, ``'QQP'``, ``'MNLI'``
            (matched), ``'MNLI-mm'`` (mismatched), ``'QNLI'``, ``'RTE'``, ``'WNLI'``,
            ``'AX'``; the Hugging Face names (``'sst2'``, ``'stsb'`` ...) are accepted.
        ann_file: a file or a list of files (concatenated); relative paths are joined to
            ``data_root``.
        bad_rows: ``'raise'`` (default): a malformed row is an :class:`AnnotationError`
            naming its file and line; ``'skip'``: such rows are left out, counted and
            reported in one warning (their locations and reasons: ``skipped_rows``).
        test_mode: evaluation split: unlabelled files are allowed (GLUE test sets); a
            training split (``test_mode=False``) must be labelled.
        **kwargs: see :class:`mmengine.dataset.BaseDataset` (``data_root``, ``pipeline``,
            ``metainfo``, ``indices`` ...).
    """

    def __init__(self,
                 task: Union[str, GlueTask],
                 ann_file: Union[str, Sequence[str]],
                 bad_rows: str = 'raise',
                 test_mode: bool = False,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if bad_rows not in ('raise', 'skip'):
            raise ValueError(f"bad_rows must be 'raise' or 'skip', got {bad_rows!r}")
        if not ann_file:
            raise ValueError('ann_file is required')
        self.task = get_glue_task(task)
        self.bad_rows = bad_rows
        self.ann_files: List[str] = [ann_file] if isinstance(ann_file, str) else list(ann_file)
        #: ``(where, reason)`` of the rows left out with ``bad_rows='skip'``.
        self.skipped_rows: List[Tuple[str, str]] = []
        # (mmengine's BaseDataset takes every str in ``metainfo`` for a file to read and warns:
        # the task's strings are set after its __init__, unless the caller overrides them)
        strings = dict(task=self.task.name, submission_file=self.task.submission)
        task_meta = dict(classes=self.task.classes, labels=self.task.labels,
                         metrics=self.task.metrics, is_pair=self.task.is_pair,
                         num_classes=self.task.num_classes)
        task_meta.update(metainfo or {})
        super().__init__(ann_file=self.ann_files[0], metainfo=task_meta, test_mode=test_mode,
                         **kwargs)
        for key, value in strings.items():
            self._metainfo.setdefault(key, value)

    def _join_prefix(self):
        super()._join_prefix()
        if self.data_root:
            self.ann_files = [f if osp.isabs(f) else osp.join(self.data_root, f)
                              for f in self.ann_files]
        self.ann_file = self.ann_files[0]

    # ------------------------------------------------------------------ parsing
    def load_data_list(self) -> List[dict]:
        data_list, bad, labelled, unlabelled = [], [], [], []
        first_of_id: Dict[str, str] = {}
        for path in self.ann_files:
            columns, rows, malformed = read_glue_file(path, self.task)
            bad.extend(malformed)
            names = self._columns(path, columns)
            for position, (where, record) in enumerate(rows):
                try:
                    info = self._parse(record, where, names, position)
                    key = f'{path}\0{info["index"]}'
                    if key in first_of_id:
                        raise AnnotationError(where, f'repeated id {info["index"]!r} (column '
                                              f'{names["id"]!r}), first at {first_of_id[key]}')
                except AnnotationError as err:
                    bad.append((err.where, err.reason))
                    continue
                first_of_id[key] = where
                (labelled if 'gt_label' in info else unlabelled).append(where)
                data_list.append(info)
        if bad:
            self._bad(bad)
        if labelled and unlabelled:
            raise AnnotationError(unlabelled[0], f'no label, but {len(labelled)} other rows have '
                                  f'one (first at {labelled[0]}): a split is labelled or not')
        if not data_list:
            raise AnnotationError(self.ann_files[0], 'no usable rows')
        if unlabelled and not self.test_mode:
            raise AnnotationError(unlabelled[0], f'{self.task.name}: no labels (a test split?); '
                                  'training needs a labelled split')
        self._metainfo['labelled'] = bool(labelled)
        return data_list

    def _columns(self, path: str, columns: Sequence[str]) -> dict:
        task = self.task
        names = dict(text_a=_first(task.text_a, columns), label=_first(task.label, columns),
                     id=_first(task.ids, columns))
        if task.is_pair:
            names['text_b'] = _first(task.text_b, columns)
        for key, options in (('text_a', task.text_a), ('text_b', task.text_b)):
            if key in names and names[key] is None:
                raise AnnotationError(path, f'no {key} column for {task.name}: expected one of '
                                      f'{list(options)}, the file has {list(columns)[:12]}')
        if task.headerless is not None and list(columns) == list(task.headerless):
            names['id'] = None  # CoLA train / dev: the row number is the id
        return names

    def _parse(self, record: dict, where: str, names: dict, position: int) -> dict:
        info = dict(task=self.task.name)
        for key in ('text_a', 'text_b'):
            if key not in names:
                continue
            value = record.get(names[key])
            if not isinstance(value, str) or not value.strip():
                raise AnnotationError(where, f'empty or missing text in column {names[key]!r} '
                                      f'({value!r})')
            info[key] = value.strip()
        info['index'] = self._id(record, names['id'], where, position)
        label = self._label(record.get(names['label']) if names['label'] else None,
                            names['label'], where)
        if label is not None:
            info['gt_label'] = label
        return info

    @staticmethod
    def _id(record: dict, column: Optional[str], where: str, position: int):
        if column is None:
            return position
        value = record.get(column)
        if isinstance(value, str):
            value = value.strip()
            if value.lstrip('-').isdigit():
                return int(value)
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == '':
            raise AnnotationError(where, f'bad id in column {column!r}: {value!r}')
        return value

    def _label(self, value, column: Optional[str], where: str):
        """The class index (float score for regression), or None for an unlabelled row
        (no label column, a null, or -1 as in the Hugging Face test splits)."""
        if value is None or (not isinstance(value, bool) and isinstance(value, (int, float))
                             and value == -1):
            return None
        task = self.task
        if task.is_regression:
            try:
                score = float(value)
            except (TypeError, ValueError):
                raise AnnotationError(where, f'{task.name} score in column {column!r} must be a '
                                      f'number, got {value!r}') from None
            if isinstance(value, bool) or not 0.0 <= score <= 5.0:
                raise AnnotationError(where, f'{task.name} score in column {column!r} must be '
                                      f'in [0, 5], got {value!r}')
            return score
        if isinstance(value, str):
            text = value.strip()
            if text in task.labels:
                return task.labels.index(text)
            if text in task.classes:
                return task.classes.index(text)
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(task.labels):
            return value
        raise AnnotationError(where, f'label {value!r} in column {column!r} is not one of the '
                              f'{task.name} labels {list(task.labels)}')

    def _bad(self, bad: List[Tuple[str, str]]) -> None:
        if self.bad_rows == 'raise':
            where, reason = bad[0]
            more = f' ({len(bad) - 1} more bad rows; bad_rows="skip" leaves them out)' \
                if len(bad) > 1 else ''
            raise AnnotationError(where, reason + more)
        self.skipped_rows = list(bad)
        shown = '; '.join(f'{where}: {reason}' for where, reason in bad[:5])
        more = f'; ... ({len(bad) - 5} more)' if len(bad) > 5 else ''
        print_log(f'GlueDataset({self.task.name}): skipped {len(bad)} bad row(s) '
                  f'(bad_rows="skip"): {shown}{more}', logger='current', level=30)
