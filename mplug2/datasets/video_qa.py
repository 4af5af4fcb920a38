"""Open-ended video question answering: MSRVTT-QA, MSVD-QA, TGIF-FrameQA."""
from collections import Counter
from typing import List, Sequence, Union

from mplug2.registry import DATASETS
from .annotation_io import (check_cleaned_text, find_repeated_records, get_field, get_str,
                            load_records, warn_repeated_records)
from .base_video_text import BaseVideoTextDataset
from .errors import AnnotationError
from .transforms.text import pre_question

__all__ = ['VideoQADataset']


@DATASETS.register_module()
class VideoQADataset(BaseVideoTextDataset):
    """Video QA annotations, one sample per question.

    Accepted annotation files (see docs/datasets.md):

    * the official mPLUG-2 ``.jsonl``: one ``{"video_id": str, "question": str,
      "answer": str}`` per line (``video_id`` without extension, e.g. ``"video7010"``,
      ``"tumblr_nk172bbdPI1u1lr18o1_250"``);
    * mmaction2's ``MSRVTTVQA`` ``.json``: a list of ``{"question_id": int, "video":
      "video7010.mp4", "question": str, "answer": str | [str, ...]}``;
    * optional fields: ``question_id`` (default: the position over all files, as the
      official code), ``question_type`` / ``type`` (e.g. what/who/how, for per-type accuracy).

    Untrusted input: an empty or whitespace-only answer, a question that is empty or that
    the official cleaning (``pre_question``) turns into nothing, and a ``question_id`` given
    twice (across all the files) are :class:`AnnotationError` s naming the file and line
    (both lines for a repeated id). Records identical to an earlier one (without ids) are
    kept and counted in one warning; their locations are in ``repeated_records``.

    Per sample: ``video_id``, ``question`` (as written: the pipeline's ``CleanQuestion``
    normalises it), ``gt_answer`` (the answer string; the list of distinct answers when a
    record has several), ``answer_weight`` (the answers' frequencies, summing to 1),
    ``question_id``, ``question_type`` if given.

    The candidate answers of ranking-mode evaluation are the model's (``MPLUG2QA``'s
    ``answer_list``, a file read with :func:`~mplug2.datasets.load_answer_list`).

    Args:
        ann_file: one file or a list (the official configs pass a list).
        **kwargs: see :class:`BaseVideoTextDataset`.
    """

    def __init__(self, ann_file: Union[str, Sequence[str]], **kwargs) -> None:
        #: ``(where, where_of_first)`` of the records identical to an earlier one.
        self.repeated_records: List[tuple] = []
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = []
        records = load_records(self.ann_files)
        first_of_id = {}  # str(question_id) -> where
        for position, (where, record) in enumerate(records):
            video_id, video_name = self.parse_video_name(record, where)
            question = check_cleaned_text(
                get_str(record, 'question', where), 'question', where, pre_question)
            answers = get_field(record, ('answer', 'answers'), where)
            name = 'answer' if record.get('answer') is not None else 'answers'
            values = [answers] if isinstance(answers, str) else answers
            if (not isinstance(values, list) or not values
                    or not all(isinstance(a, str) for a in values)):
                raise AnnotationError(where, f'field {name!r} must be a string or a non-empty '
                                      f'list of strings, got {answers!r}')
            for index, answer in enumerate(values):
                if not answer.strip():
                    label = name if isinstance(answers, str) else f'{name}[{index}]'
                    raise AnnotationError(where, f'field {label!r} must be a non-empty string, '
                                          f'got {answer!r}')
            answers = values
            question_id = self._question_id(record, position, where, first_of_id)
            counts = Counter(answers)
            info = dict(
                video_id=video_id,
                video_name=video_name,
                question=question,
                gt_answer=answers[0] if len(counts) == 1 else list(counts),
                answer_weight=[n / len(answers) for n in counts.values()],
                question_id=question_id)
            question_type = record.get('question_type', record.get('type'))
            if question_type is not None:
                info['question_type'] = str(question_type)
            data_list.append(info)
        self.repeated_records = find_repeated_records(records)
        warn_repeated_records(type(self).__name__, self.repeated_records,
                              'each kept as its own question')
        return data_list

    @staticmethod
    def _question_id(record: dict, position: int, where: str, first_of_id: dict):
        """The record's ``question_id`` (default: its position over all the files); an id
        seen before is an error naming both records (evaluation would be ambiguous)."""
        question_id = record.get('question_id')
        given = question_id is not None
        if not given:
            question_id = position
        elif isinstance(question_id, bool) or not isinstance(question_id, (int, str)) or (
                isinstance(question_id, str) and not question_id.strip()):
            raise AnnotationError(where, "field 'question_id' must be an int or a non-empty "
                                  f'string, got {question_id!r}')
        key = str(question_id)  # 7 and '7' are one key in a JSON result file
        if key in first_of_id:
            first, first_given = first_of_id[key]
            how = lambda g: '' if g else ' (by default: the record position)'  # noqa: E731
            raise AnnotationError(
                where, f'duplicate question_id {question_id!r}{how(given)}: already used at '
                f'{first}{how(first_given)}; question ids must be unique across the files of '
                'a dataset')
        first_of_id[key] = (where, given)
        return question_id
