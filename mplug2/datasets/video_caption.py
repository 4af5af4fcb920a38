"""Video captioning: MSRVTT, MSVD."""
from typing import List

from mplug2.models.text.text_processing import pre_caption
from mplug2.registry import DATASETS
from .annotation_io import get_str_or_list, load_records
from .base_video_text import BaseVideoTextDataset

__all__ = ['VideoCaptionDataset', 'CAPTION_KEYS']

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
    ``pre_caption``'d caption (``max_words`` words, 80 as the official code).
    Test: one sample per video (records of the same video are merged, first-appearance
    order); ``gt_caption`` is the list of all its captions, lower-cased (the metric
    tokenises them with the PTB tokenizer, as the official evaluation).

    The split is the file: for MSRVTT the standard captioning test split is the official
    2,990 test videos; the 1k-A retrieval split (1,000 videos) is a different, easier-to-
    compare-with-retrieval subset. See docs/datasets.md and
    ``tools/dataset_converters/convert_msrvtt.py``.
    """

    def __init__(self, ann_file, max_words: int = 80, **kwargs) -> None:
        self.max_words = max_words
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = []
        by_video = {}
        for where, record in load_records(self.ann_files):
            video_id, video_name = self.parse_video_name(record, where)
            captions = get_str_or_list(record, CAPTION_KEYS, where)
            if not self.test_mode:
                data_list.extend(
                    dict(video_id=video_id, video_name=video_name,
                         gt_caption=pre_caption(c, self.max_words)) for c in captions)
            elif video_id in by_video:
                by_video[video_id]['gt_caption'].extend(c.lower() for c in captions)
            else:
                by_video[video_id] = dict(video_id=video_id, video_name=video_name,
                                          gt_caption=[c.lower() for c in captions])
                data_list.append(by_video[video_id])
        return data_list
