"""SQuAD v1.1 / v2.0 extractive question answering: questions, contexts and answer spans,
split into the windows the span model reads.

Files read (nothing is downloaded):

* the official json: ``{"version": ..., "data": [{"title", "paragraphs": [{"context", "qas":
  [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}``
  (``is_impossible`` and ``plausible_answers`` only in v2.0);
* the Hugging Face ``squad`` / ``squad_v2`` exports, one record per question: ``.jsonl`` (also
  a JSON-lines file named ``.json``, as ``Dataset.to_json`` writes it), a ``.json`` list, or
  ``.parquet``, with ``id, title, context, question, answers{text[], answer_start[]}``
  (empty lists: unanswerable).

Every question becomes one or more windows (features), ``[CLS] question [SEP] context
[SEP]``: a context longer than one window is split into several that overlap by
``doc_stride`` tokens (the fast BERT tokenizer's ``return_overflowing_tokens``, as in Hugging
Face's ``run_qa.py``). Each window is one sample: its token ids and types, the character
offsets of its context tokens (to map a predicted token span back to the exact substring of
the context), and the token positions of the answer, or of ``[CLS]`` (0) when the window does
not hold the whole answer or the question has none.

Bad annotations raise :class:`~mplug2.datasets.errors.AnnotationError` naming the file and the
line: ``'file.jsonl:12'``, ``'file.parquet[row 3]'``, and for the official json, which is
often a single line, the line of the question's ``"id"`` and its path in the file
(``'dev-v1.1.json:1 (data[3].paragraphs[0].qas[2], id "5733be...")'``). An answer whose text
is not the context's text at ``answer_start`` is such an error, or, with
``on_bad_answer='skip'``, a question left out, counted and reported in the log.
"""
import json
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mplug2.registry import DATASETS
from .annotation_io import _read_text, iter_jsonl_text, iter_records
from .errors import AnnotationError

__all__ = ['SquadDataset', 'SquadExample', 'load_squad_examples', 'build_windows',
           'build_squad_tokenizer']

#: What the pipeline packs (``PackTextInputs(data_keys=..., meta_keys=...)``).
SQUAD_DATA_KEYS = ('input_ids', 'token_type_ids', 'offsets', 'context', 'start_position',
                   'end_position', 'gt_answers')
SQUAD_META_KEYS = ('sample_idx', 'example_id', 'window_index', 'num_windows', 'question', 'where')


class SquadExample(dict):
    """One question: ``id, title, question, context, answers`` (list of ``dict(text,
    answer_start)``, empty when unanswerable), ``is_impossible`` and ``where``."""


