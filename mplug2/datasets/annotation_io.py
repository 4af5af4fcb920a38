"""Reading annotation files with error messages that point at the bad entry.

Every record comes back with a ``where`` string: ``'file.jsonl:12'`` (1-based line of a
jsonl file) or ``'file.json[3]'`` (0-based entry of a json list), which the field
helpers put in front of their error messages. Annotation files are untrusted input: an
empty file, bytes that are not UTF-8, empty text and repeated records are reported with
the same kind of location (see docs/datasets.md).
"""
import csv
import json
import os.path as osp
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from mmengine.fileio import get as get_bytes
from mmengine.logging import print_log

from .errors import AnnotationError

__all__ = [
    'iter_records', 'iter_jsonl_text', 'load_records', 'get_field', 'get_str', 'get_str_or_list', 'read_csv_rows',
    'load_answer_list', 'strip_video_ext', 'check_cleaned_text', 'find_repeated_records',
    'warn_repeated_records', 'VIDEO_EXTENSIONS'
]

#: Extensions tried, in this order, when an annotation names a video without one.
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.webm', '.mkv', '.mov', '.gif')

Record = Tuple[str, dict]


def _read_text(path: str) -> str:
    """The file as UTF-8 text (a leading byte-order mark is dropped).

    Bytes that are not UTF-8 raise :class:`AnnotationError` at ``'path:LINE'`` with the
    byte's position in the line and in the file.
    """
    try:
        data = get_bytes(path)
    except FileNotFoundError:
        raise FileNotFoundError(f'annotation file not found: {path}') from None
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as err:
        line = data.count(b'\n', 0, err.start) + 1
        column = err.start - (data.rfind(b'\n', 0, err.start) + 1)
        bad = data[err.start:err.end]
        raise AnnotationError(
            f'{path}:{line}', f'not valid UTF-8: byte 0x{bad.hex()} at byte {column} of the '
            f'line (byte {err.start} of the file; {err.reason}); annotation files must be '
            'UTF-8 encoded') from None
    return text[1:] if text.startswith('\ufeff') else text


def _first_line(text: str) -> int:
    """The 1-based line of the first non-whitespace character (1 if there is none)."""
    stripped = text.lstrip()
    return text.count('\n', 0, len(text) - len(stripped)) + 1 if stripped else 1


def _empty_file_error(path: str, text: str, what: str = 'records') -> AnnotationError:
    if not text:
        return AnnotationError(f'{path}:1', f'no {what}: the file is empty (0 bytes)')
    lines = len(text.split('\n')) - (1 if text.endswith('\n') else 0)
    return AnnotationError(f'{path}:1', f'no {what}: the file holds only {lines} blank '
                           f"line{'s' if lines != 1 else ''}")


def iter_jsonl_text(path: str, text: str) -> Iterator[Record]:
    """``(path:LINE, record)`` for every non-empty line of the ``.jsonl`` text of ``path``.

    Lines are split at '\\n' only (as editors and the UTF-8 error count them): a JSON string
    may legally hold U+2028 or other characters str.splitlines() breaks at.
    """
    for lineno, line in enumerate(text.split('\n'), start=1):
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


def iter_records(path: str, list_key: Union[str, Sequence[str], None] = None) -> Iterator[Record]:
    """Yield ``(where, record)`` for every record of a ``.jsonl`` or ``.json`` file.

    * ``.jsonl``: one JSON object per non-empty line; ``where`` is ``'path:LINE'``.
    * ``.json``: a list of objects, or an object holding such a list under one of
      ``list_key`` (e.g. ``'annotations'``); ``where`` is ``'path[INDEX]'``.

    A file without any record (0 bytes, only blank lines, an empty JSON list) raises
    :class:`AnnotationError` at ``'path:LINE'``.
    """
    path = str(path)
    text = _read_text(path)
    if not text.strip():
        raise _empty_file_error(path, text)
    if path.endswith('.jsonl'):
        yield from iter_jsonl_text(path, text)
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
    if not data:
        raise AnnotationError(f'{path}:{_first_line(text)}', 'no records: the JSON list is empty')
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


