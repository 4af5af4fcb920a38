"""Reading annotation files with error messages that point at the bad entry.

Every record comes back with a ``where`` string: ``'file.jsonl:12'`` (1-based line of a
jsonl file) or ``'file.json[3]'`` (0-based entry of a json list), which the field
helpers put in front of their error messages.
"""
import csv
import json
import os.path as osp
from typing import Any, Iterator, List, Sequence, Tuple, Union

from mmengine.fileio import get_text

from .errors import AnnotationError

__all__ = [
    'iter_records', 'load_records', 'get_field', 'get_str', 'get_str_or_list', 'read_csv_rows',
    'load_answer_list', 'strip_video_ext', 'VIDEO_EXTENSIONS'
]

#: Extensions tried, in this order, when an annotation names a video without one.
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov', '.gif')

Record = Tuple[str, dict]


def _read_text(path: str) -> str:
    try:
        return get_text(path)
    except FileNotFoundError:
        raise FileNotFoundError(f'annotation file not found: {path}') from None


def iter_records(path: str, list_key: Union[str, Sequence[str], None] = None) -> Iterator[Record]:
    """Yield ``(where, record)`` for every record of a ``.jsonl`` or ``.json`` file.

    * ``.jsonl``: one JSON object per non-empty line; ``where`` is ``'path:LINE'``.
    * ``.json``: a list of objects, or an object holding such a list under one of
      ``list_key`` (e.g. ``'annotations'``); ``where`` is ``'path[INDEX]'``.
    """
    path = str(path)
    text = _read_text(path)
    if path.endswith('.jsonl'):
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise AnnotationError(f'{path}:{lineno}', f'invalid JSON ({err.msg})') from None
            if not isinstance(record, dict):
                raise AnnotationError(f'{path}:{lineno}',
                                      f'expected a JSON object, got {type(record).__name__}')
            yield f'{path}:{lineno}', record
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise AnnotationError(f'{path}:{err.lineno}', f'invalid JSON ({err.msg})') from None
    if isinstance(data, dict):
        keys = [list_key] if isinstance(list_key, str) else list(list_key or [])
        for key in keys:
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            under = f' or an object with a list under {keys}' if keys else ''
            raise AnnotationError(path, f'expected a JSON list of records{under}, got an object '
                                  f'with keys {sorted(data)[:10]}')
    if not isinstance(data, list):
        raise AnnotationError(path, f'expected a JSON list of records, got {type(data).__name__}')
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise AnnotationError(f'{path}[{index}]',
                                  f'expected a JSON object, got {type(record).__name__}')
        yield f'{path}[{index}]', record


def load_records(paths: Union[str, Sequence[str]], **kwargs) -> List[Record]:
    """:func:`iter_records` over one file or several files, concatenated in order."""
    if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence):
        paths = [paths]
    records: List[Record] = []
    for path in paths:
        records.extend(iter_records(path, **kwargs))
    return records


def _fail(where: str, reason: str) -> AnnotationError:
    return AnnotationError(where, reason)


def get_field(record: dict, names: Union[str, Sequence[str]], where: str) -> Any:
    """The value of the first of ``names`` present in ``record``; a clear error if none is."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name in record and record[name] is not None:
            return record[name]
    wanted = ' or '.join(repr(n) for n in names)
    raise _fail(where, f'missing field {wanted} (present: {sorted(record)})')


def get_str(record: dict, names: Union[str, Sequence[str]], where: str,
            allow_int: bool = False) -> str:
    """A non-empty string field (ints accepted and converted when ``allow_int``)."""
    value = get_field(record, names, where)
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        name = names if isinstance(names, str) else names[0]
        raise _fail(where, f'field {name!r} must be a non-empty string, got {value!r}')
    return value


def get_str_or_list(record: dict, names: Union[str, Sequence[str]], where: str) -> List[str]:
    """A string or a non-empty list of strings, returned as a list."""
    value = get_field(record, names, where)
    values = [value] if isinstance(value, str) else value
    name = names if isinstance(names, str) else names[0]
    if (not isinstance(values, list) or not values
            or not all(isinstance(v, str) and v.strip() for v in values)):
        raise _fail(where, f'field {name!r} must be a string or a non-empty list of '
                    f'non-empty strings, got {value!r}')
    return values


def read_csv_rows(path: str, required: Sequence[str] = ()) -> List[Tuple[str, dict]]:
    """Rows of a CSV file with a header, as ``('path:LINE', row)``; checks ``required`` columns."""
    text = _read_text(path)
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise AnnotationError(f'{path}:1', f'missing column(s) {missing} in header '
                              f'{reader.fieldnames}')
    rows = []
    for row in reader:
        where = f'{path}:{reader.line_num}'
        for column in required:
            if not (row.get(column) or '').strip():
                raise AnnotationError(where, f'empty value in column {column!r}')
        rows.append((where, row))
    return rows


def load_answer_list(path: str) -> List[str]:
    """The candidate answers for ranking-mode VideoQA, in file order, without duplicates.

    Accepted: the official ``*_ans2label.json`` (an object whose keys are the answers), a
    JSON list of strings, a ``.jsonl`` file of records with an ``answer`` field (the
    official fallback), or a ``.txt`` file with one answer per line.
    """
    path = str(path)
    if path.endswith('.jsonl'):
        answers = [get_str(r, 'answer', where) for where, r in iter_records(path)]
    elif path.endswith('.txt'):
        answers = [line.strip() for line in _read_text(path).splitlines() if line.strip()]
    else:
        try:
            data = json.loads(_read_text(path))
        except json.JSONDecodeError as err:
            raise AnnotationError(f'{path}:{err.lineno}', f'invalid JSON ({err.msg})') from None
        if isinstance(data, dict):
            answers = list(data.keys())
        elif isinstance(data, list) and all(isinstance(a, str) for a in data):
            answers = list(data)
        else:
            raise AnnotationError(path, 'an answer list must be a JSON object (answer -> '
                                  'label) or a JSON list of strings')
    return list(dict.fromkeys(answers))


def strip_video_ext(name: str) -> str:
    """``'video7010.mp4'`` -> ``'video7010'``; names without a known extension are kept."""
    root, ext = osp.splitext(name)
    return root if ext.lower() in VIDEO_EXTENSIONS else name