def build_squad_tokenizer(vocab_file: str):
    """The uncased BERT WordPiece tokenizer (``transformers.BertTokenizerFast``) of a local
    ``vocab.txt`` (or a directory holding one); never downloads."""
    from transformers import BertTokenizerFast
    path = osp.expanduser(str(vocab_file))
    if osp.isdir(path):
        path = osp.join(path, 'vocab.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'vocab_file {vocab_file!r} is not a local vocab.txt (or a '
                                'directory holding one); nothing is downloaded')
    return BertTokenizerFast(vocab_file=path, do_lower_case=True)


# ------------------------------------------------------------------------- reading
def _str_field(record: dict, name: str, where: str, allow_int: bool = False) -> str:
    if name not in record or record[name] is None:
        raise AnnotationError(where, f'missing field {name!r} (present: {sorted(record)})')
    value = record[name]
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError(where, f'field {name!r} must be a non-empty string, got {value!r}')
    return value


def _answers(record: dict, where: str) -> List[dict]:
    """``answers`` as a list of ``dict(text, answer_start)``: from the official list of
    objects or the Hugging Face ``{text: [...], answer_start: [...]}``."""
    value = record.get('answers')
    if value is None:
        return []
    if isinstance(value, dict):
        texts, starts = value.get('text'), value.get('answer_start')
        if (not isinstance(texts, (list, tuple)) or not isinstance(starts, (list, tuple))
                or len(texts) != len(starts)):
            raise AnnotationError(where, 'field "answers" must hold two lists of the same length, '
                                  f'"text" and "answer_start"; got {value!r}')
        value = [dict(text=t, answer_start=s) for t, s in zip(texts, starts)]
    if not isinstance(value, (list, tuple)):
        raise AnnotationError(where, f'field "answers" must be a list, got {value!r}')
    answers = []
    for index, answer in enumerate(value):
        if not isinstance(answer, dict):
            raise AnnotationError(where, f'answers[{index}] must be an object with "text" and '
                                  f'"answer_start", got {answer!r}')
        text, start = answer.get('text'), answer.get('answer_start')
        if not isinstance(text, str) or not text.strip():
            raise AnnotationError(where, f'answers[{index}]["text"] must be a non-empty string, '
                                  f'got {text!r}')
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise AnnotationError(where, f'answers[{index}]["answer_start"] must be a '
                                  f'non-negative integer, got {start!r}')
        answers.append(dict(text=text, answer_start=int(start)))
    return answers


def _example(record: dict, context: str, title: str, where: str) -> SquadExample:
    question = _str_field(record, 'question', where)
    answers = _answers(record, where)
    impossible = record.get('is_impossible', False)
    if not isinstance(impossible, bool):
        raise AnnotationError(where, f'field "is_impossible" must be true or false, got '
                              f'{impossible!r}')
    if impossible and answers:
        raise AnnotationError(where, f'is_impossible is true but the question has '
                              f'{len(answers)} answer(s)')
    return SquadExample(id=_str_field(record, 'id', where, allow_int=True), title=title,
                        question=question, context=context, answers=answers,
                        is_impossible=not answers, where=where)


def _id_lines(text: str) -> Dict[str, int]:
    """``{id: 1-based line}`` of every ``"id": "<id>"`` (or a number) in the raw json, the
    first occurrence of each, in one pass over the text."""
    lines: Dict[str, int] = {}
    line, position = 1, 0
    for match in re.finditer(r'"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)', text):
        line += text.count('\n', position, match.start())
        position = match.start()
        try:
            qid = json.loads(match.group(1))
        except json.JSONDecodeError:  # pragma: no cover
            continue
        lines.setdefault(str(qid), line)
    return lines


def _iter_official(path: str, data: dict, text: str) -> Iterator[SquadExample]:
    articles = data['data']
    if not isinstance(articles, list):
        raise AnnotationError(f'{path}:1', '"data" must be a list of articles')

    id_lines = _id_lines(text)

    def where_of(qa, label):
        qid = qa.get('id') if isinstance(qa, dict) else None
        if isinstance(qid, (str, int)) and not isinstance(qid, bool):
            return f'{path}:{id_lines.get(str(qid), 1)} ({label}, id {json.dumps(str(qid))})'
        return f'{path} ({label})'

    for i, article in enumerate(articles):
        if not isinstance(article, dict) or not isinstance(article.get('paragraphs'), list):
            raise AnnotationError(f'{path} (data[{i}])', 'an article must be an object with a '
                                  '"paragraphs" list')
        title = article.get('title') or ''
        for j, paragraph in enumerate(article['paragraphs']):
            label = f'data[{i}].paragraphs[{j}]'
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get('qas'), list):
                raise AnnotationError(f'{path} ({label})', 'a paragraph must be an object with '
                                      '"context" and a "qas" list')
            qas = paragraph['qas']
            context = paragraph.get('context')
            if not isinstance(context, str) or not context.strip():
                first = where_of(qas[0], f'{label}.qas[0]') if qas else f'{path} ({label})'
                raise AnnotationError(first, f'the paragraph\'s "context" must be a non-empty '
                                      f'string, got {context!r}')
            for k, qa in enumerate(qas):
                where = where_of(qa, f'{label}.qas[{k}]')
                if not isinstance(qa, dict):
                    raise AnnotationError(where, f'expected a question object, got {qa!r}')
                yield _example(qa, context, title, where)


def _iter_flat(records: Iterator[Tuple[str, dict]]) -> Iterator[SquadExample]:
    for where, record in records:
        context = _str_field(record, 'context', where)
        title = record.get('title') or ''
        yield _example(record, context, str(title), where)


