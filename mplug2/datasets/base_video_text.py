"""Common machinery of the video-text datasets: annotation files, video paths, bad samples."""
import copy
import os.path as osp
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
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
            * ``'skip'``: log a warning (once per bad sample and process) and

              - training (``test_mode=False``): use the next index instead (wrapping
                around; deterministic: the walk is the same whatever this process already
                knows). The replacement's ``DataSample`` carries ``skipped_samples``, a list
                of ``dict(index, filename, reason)`` for the bad samples it walked past;
              - evaluation (``test_mode=True``): a bad sample must not take another
                sample's identity (a retrieval video would bring the other video's texts
                and ``text_id``, a QA sample another question and answer). The dataset
                returns a placeholder instead: sample ``idx``'s own annotations and
                identifiers (``sample_idx``, ``video_idx``, ``text``, ``text_id``,
                ``question_id`` ...), ``missing=True`` in its metainfo, and all-zero
                ``inputs`` shaped as the next good sample's. Its ``skipped_samples`` lists
                it (then the bad samples met on the way to that good one). The retrieval
                loops rank a missing video last for every query
                (:mod:`mplug2.engine.runner.retrieval_loop`): this keeps the metrics over
                the benchmark's texts and videos, a lost video counting as a miss, rather
                than refusing skip mode. Other metrics score the model's output on the
                blank video.

              :class:`~mplug2.engine.hooks.BadSampleReportHook` counts and reports the
              ``skipped_samples`` records from the data batches (this survives dataloader
              worker processes), each bad sample once per epoch. A sample that failed
              once is not loaded again by the same process (loading errors are taken as
              permanent); the walk still passes over it, so the replacements do not change.

            Other exceptions (bugs) always propagate.
        max_consecutive_skips: give up (raise) after this many consecutive bad samples.

    Randomness: an index that carries a seed (:class:`~mplug2.datasets.samplers.SeededIndex`,
    from ``sampler=dict(type='SeededSampler')``) seeds numpy's and Python's global random
    state before the pipeline runs, so random frames and augmentations depend only on
    (run seed, epoch, index) and a resumed run reproduces the uninterrupted one exactly. In
    the main process (``num_workers=0``) the previous global state is restored afterwards.
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
        #: Bad samples met by this process, ``{index: dict(index, filename, reason)}``: a
        #: loading error is taken as permanent (a missing or corrupt file), so a walk does
        #: not load them again (a dataloader worker keeps its own).
        self._bad_samples: Dict[int, dict] = {}
        #: Test mode: the annotation fields of those samples, for their placeholders.
        self._bad_annotations: Dict[int, dict] = {}
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
    @property
    def num_skipped(self) -> int:
        """How many distinct bad samples this process has met (a dataloader worker counts
        its own)."""
        return len(self._bad_samples)

    def _prepare(self, idx: int) -> Tuple[Optional[dict], Optional[SampleLoadError], dict]:
        """Run the pipeline on sample ``idx``: ``(data, None, results)``, or ``(None, error,
        results)`` when it raised a :class:`SampleLoadError` or returned None. ``results``
        is the dict as the transforms left it, up to the one that failed (the annotation
        fields, processed by the text transforms that precede the loading)."""
        results = self.get_data_info(idx)
        transforms = getattr(self.pipeline, 'transforms', None)
        if transforms is None:
            transforms = [self.pipeline]
        data = results
        try:
            for transform in transforms:
                results = data
                data = transform(data)
                if data is None:
                    break
        except SampleLoadError as err:
            return None, err, results
        if data is None:
            return None, SampleLoadError(results.get('filename'),
                                         'the pipeline returned None'), results
        return data, None, results

    def __getitem__(self, idx: int) -> dict:
        seed = getattr(idx, 'seed', None)
        if seed is None:
            return self._get_sample(int(idx))
        in_worker = torch.utils.data.get_worker_info() is not None
        saved = None if in_worker else (np.random.get_state(), random.getstate())
        np.random.seed(seed)
        random.seed(seed)
        try:
            return self._get_sample(int(idx))
        finally:
            if saved is not None:
                np.random.set_state(saved[0])
                random.setstate(saved[1])

    def _get_sample(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        skipped = []
        current = idx
        for _ in range(self.max_consecutive_skips + 1):
            record = self._bad_samples.get(current)  # known bad in this process: not retried
            if record is None:
                data, err, results = self._prepare(current)
                if err is None:
                    break
                if self.on_error == 'raise':
                    raise err
                record = dict(index=current, filename=err.filename, reason=err.reason)
                self._bad_samples[current] = record
                if self.test_mode:
                    self._bad_annotations[current] = results
                action = ('it is evaluated as missing' if self.test_mode else
                          f'using sample {(current + 1) % len(self)} instead')
                print_log(f'{type(self).__name__}: skipped sample {current} ({err}); {action}',
                          logger='current', level=30)
            skipped.append(dict(record))
            current = (current + 1) % len(self)
        else:
            reasons = '; '.join(f"{s['filename']}: {s['reason']}" for s in skipped[-3:])
            raise SampleLoadError(
                skipped[-1]['filename'], f'{len(skipped)} consecutive samples from index {idx} '
                f'could not be loaded (last: {reasons})')
        if not skipped:
            return data
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is None:
            raise TypeError('on_error="skip" needs the pipeline to end with a packing '
                            'transform producing data_samples (PackMultimodalInputs)')
        if self.test_mode:
            data = self._missing_placeholder(idx, data)
            sample = data['data_samples']
        previous = list(sample.get('skipped_samples', []))
        sample.set_field(previous + skipped, 'skipped_samples')
        return data

    def _missing_placeholder(self, idx: int, template: dict) -> dict:
        """The stand-in of bad sample ``idx`` at evaluation: the identity and annotations of
        ``idx``, ``missing=True`` (metainfo) and all-zero ``inputs`` of the template's shape.

        ``template`` is the next good sample (the replacement of training mode): it gives
        the shape of the inputs and which fields the packing transform keeps; the values
        come from sample ``idx``'s own annotations, as the transforms before the failing
        one (e.g. ``CleanCaption``) left them. Fields that only loading produces
        (``frame_inds``, ``img_shape`` ...) are left out.
        """
        sample = template['data_samples']
        annotations = self._bad_annotations.get(idx)
        annotations = copy.deepcopy(annotations if annotations is not None
                                    else self.get_data_info(idx))
        annotations['sample_idx'] = idx
        meta_keys = set(sample.metainfo_keys())
        placeholder = type(sample)()
        placeholder.set_metainfo({k: annotations[k] for k in meta_keys if k in annotations})
        placeholder.set_metainfo(dict(missing=True))
        for key in sample.keys():
            if key not in meta_keys and key != 'skipped_samples' and key in annotations:
                placeholder.set_field(annotations[key], key)
        inputs = template['inputs']
        inputs = (torch.zeros_like(inputs) if isinstance(inputs, torch.Tensor) else
                  np.zeros_like(np.asarray(inputs)))
        return dict(template, inputs=inputs, data_samples=placeholder)
