"""Common machinery of the video-text datasets: annotation files, video paths, bad samples."""
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .annotation_io import VIDEO_EXTENSIONS, get_str, strip_video_ext
from .errors import SampleLoadError

__all__ = ['BaseVideoTextDataset', 'VIDEO_ID_KEYS']

#: Annotation fields that may name the video, in order of preference.
VIDEO_ID_KEYS = ('video_id', 'clip_name', 'video', 'video_name', 'gif_name', 'image_id')


class BaseVideoTextDataset(BaseDataset):
    """Base of the video-text datasets (QA, captioning, retrieval).

    Args:
        ann_file: one annotation file or a list of files (concatenated in order). Relative
            paths are joined to ``data_root``.
        data_prefix: ``dict(video=ROOT)``: the folder holding the videos (joined to
            ``data_root`` when relative).
        pipeline: the transforms (see ``mplug2.datasets.transforms``).
        test_mode: evaluation layout of the annotations (see the subclasses).
        on_error: what to do when a sample's video cannot be loaded
            (:class:`~mplug2.datasets.errors.SampleLoadError`):

            * ``'raise'`` (default): raise the error; it names the file and the reason.
            * ``'skip'``: log a warning and use the next index instead (wrapping around).
              The replacement's ``DataSample`` carries ``skipped_samples``, a list of
              ``dict(index, filename, reason)`` for every sample it replaced, so that
              :class:`~mplug2.engine.hooks.BadSampleReportHook` can count and report them
              from the data batches (this survives dataloader worker processes).

            Other exceptions (bugs) always propagate.
        max_consecutive_skips: give up (raise) after this many consecutive bad samples.
        video_exts: extensions tried, in order, when an annotation names a video without
            an extension (``.mp4`` first, as the official code, then ``.avi`` ...).
        **kwargs: passed to :class:`mmengine.dataset.BaseDataset` (``data_root``,
            ``metainfo``, ``indices``, ``serialize_data``, ``lazy_init``).
    """

    def __init__(self,
                 ann_file: Union[str, Sequence[str]],
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 on_error: str = 'raise',
                 max_consecutive_skips: int = 50,
                 video_exts: Sequence[str] = VIDEO_EXTENSIONS,
                 **kwargs) -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if not ann_file:
            raise ValueError('ann_file is required')
        self.ann_files: List[str] = [ann_file] if isinstance(ann_file, str) else list(ann_file)
        self.on_error = on_error
        self.max_consecutive_skips = max_consecutive_skips
        self.video_exts = tuple(e if e.startswith('.') else '.' + e for e in video_exts)
        #: Bad samples replaced by this process (a dataloader worker counts its own).
        self.num_skipped = 0
        super().__init__(
            ann_file=self.ann_files[0],
            data_prefix=dict(video='') if data_prefix is None else dict(data_prefix),
            pipeline=list(pipeline),
            test_mode=test_mode,
            **kwargs)

    def _join_prefix(self):
        super()._join_prefix()
        if self.data_root:
            self.ann_files = [
                f if osp.isabs(f) else osp.join(self.data_root, f) for f in self.ann_files
            ]
        self.ann_file = self.ann_files[0]
        self.data_prefix.setdefault('video', '')

    # ------------------------------------------------------------------ parsing helpers
    @staticmethod
    def parse_video_name(record: dict, where: str) -> tuple:
        """``(video_id, video_name)``: the id without extension, and the name as given."""
        name = get_str(record, VIDEO_ID_KEYS, where, allow_int=True).strip()
        return strip_video_ext(name), name

    def resolve_video_path(self, video_name: str) -> tuple:
        """``(path, candidates)`` of a video under ``data_prefix['video']``.

        A name with an extension is used as is. Otherwise each of ``video_exts`` is tried
        and the first existing file wins; if none exists the first candidate is returned
        (the loader then reports the file as missing, with all the candidates).
        """
        root = self.data_prefix.get('video', '')
        if osp.splitext(video_name)[1].lower() in self.video_exts:
            path = osp.join(root, video_name)
            return path, [path]
        candidates = [osp.join(root, video_name + ext) for ext in self.video_exts]
        for path in candidates:
            if osp.isfile(path):
                return path, candidates
        return candidates[0], candidates

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if 'video_name' in info and 'filename' not in info:
            info['filename'], info['filename_candidates'] = self.resolve_video_path(
                info['video_name'])
        return info

    # ------------------------------------------------------------------ bad samples
    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        skipped = []
        current = idx
        for _ in range(self.max_consecutive_skips + 1):
            try:
                data = self.prepare_data(current)
                if data is None:
                    raise SampleLoadError(
                        self.get_data_info(current).get('filename'),
                        'the pipeline returned None')
            except SampleLoadError as err:
                if self.on_error == 'raise':
                    raise
                self.num_skipped += 1
                skipped.append(dict(index=current, filename=err.filename, reason=err.reason))
                print_log(f'{type(self).__name__}: skipped sample {current} ({err}); '
                          f'using sample {(current + 1) % len(self)} instead',
                          logger='current', level=30)
                current = (current + 1) % len(self)
                continue
            if skipped:
                sample = data.get('data_samples') if isinstance(data, dict) else None
                if sample is None:
                    raise TypeError('on_error="skip" needs the pipeline to end with a packing '
                                    'transform producing data_samples (PackMultimodalInputs)')
                previous = list(sample.get('skipped_samples', []))
                sample.set_field(previous + skipped, 'skipped_samples')
            return data
        reasons = '; '.join(f"{s['filename']}: {s['reason']}" for s in skipped[-3:])
        raise SampleLoadError(
            skipped[-1]['filename'], f'{len(skipped)} consecutive samples from index {idx} '
            f'could not be loaded (last: {reasons})')
