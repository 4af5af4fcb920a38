"""Video captioning: MSRVTT, MSVD."""
from typing import List

from mplug2.registry import DATASETS
from .annotation_io import (_read_text, find_repeated_records, get_str_or_list, load_records,
                            warn_repeated_records)
from .base_video_text import BaseVideoTextDataset
from .errors import AnnotationError
from .transforms.text import pre_caption

__all__ = ['VideoCaptionDataset', 'CAPTION_KEYS', 'load_reference_sets']

#: Annotation fields holding captions (a string or a list of strings).
CAPTION_KEYS = ('caption', 'captions', 'golden_captions', 'golden_caption', 'sentence', 'text')


@DATASETS.register_module()
class VideoCaptionDataset(BaseVideoTextDataset):
    """Video captioning annotations.

    Accepted records (``.jsonl`` lines or the entries of a ``.json`` list), mixed freely:

    * official train: ``{"video_id": str, "caption": str}``;
    * official test: ``{"video_id": str, "golden_captions": [str, ...]}``;
    * mmaction2 / frozen-in-time style: ``{"video": "video0.mp4", "caption": str | [str]}``.

    Training (``test_mode=False``): one sample per (video, caption); ``gt_caption`` is the
    caption as written (the pipeline's ``CleanCaption`` normalises it).
    Test: one sample per video (records of the same video are merged, first-appearance
    order); ``gt_caption`` is the list of all its captions, lower-cased (the metric
    tokenises them with the PTB tokenizer, as the official evaluation).

    Untrusted input: an empty or whitespace-only caption, or one that the official cleaning
    (``pre_caption``) turns into nothing (e.g. ``"?!"``), is an :class:`AnnotationError`
    naming the file, line and field. Records identical to an earlier one are kept (real
    MSRVTT annotations repeat captions of a video) and counted in one warning; their
    locations are in ``repeated_records``.

    The split is the file: for MSRVTT the standard captioning test split is the official
    2,990 test videos; the 1k-A retrieval split (1,000 videos) is a different, easier-to-
    compare-with-retrieval subset. See docs/datasets.md and
    ``tools/dataset_converters/convert_msrvtt.py``.
    """

    def __init__(self, ann_file, **kwargs) -> None:
        #: ``(where, where_of_first)`` of the records identical to an earlier one.
        self.repeated_records: List[tuple] = []
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = []
        by_video = {}
        records = load_records(self.ann_files)
        for where, record in records:
            video_id, video_name = self.parse_video_name(record, where)
            captions = get_str_or_list(record, CAPTION_KEYS, where, clean=pre_caption)
            if not self.test_mode:
                data_list.extend(
                    dict(video_id=video_id, video_name=video_name,
                         gt_caption=c) for c in captions)
            elif video_id in by_video:
                by_video[video_id]['gt_caption'].extend(c.lower() for c in captions)
            else:
                by_video[video_id] = dict(video_id=video_id, video_name=video_name,
                                          gt_caption=[c.lower() for c in captions])
                data_list.append(by_video[video_id])
        self.repeated_records = find_repeated_records(records)
        warn_repeated_records(type(self).__name__, self.repeated_records,
                              'kept (their captions count twice)')
        return data_list


def load_reference_sets(path: str, max_words: int = 80) -> List[List[str]]:
    """The reference captions of every video of ``path``, cleaned as the training pipeline
    cleans them (:func:`~mplug2.datasets.transforms.text.pre_caption`, ``max_words``): the
    corpus of CIDEr-D's document frequency in SCST. ``path`` is

    * a caption annotation file in any format :class:`VideoCaptionDataset` reads (e.g. the
      training ``caption_train.jsonl``; captions grouped by video), or
    * a JSON list with one list of reference captions per video.
    """
    import json

    if path.endswith('.json'):
        text = _read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise AnnotationError(f'{path}:{err.lineno}', f'invalid JSON ({err.msg})') from None
        if isinstance(data, list) and data and all(isinstance(refs, list) for refs in data):
            return [[pre_caption(ref, max_words) for ref in refs] for refs in data]
    dataset = VideoCaptionDataset(ann_file=path, test_mode=True, serialize_data=False)
    return [[pre_caption(ref, max_words) for ref in dataset.get_data_info(i)['gt_caption']]
            for i in range(len(dataset))]
