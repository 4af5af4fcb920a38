"""Open-ended video question answering: MSRVTT-QA, MSVD-QA, TGIF-FrameQA."""
from collections import Counter
from typing import List, Optional, Sequence, Union

from mplug2.models.text.text_processing import pre_question
from mplug2.registry import DATASETS
from .annotation_io import get_field, get_str, load_answer_list, load_records
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

    Per sample: ``video_id``, ``question`` (``pre_question``'d), ``gt_answer`` (the answer
    string; the list of distinct answers when a record has several), ``answer_weight``
    (the answers' frequencies, summing to 1), ``question_id``, ``question_type`` if given.

    Args:
        ann_file: one file or a list (the official configs pass a list).
        answer_list: candidate answers for ranking-mode evaluation (official
            ``*_ans2label.json``, a JSON list, a ``.jsonl`` with ``answer`` or a ``.txt``).
            Exposed as ``dataset.answer_list`` and ``metainfo['answer_list']``.
        max_question_words: ``pre_question`` word limit; default 30 for training and 50
            with ``test_mode`` (the official values).
        **kwargs: see :class:`BaseVideoTextDataset`.
    """

    def __init__(self,
                 ann_file: Union[str, Sequence[str]],
                 answer_list: Optional[str] = None,
                 max_question_words: Optional[int] = None,
                 test_mode: bool = False,
                 **kwargs) -> None:
        self.answer_list_file = answer_list
        self.max_question_words = max_question_words or (50 if test_mode else 30)
        self.answer_list: List[str] = []
        super().__init__(ann_file=ann_file, test_mode=test_mode, **kwargs)

    def load_data_list(self) -> List[dict]:
        if self.answer_list_file:
            self.answer_list = load_answer_list(self.answer_list_file)
            self._metainfo['answer_list'] = list(self.answer_list)
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
                question=pre_question(question, self.max_question_words),
                gt_answer=answers[0] if len(counts) == 1 else list(counts),
                answer_weight=[n / len(answers) for n in counts.values()],
                question_id=record.get('question_id', position))
            question_type = record.get('question_type', record.get('type'))
            if question_type is not None:
                info['question_type'] = str(question_type)
            data_list.append(info)
        return data_list
