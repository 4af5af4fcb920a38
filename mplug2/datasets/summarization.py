"""Abstractive summarization pairs (Gigaword headline generation): source text -> summary."""
import os.path as osp
import re
from typing import Iterator, List, Optional, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mplug2.registry import DATASETS
from .annotation_io import iter_records
from .errors import AnnotationError

__all__ = ['SummarizationDataset', 'read_aligned_text', 'SOURCE_KEYS', 'SUMMARY_KEYS']

#: Record fields holding the source text, in order of preference (HF ``gigaword``: document).
SOURCE_KEYS = ('document', 'source', 'src', 'article', 'text')
#: Record fields holding the summary: a string, or a list of references at test.
SUMMARY_KEYS = ('summary', 'target', 'tgt', 'title', 'headline')
#: ``X<src>`` -> ``X<tgt>``: how the summary file of a plain-text source file is named.
_PAIRED_SUFFIXES = (('.src.txt', '.tgt.txt'), ('.source', '.target'), ('.src', '.tgt'),
                    ('.article.txt', '.title.txt'))
#: Gigaword's rare-word markers, as whole words.
_UNK_WORDS = re.compile(r'(?<!\S)(?:UNK|<unk>)(?!\S)')

# (where of the source, source, where of the summary, summary (str or list), record id or None)
Pair = Tuple[str, str, str, Union[str, List[str]], Optional[str]]


def read_aligned_text(path: str) -> Iterator[Tuple[int, str]]:
    """``(line number, text)`` of every line of a plain-text file (1-based; ``\\r\\n`` and a
    leading byte-order mark removed; a final newline does not start a line).

    Read line by line (the Gigaword training files hold 3.8 million lines). Bytes that are not
    UTF-8 raise :class:`AnnotationError` at ``'path:LINE'``; an empty file (0 bytes) too.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    empty = True
    with open(path, 'rb') as f:
        for lineno, raw in enumerate(f, start=1):
            empty = False
            try:
                line = raw.decode('utf-8')
            except UnicodeDecodeError as err:
                raise AnnotationError(
                    f'{path}:{lineno}', f'not valid UTF-8: byte 0x{raw[err.start:err.end].hex()} '
                    f'at byte {err.start} of the line ({err.reason}); text files must be UTF-8 '
                    'encoded') from None
            if lineno == 1 and line.startswith('\ufeff'):
                line = line[1:]
            yield lineno, line.rstrip('\n').rstrip('\r')
    if empty:
        raise AnnotationError(f'{path}:1', 'no lines: the file is empty (0 bytes)')


def _parquet_records(path: str) -> Iterator[Tuple[str, dict]]:
    """``('path[ROW]', record)`` of every row of a parquet file (0-based rows)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - pyarrow is a runtime requirement
        raise ImportError(f'reading {path} needs pyarrow (pip install pyarrow)') from err
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    table = pq.read_table(path)
    if table.num_rows == 0:
        raise AnnotationError(path, f'no records: the parquet table is empty (columns '
                              f'{table.column_names})')
    for index, record in enumerate(table.to_pylist()):
        yield f'{path}[{index}]', record


