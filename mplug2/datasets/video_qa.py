"""Open-ended video question answering: MSRVTT-QA, MSVD-QA, TGIF-FrameQA."""
from collections import Counter
from typing import List, Sequence, Union

from mplug2.registry import DATASETS
from .annotation_io import get_field, get_str, load_records
from .base_video_text import BaseVideoTextDataset
from .errors import AnnotationError

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
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = []
        for position, (where, record) in enumerate(load_records(self.ann_files)):
            video_id, video_name = self.parse_video_name(record, where)
            question = get_str(record, 'question', where)
            answers = get_field(record, ('answer', 'answers'), where)
            answers = [answers] if isinstance(answers, str) else answers
            if (not isinstance(answers, list) or not answers
                    or not all(isinstance(a, str) for a in answers)):
                raise AnnotationError(where, "field 'answer' must be a string or a non-empty "
                                      f'list of strings, got {answers!r}')
            counts = Counter(answers)
            info = dict(
                video_id=video_id,
                video_name=video_name,
                question=question,
                gt_answer=answers[0] if len(counts) == 1 else list(counts),
                answer_weight=[n / len(answers) for n in counts.values()],
                question_id=record.get('question_id', position))
            question_type = record.get('question_type', record.get('type'))
            if question_type is not None:
                info['question_type'] = str(question_type)
            data_list.append(info)
        return data_list