def _find_field(record: dict, names: Union[str, Sequence[str]], where: str) -> Tuple[str, Any]:
    """``(name, value)`` of the first of ``names`` present (and not null) in ``record``."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name in record and record[name] is not None:
            return name, record[name]
    wanted = ' or '.join(repr(n) for n in names)
    raise _fail(where, f'missing field {wanted} (present: {sorted(record)})')


def get_field(record: dict, names: Union[str, Sequence[str]], where: str) -> Any:
    """The value of the first of ``names`` present in ``record``; a clear error if none is."""
    return _find_field(record, names, where)[1]


def get_str(record: dict, names: Union[str, Sequence[str]], where: str,
            allow_int: bool = False) -> str:
    """A non-empty string field (ints accepted and converted when ``allow_int``).

    Empty and whitespace-only strings are errors naming the field found.
    """
    name, value = _find_field(record, names, where)
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f'field {name!r} must be a non-empty string, got {value!r}')
    return value


def check_cleaned_text(text: str, name: str, where: str,
                       clean: Optional[Callable[[str, int], str]]) -> str:
    """``text`` unchanged, or an error if the official cleaning ``clean`` (``pre_question``
    or ``pre_caption``) turns it into nothing (e.g. ``'?!'``): such a text is no question,
    and a caption nobody can match."""
    if clean is not None and not clean(text, 1 << 30).strip():
        raise _fail(where, f'field {name!r} is empty after the official text cleaning '
                    f'({clean.__name__}({text!r}) gives {clean(text, 1 << 30)!r})')
    return text


def get_str_or_list(record: dict, names: Union[str, Sequence[str]], where: str,
                    clean: Optional[Callable[[str, int], str]] = None) -> List[str]:
    """A string or a non-empty list of strings, returned as a list.

    Every string must be non-empty and not only whitespace; with ``clean`` (the official
    cleaning function of the text) it must also not clean to nothing. The errors name the
    field found and, for a list, the entry.
    """
    name, value = _find_field(record, names, where)
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise _fail(where, f'field {name!r} must be a string or a non-empty list of '
                    f'non-empty strings, got {value!r}')
    for index, text in enumerate(values):
        label = name if isinstance(value, str) else f'{name}[{index}]'
        if not text.strip():
            raise _fail(where, f'field {label!r} must be a non-empty string, got {text!r}')
        check_cleaned_text(text, label, where, clean)
    return values


def find_repeated_records(records: Sequence[Record]) -> List[Tuple[str, str]]:
    """``(where, where_of_first)`` of every record identical to an earlier one (same fields
    and values, in any key order; across all the files)."""
    first: Dict[str, str] = {}
    repeated = []
    for where, record in records:
        key = json.dumps(record, sort_keys=True, ensure_ascii=False, default=repr)
        if key in first:
            repeated.append((where, first[key]))
        else:
            first[key] = where
    return repeated


def warn_repeated_records(owner: str, repeated: Sequence[Tuple[str, str]],
                          effect: str, max_shown: int = 5) -> None:
    """Log one warning that counts the repeated records and shows the first few."""
    if not repeated:
        return
    shown = '; '.join(f'{where} repeats {first}' for where, first in repeated[:max_shown])
    more = f'; ... ({len(repeated) - max_shown} more)' if len(repeated) > max_shown else ''
    print_log(f'{owner}: {len(repeated)} annotation record(s) identical to an earlier one, '
              f'{effect} ({shown}{more})', logger='current', level=30)


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
        return list(dict.fromkeys(answers))
    text = _read_text(path)
    if not text.strip():
        raise _empty_file_error(path, text, 'answers')
    if path.endswith('.txt'):
        answers = [line.strip() for line in text.split('\n') if line.strip()]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise AnnotationError(f'{path}:{err.lineno}', f'invalid JSON ({err.msg})') from None
        if isinstance(data, dict):
            answers = list(data.keys())
        elif isinstance(data, list) and all(isinstance(a, str) for a in data):
            answers = list(data)
        else:
            raise AnnotationError(path, 'an answer list must be a JSON object (answer -> '
                                  'label) or a JSON list of strings')
        if not answers:
            raise AnnotationError(f'{path}:{_first_line(text)}',
                                  'no answers: the JSON object or list is empty')
    return list(dict.fromkeys(answers))


def strip_video_ext(name: str) -> str:
    """``'video7010.mp4'`` -> ``'video7010'``; names without a known extension are kept."""
    root, ext = osp.splitext(name)
    return root if ext.lower() in VIDEO_EXTENSIONS else name