def _iter_parquet(path: str) -> Iterator[Tuple[str, dict]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover
        raise ImportError(f'reading {path} needs pyarrow (pip install pyarrow)') from err
    if not osp.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    rows = pq.read_table(path).to_pylist()
    if not rows:
        raise AnnotationError(f'{path}[row 0]', 'no records: the table is empty')
    for index, row in enumerate(rows):
        yield f'{path}[row {index}]', row


def iter_squad_examples(path: str) -> Iterator[SquadExample]:
    """The questions of one SQuAD file (official json, json / jsonl / parquet export)."""
    path = str(path)
    if path.endswith('.parquet'):
        yield from _iter_flat(_iter_parquet(path))
        return
    if path.endswith('.jsonl'):
        yield from _iter_flat(iter_records(path))
        return
    text = _read_text(path)
    if not text.strip():
        yield from _iter_flat(iter_records(path))  # raises the empty-file error
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == 'Extra data':  # JSON lines named .json (Dataset.to_json)
            yield from _iter_flat(iter_jsonl_text(path, text))
            return
        raise AnnotationError(f'{path}:{err.lineno}', f'invalid JSON ({err.msg})') from None
    if isinstance(data, dict) and 'data' in data:
        yield from _iter_official(path, data, text)
    elif isinstance(data, dict) and 'context' in data:  # a one-record JSON-lines file
        yield from _iter_flat(iter([(f'{path}:1', data)]))
    else:
        yield from _iter_flat(iter_records(path))


def check_answer_spans(example: SquadExample) -> Optional[str]:
    """None, or why an answer of ``example`` is not its context's text at ``answer_start``."""
    context = example['context']
    for index, answer in enumerate(example['answers']):
        start, text = answer['answer_start'], answer['text']
        found = context[start:start + len(text)]
        if found == text:
            continue
        elsewhere = context.find(text)
        hint = (f'; the text occurs at character {elsewhere}' if elsewhere >= 0 else
                '; the text does not occur anywhere in the context')
        return (f'answers[{index}] {text!r} is not in the context at answer_start={start}: the '
                f'context there reads {found!r} ({len(context)} characters){hint}')
    return None


def load_squad_examples(paths: Union[str, Sequence[str]], with_negative: bool = False,
                        on_bad_answer: str = 'error') -> Tuple[List[SquadExample], List[dict]]:
    """The questions of one or several SQuAD files and the questions skipped.

    Args:
        paths: one file or a list (concatenated in order).
        with_negative: SQuAD v2.0: questions without an answer are allowed (``is_impossible``
            or an empty ``answers``). False (v1.1): such a question is an error.
        on_bad_answer: ``'error'``: an answer that is not the context's text at its
            ``answer_start`` raises :class:`AnnotationError`; ``'skip'``: the question is left
            out and listed in the second return value (``dict(where, id, reason)``).

    Question ids must be unique across the files (the metric gathers a question's windows
    by id).
    """
    if on_bad_answer not in ('error', 'skip'):
        raise ValueError(f"on_bad_answer must be 'error' or 'skip', got {on_bad_answer!r}")
    paths = [paths] if isinstance(paths, str) else list(paths)
    examples, skipped, seen = [], [], {}
    for path in paths:
        for example in iter_squad_examples(path):
            where = example['where']
            if example['id'] in seen:
                raise AnnotationError(where, f'question id {example["id"]!r} repeats the one at '
                                      f'{seen[example["id"]]}; ids must be unique')
            seen[example['id']] = where
            if not example['answers'] and not with_negative:
                raise AnnotationError(where, 'the question has no answer (a SQuAD v2.0 '
                                      'unanswerable question?); set with_negative=True to read '
                                      'SQuAD v2.0')
            reason = check_answer_spans(example)
            if reason is not None:
                if on_bad_answer == 'error':
                    raise AnnotationError(where, reason + " (on_bad_answer='skip' leaves such "
                                          'questions out)')
                skipped.append(dict(where=where, id=example['id'], reason=reason))
                continue
            examples.append(example)
    return examples, skipped


# ------------------------------------------------------------------------- windows
def _cut_question(question: str, offsets: Sequence[Tuple[int, int]], max_tokens: int) -> str:
    """The question without leading spaces, cut after its first ``max_tokens`` word pieces."""
    if len(offsets) <= max_tokens:
        return question
    return question[:offsets[max_tokens - 1][1]]


def build_windows(examples: Sequence[SquadExample], tokenizer, max_length: int = 384,
                  doc_stride: int = 128, max_question_tokens: int = 64,
                  batch_size: int = 1000) -> Tuple[List[dict], dict]:
    """Split every question's ``[CLS] question [SEP] context [SEP]`` into windows.

    Args:
        examples: the questions (:func:`load_squad_examples`).
        tokenizer: a ``transformers.BertTokenizerFast`` (:func:`build_squad_tokenizer`).
        max_length: tokens per window, special tokens included.
        doc_stride: tokens shared by consecutive windows of one context (the overlap, as
            the ``stride`` of Hugging Face tokenizers and ``run_qa.py``'s ``doc_stride``; the
            original BERT ``run_squad.py`` instead moves each window by ``doc_stride``).
        max_question_tokens: questions are cut after this many word pieces.
        batch_size: questions tokenized per call.

    Returns:
        The windows (dicts, see :class:`SquadDataset`) and counts: ``questions_cut`` and
        ``answers_in_no_window`` (answerable questions whose first answer no window holds
        whole: trained as unanswerable in every window, as ``run_qa.py`` does).
    """
    room = max_length - max_question_tokens - 3
    if room <= doc_stride:
        raise ValueError(f'max_length={max_length} leaves {room} context tokens per window after '
                         f'a question of max_question_tokens={max_question_tokens} and 3 special '
                         f'tokens; doc_stride={doc_stride} must be smaller than that')
    windows: List[dict] = []
    counts = dict(questions_cut=0, answers_in_no_window=0)
    for first in range(0, len(examples), batch_size):
        batch = examples[first:first + batch_size]
        questions = [e['question'].lstrip() for e in batch]
        question_offsets = tokenizer(questions, add_special_tokens=False,
                                     return_offsets_mapping=True)['offset_mapping']
        for index, offsets in enumerate(question_offsets):
            if len(offsets) > max_question_tokens:
                questions[index] = _cut_question(questions[index], offsets, max_question_tokens)
                counts['questions_cut'] += 1
        encoded = tokenizer(questions, [e['context'] for e in batch], truncation='only_second',
                            max_length=max_length, stride=doc_stride,
                            return_overflowing_tokens=True, return_offsets_mapping=True,
                            return_token_type_ids=True, padding=False)
        owners = encoded['overflow_to_sample_mapping']
        per_example: Dict[int, List[dict]] = {}
        for feature, owner in enumerate(owners):
            example = batch[owner]
            sequence_ids = encoded.sequence_ids(feature)
            offsets = np.asarray(encoded['offset_mapping'][feature], dtype=np.int32).reshape(-1, 2)
            is_context = np.asarray([s == 1 for s in sequence_ids])
            offsets[~is_context] = -1
            start_position = end_position = 0
            if example['answers']:
                answer = example['answers'][0]
                start_char = answer['answer_start']
                end_char = start_char + len(answer['text'])
                span = token_span(offsets, start_char, end_char)
                if span is not None:
                    start_position, end_position = span
            per_example.setdefault(owner, []).append(dict(
                example_id=example['id'],
                question=questions[owner],
                context=example['context'],
                title=example['title'],
                input_ids=np.asarray(encoded['input_ids'][feature], dtype=np.int32),
                token_type_ids=np.asarray(encoded['token_type_ids'][feature], dtype=np.int8),
                offsets=offsets,
                start_position=int(start_position),
                end_position=int(end_position),
                gt_answers=[a['text'] for a in example['answers']],
                answer_starts=[a['answer_start'] for a in example['answers']],
                is_impossible=example['is_impossible'],
                where=example['where']))
        for owner in range(len(batch)):
            group = per_example[owner]
            if batch[owner]['answers'] and all(w['start_position'] == 0 for w in group):
                counts['answers_in_no_window'] += 1
            for window_index, window in enumerate(group):
                window.update(window_index=window_index, num_windows=len(group))
            windows.extend(group)
    return windows, counts


def token_span(offsets: np.ndarray, start_char: int, end_char: int) -> Optional[Tuple[int, int]]:
    """Token positions ``(start, end)`` (inclusive) of the characters ``[start_char,
    end_char)`` in a window, or None when the window's context does not hold them whole.

    ``offsets``: ``(L, 2)`` character offsets of the tokens, ``-1`` for the tokens that are
    not context (question, special tokens). The start token is the last context token that
    begins at or before ``start_char``, the end token the first that ends at or after
    ``end_char`` (``run_qa.py``'s rule).
    """
    context = np.flatnonzero(offsets[:, 0] >= 0)
    if context.size == 0:
        return None
    begins, ends = offsets[context, 0], offsets[context, 1]
    if not (begins[0] <= start_char and ends[-1] >= end_char):
        return None
    start = context[np.flatnonzero(begins <= start_char)[-1]]
    end = context[np.flatnonzero(ends >= end_char)[0]]
    return int(start), int(end)


@DATASETS.register_module()
class SquadDataset(BaseDataset):
    """SQuAD v1.1 / v2.0 as windows (one sample per window of a question's context).

    A sample (``get_data_info``) holds: ``input_ids`` and ``token_type_ids`` (``(L,)`` numpy
    arrays of ``[CLS] question [SEP] context-part [SEP]``, no padding), ``offsets``
    (``(L, 2)``: each context token's ``[begin, end)`` characters in ``context``, ``-1`` for
    the other tokens), ``start_position`` / ``end_position`` (the answer's first and last
    token in this window, 0 = ``[CLS]``: not in this window, or no answer), ``context`` and
    ``question`` (as written; the question cut to ``max_question_tokens``), ``gt_answers``
    (all reference answers, empty for an unanswerable question), ``example_id``,
    ``window_index``, ``num_windows``, ``is_impossible`` and ``where`` (file and line).

    Args:
        ann_file: one file or a list (joined to ``data_root`` when relative): official json,
            or the json / jsonl / parquet export (module docstring).
        vocab_file: the uncased BERT ``vocab.txt`` (or its directory): the model's tokenizer
            vocabulary.
        max_length: tokens per window (384 as BERT); at most the text encoder's
            ``max_position_embeddings``.
        doc_stride: overlap in tokens of consecutive windows (128 as ``run_qa.py``).
        max_question_tokens: questions are cut after this many word pieces (64).
        with_negative: SQuAD v2.0 (unanswerable questions allowed).
        on_bad_answer: ``'error'`` (default) or ``'skip'`` (see :func:`load_squad_examples`);
            skipped questions are counted in a warning and kept in ``skipped_questions``.
        pipeline, test_mode, data_root, ...: see :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(dataset='SQuAD')

    def __init__(self,
                 ann_file: Union[str, Sequence[str]],
                 vocab_file: str,
                 max_length: int = 384,
                 doc_stride: int = 128,
                 max_question_tokens: int = 64,
                 with_negative: bool = False,
                 on_bad_answer: str = 'error',
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if on_bad_answer not in ('error', 'skip'):
            raise ValueError(f"on_bad_answer must be 'error' or 'skip', got {on_bad_answer!r}")
        if not ann_file:
            raise ValueError('ann_file is required')
        self.ann_files = [ann_file] if isinstance(ann_file, str) else list(ann_file)
        self.vocab_file = vocab_file
        self.max_length = max_length
        self.doc_stride = doc_stride
        self.max_question_tokens = max_question_tokens
        self.with_negative = with_negative
        self.on_bad_answer = on_bad_answer
        self.skipped_questions: List[dict] = []
        self.counts: dict = {}
        super().__init__(ann_file=self.ann_files[0], pipeline=list(pipeline),
                         test_mode=test_mode, **kwargs)

    def _join_prefix(self):
        super()._join_prefix()
        if self.data_root:
            self.ann_files = [f if osp.isabs(f) else osp.join(self.data_root, f)
                              for f in self.ann_files]
            if not osp.isabs(self.vocab_file) and not osp.exists(self.vocab_file):
                joined = osp.join(self.data_root, self.vocab_file)
                if osp.exists(joined):
                    self.vocab_file = joined
        self.ann_file = self.ann_files[0]

    def load_data_list(self) -> List[dict]:
        examples, skipped = load_squad_examples(self.ann_files, self.with_negative,
                                                self.on_bad_answer)
        self.skipped_questions = skipped
        name = type(self).__name__
        if skipped:
            shown = '; '.join(f'{s["where"]}: {s["reason"]}' for s in skipped[:5])
            more = f'; ... ({len(skipped) - 5} more)' if len(skipped) > 5 else ''
            print_log(f'{name}: skipped {len(skipped)} of {len(examples) + len(skipped)} '
                      f"questions whose answer is not in its context (on_bad_answer='skip'): "
                      f'{shown}{more}', logger='current', level=30)
        if not examples:
            raise AnnotationError(self.ann_files[0], 'no usable question in '
                                  f'{", ".join(self.ann_files)}')
        tokenizer = build_squad_tokenizer(self.vocab_file)
        windows, counts = build_windows(examples, tokenizer, self.max_length, self.doc_stride,
                                        self.max_question_tokens)
        self.counts = dict(counts, questions=len(examples), windows=len(windows),
                           skipped=len(skipped),
                           unanswerable=sum(e['is_impossible'] for e in examples))
        if counts['questions_cut']:
            print_log(f'{name}: {counts["questions_cut"]} question(s) longer than '
                      f'max_question_tokens={self.max_question_tokens} word pieces were cut',
                      logger='current', level=30)
        if counts['answers_in_no_window']:
            print_log(f'{name}: the first answer of {counts["answers_in_no_window"]} question(s) '
                      f'is longer than the context part of a window (max_length='
                      f'{self.max_length}): every window of those points at [CLS]',
                      logger='current', level=30)
        print_log(f'{name}: {len(examples)} questions ({self.counts["unanswerable"]} '
                  f'unanswerable) in {len(windows)} windows of at most {self.max_length} '
                  f'tokens (overlap {self.doc_stride}) from {", ".join(self.ann_files)}',
                  logger='current')
        return windows
