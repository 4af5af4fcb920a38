"""Video-text retrieval: MSRVTT 1k-A, DiDeMo (paragraph-to-video), LSMDC."""
from typing import List

from mplug2.registry import DATASETS
from .annotation_io import (check_cleaned_text, find_repeated_records, get_str_or_list,
                            load_records, warn_repeated_records)
from .base_video_text import BaseVideoTextDataset
from .transforms.text import pre_caption
from .video_caption import CAPTION_KEYS

__all__ = ['VideoRetrievalDataset']


@DATASETS.register_module()
class VideoRetrievalDataset(BaseVideoTextDataset):
    """Video-text retrieval annotations.

    Accepted records (``.jsonl`` lines or the entries of a ``.json`` list):

    * official mPLUG-2 / frozen-in-time ``{"clip_name": str, "caption": str | [str, ...]}``
      (``"video": "name.mp4"`` instead of ``clip_name`` also works, as in mmaction2's
      ``MSRVTTRetrieval`` json);
    * DiDeMo paragraphs: ``caption`` is the list of a video's sentences; with
      ``is_paragraph=True`` they are joined with spaces into one text.

    Training (``test_mode=False``): one sample per (video, text), with ``text`` (as written:
    the pipeline's ``CleanCaption`` normalises it) and ``video_idx``, an integer per distinct video (the
    positives of the contrastive loss; equal ``video_idx`` = same video).

    Test: one sample per distinct video, in first-appearance order, with ``video_idx``
    (= its position), ``text`` (its texts) and ``text_id`` (their global indices). The
    ground truth is also in ``metainfo`` (and as attributes): ``texts`` (all texts, in
    ``text_id`` order), ``txt2vid`` (the video of each text), ``vid2txt`` (the texts of
    each video), ``num_videos`` and ``num_texts`` (the names mmaction2's retrieval loop reads).

    Untrusted input: an empty or whitespace-only text, or one that the official cleaning
    (``pre_caption``) turns into nothing, is an :class:`AnnotationError` naming the file,
    line and field (with ``is_paragraph`` the joined paragraph is checked). Records
    identical to an earlier one are kept (each text is its own query) and counted in one
    warning; their locations are in ``repeated_records``.

    Args:
        is_paragraph: join each record's caption list into one paragraph (DiDeMo).
    """

    def __init__(self, ann_file, is_paragraph: bool = False, **kwargs) -> None:
        self.is_paragraph = is_paragraph
        #: ``(where, where_of_first)`` of the records identical to an earlier one.
        self.repeated_records: List[tuple] = []
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        videos = {}  # video_id -> (video_name, [texts])
        records = load_records(self.ann_files)
        for where, record in records:
            video_id, video_name = self.parse_video_name(record, where)
            captions = get_str_or_list(record, CAPTION_KEYS, where,
                                       clean=None if self.is_paragraph else pre_caption)
            if self.is_paragraph:
                captions = [' '.join(c.strip() for c in captions)]
                field = next(k for k in CAPTION_KEYS if record.get(k) is not None)
                check_cleaned_text(captions[0], f'{field} (the joined paragraph)', where,
                                   pre_caption)
            texts = list(captions)
            if video_id in videos:
                videos[video_id][1].extend(texts)
            else:
                videos[video_id] = (video_name, texts)
        self.repeated_records = find_repeated_records(records)
        warn_repeated_records(type(self).__name__, self.repeated_records,
                              'kept (each text is its own query)')

        data_list, all_texts, txt2vid, vid2txt = [], [], [], []
        for video_idx, (video_id, (video_name, texts)) in enumerate(videos.items()):
            text_ids = list(range(len(all_texts), len(all_texts) + len(texts)))
            all_texts.extend(texts)
            txt2vid.extend([video_idx] * len(texts))
            vid2txt.append(text_ids)
            if self.test_mode:
                data_list.append(dict(video_id=video_id, video_name=video_name,
                                      video_idx=video_idx, text=texts, text_id=text_ids))
            else:
                data_list.extend(
                    dict(video_id=video_id, video_name=video_name, video_idx=video_idx,
                         text=text, text_id=text_id) for text, text_id in zip(texts, text_ids))

        self.num_videos, self.num_texts = len(vid2txt), len(all_texts)
        self.texts, self.txt2vid, self.vid2txt = all_texts, txt2vid, vid2txt
        self._metainfo.update(texts=all_texts, txt2vid=txt2vid, vid2txt=vid2txt,
                              num_videos=self.num_videos, num_texts=self.num_texts)
        return data_list