@DATASETS.register_module()
class SummarizationDataset(BaseDataset):
    """Source -> summary pairs from the files people have (Gigaword and alike).

    Accepted ``ann_file`` formats:

    * **line-aligned plain text** (Rush et al. 2015 / UniLM / fairseq layouts): ``ann_file`` is
      the source file, one text per line; the summary file has the same number of lines. It is
      ``tgt_file`` or, by default, the source name with its suffix swapped: ``train.src.txt`` ->
      ``train.tgt.txt``, ``train.source`` -> ``train.target``, ``train.src`` -> ``train.tgt``,
      ``train.article.txt`` -> ``train.title.txt``.
    * **jsonl / json** records and **parquet** tables (e.g. the Hugging Face ``gigaword``
      export) with a source field (``document``, ``source``, ``src``, ``article`` or ``text``)
      and a summary field (``summary``, ``target``, ``tgt``, ``title`` or ``headline``; a list
      of references is accepted, e.g. DUC-2004's four). An ``id`` field is kept.

    Samples: ``source`` and ``gt_summary`` (training: one sample per reference, a string;
    test: the string, or the list of references), ``where`` (``'file:LINE'`` of the summary,
    ``'file[INDEX]'`` for json lists and parquet rows) and ``summary_id`` (the record's ``id``,
    or ``where``). ``PackTextInputs(data_keys=('source', 'gt_summary'), meta_keys=('sample_idx',
    'summary_id', 'where'))`` packs them.

    Gigaword writes rare words as ``UNK`` (the Rush et al. files; ``<unk>`` in some copies).
    With ``unk_as='[UNK]'`` (default) those whole words become BERT's ``[UNK]`` token in the
    source and the summary, so the model reads and writes one unknown-word token instead of
    the word pieces of "unk"; ``RougeMetric`` scores ``[UNK]`` as ``UNK`` (see
    ``mplug2/evaluation/metrics/rouge.py``). ``unk_as=None`` keeps the text as written.

    Untrusted input: a missing field, a source file and a summary file of different lengths,
    and bytes that are not UTF-8 are :class:`AnnotationError` naming the file and the line. An
    empty (or whitespace-only) summary or source is one too, unless ``on_empty='skip'``: then
    the pair is dropped, counted (``num_skipped_empty``, ``skipped_empty``: their locations)
    and reported in one warning. The usual Gigaword test set has 1,951 pairs (the release of
    Rush et al.'s held-out pairs that UniLM and the Hugging Face ``gigaword`` distribute); a
    copy of the held-out pairs that still holds empty titles is read with ``on_empty='skip'``,
    which drops those pairs and says how many.

    Args:
        ann_file: the source text file, or a jsonl / json / parquet file (relative paths are
            joined to ``data_root``).
        tgt_file: the summary file of a plain-text ``ann_file`` (default: derived, see above).
        on_empty: ``'raise'`` or ``'skip'`` (see above).
        unk_as: what Gigaword's ``UNK`` / ``<unk>`` words become (None: unchanged).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``data_root``,
            ``pipeline``, ``test_mode``, ``indices``, ``serialize_data``, ``lazy_init``).
    """

    def __init__(self,
                 ann_file: str,
                 tgt_file: Optional[str] = None,
                 on_empty: str = 'raise',
                 unk_as: Optional[str] = '[UNK]',
                 **kwargs) -> None:
        if on_empty not in ('raise', 'skip'):
            raise ValueError(f"on_empty must be 'raise' or 'skip', got {on_empty!r}")
        if not ann_file:
            raise ValueError('ann_file is required')
        self.tgt_file = tgt_file
        self.on_empty = on_empty
        self.unk_as = unk_as
        #: Locations (``'file:LINE'``) of the pairs dropped for an empty text (``on_empty='skip'``).
        self.skipped_empty: List[str] = []
        super().__init__(ann_file=ann_file, **kwargs)

    @property
    def num_skipped_empty(self) -> int:
        """How many pairs were dropped for an empty source or summary."""
        return len(self.skipped_empty)

    # ------------------------------------------------------------------ reading
    def _summary_file(self) -> str:
        if self.tgt_file:
            path = self.tgt_file
            if self.data_root and not osp.isabs(path):
                path = osp.join(self.data_root, path)
            return path
        for src_suffix, tgt_suffix in _PAIRED_SUFFIXES:
            if self.ann_file.endswith(src_suffix):
                return self.ann_file[:-len(src_suffix)] + tgt_suffix
        raise ValueError(
            f'SummarizationDataset: {self.ann_file} is a plain-text source file whose summary '
            f'file cannot be derived from its name (known pairs: '
            f'{", ".join(f"*{s} -> *{t}" for s, t in _PAIRED_SUFFIXES)}); pass tgt_file=')

    def _text_pairs(self) -> Iterator[Pair]:
        """Pairs of a line-aligned source file and summary file."""
        src_path, tgt_path = self.ann_file, self._summary_file()
        sources, summaries = read_aligned_text(src_path), read_aligned_text(tgt_path)
        while True:
            source, summary = next(sources, None), next(summaries, None)
            if source is None and summary is None:
                return
            if source is None or summary is None:
                longer, shorter = (tgt_path, src_path) if source is None else (src_path, tgt_path)
                lineno, text = source or summary
                # count the rest of the longer file for the message
                total = lineno + sum(1 for _ in (summaries if source is None else sources))
                raise AnnotationError(
                    f'{shorter}:{lineno}',
                    f'the file ends at line {lineno - 1} but {longer} has {total} lines '
                    f'(its line {lineno}: {text[:80]!r}): source and summary files must be '
                    'line-aligned, one pair per line')
            yield (f'{src_path}:{source[0]}', source[1], f'{tgt_path}:{summary[0]}', summary[1],
                   None)

    def _record_pairs(self) -> Iterator[Pair]:
        """Pairs of a jsonl / json / parquet file."""
        path = self.ann_file
        records = (_parquet_records(path) if path.endswith('.parquet') else
                   iter_records(path, list_key=('data', 'annotations')))
        for where, record in records:
            fields = {}
            for role, names in (('source', SOURCE_KEYS), ('summary', SUMMARY_KEYS)):
                name = next((n for n in names if record.get(n) is not None), None)
                if name is None:
                    wanted = ' or '.join(repr(n) for n in names)
                    raise AnnotationError(where, f'missing {role} field {wanted} '
                                          f'(present: {sorted(record)})')
                fields[role] = (name, record[name])
            (_, source), (summary_name, summary) = fields['source'], fields['summary']
            if not isinstance(source, str):
                raise AnnotationError(where, f'field {fields["source"][0]!r} must be a string, '
                                      f'got {type(source).__name__}')
            if isinstance(summary, list):
                if not summary or not all(isinstance(s, str) for s in summary):
                    raise AnnotationError(where, f'field {summary_name!r} must be a string or a '
                                          f'non-empty list of strings, got {summary!r}')
            elif not isinstance(summary, str):
                raise AnnotationError(where, f'field {summary_name!r} must be a string, got '
                                      f'{type(summary).__name__}')
            yield where, source, where, summary, record.get('id')

    def _is_empty(self, text: str, what: str, where: str) -> bool:
        """True (and the pair counted) when ``text`` is empty and ``on_empty='skip'``; an
        error when it is empty otherwise."""
        if text.strip():
            return False
        if self.on_empty == 'raise':
            raise AnnotationError(where, f'empty {what} ({text!r}); every pair needs a non-empty '
                                  "source and summary (on_empty='skip' drops and counts such "
                                  'pairs, e.g. the empty titles of a Gigaword test file)')
        self.skipped_empty.append(where)
        return True

    def _unk(self, text: str) -> str:
        return text if self.unk_as is None else _UNK_WORDS.sub(self.unk_as, text)

    def load_data_list(self) -> List[dict]:
        self.skipped_empty = []
        plain_text = not self.ann_file.endswith(('.jsonl', '.json', '.parquet'))
        pairs = self._text_pairs() if plain_text else self._record_pairs()
        data_list = []
        for source_where, source, where, summary, record_id in pairs:
            if self._is_empty(source, 'source', source_where):
                continue
            references = [summary] if isinstance(summary, str) else list(summary)
            if any(self._is_empty(ref, 'summary', where) for ref in references):
                continue
            info = dict(source=self._unk(source.strip()), where=where,
                        summary_id=where if record_id is None else record_id)
            references = [self._unk(ref.strip()) for ref in references]
            if self.test_mode:
                data_list.append(dict(info, gt_summary=references[0] if isinstance(
                    summary, str) else references))
            else:
                data_list.extend(dict(info, gt_summary=ref) for ref in references)
        if self.skipped_empty:
            count = len(self.skipped_empty)
            shown = ', '.join(self.skipped_empty[:5]) + (f' ... ({count - 5} more)'
                                                          if count > 5 else '')
            print_log(f'SummarizationDataset: skipped {count} pair(s) with an empty source or '
                      f"summary (on_empty='skip') of {self.ann_file}: {shown}; "
                      f'{len(data_list)} samples kept', logger='current', level=30)
        if not data_list:
            raise AnnotationError(self.ann_file, 'no pairs left to use')
        return data_list
