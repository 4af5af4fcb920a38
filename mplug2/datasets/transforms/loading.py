"""Video loading: the official frame sampling, decoding with decord / PyAV / PIL.

The pipeline keys follow mmaction2, so its spatial transforms (``mmaction.Resize``,
``mmaction.RandomResizedCrop``, ``mmaction.Flip``) run on the result unchanged:

* :class:`VideoInit` opens ``filename`` -> ``video_reader``, ``total_frames``, ``avg_fps``;
* :class:`SampleVideoFrames` -> ``frame_inds`` (the official ``rand`` / ``middle`` sampling);
* :class:`VideoDecode` -> ``imgs`` (list of ``H x W x 3`` uint8 RGB arrays), ``img_shape``;
* :class:`LoadVideoFrames` does the three in one step.

A missing, unreadable or corrupt file raises :class:`~mplug2.datasets.errors.VideoLoadError`
naming the file and the reason.
"""
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mplug2.registry import TRANSFORMS
from ..errors import VideoLoadError

__all__ = [
    'sample_frame_indices', 'open_video', 'VideoInit', 'SampleVideoFrames', 'VideoDecode',
    'LoadVideoFrames'
]

RandomSource = Union[None, int, np.random.Generator, np.random.RandomState]


# ---------------------------------------------------------------------------
# Frame sampling
# ---------------------------------------------------------------------------
def _as_rng(rng: RandomSource):
    """``None`` -> numpy's global state (seeded by MMEngine per worker); int -> a Generator."""
    if rng is None:
        return np.random  # the module: ``random(size)`` and ``permutation(n)`` as below
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    return rng


def sample_frame_indices(num_video_frames: int, num_segments: int, mode: str = 'rand',
                         rng: RandomSource = None) -> np.ndarray:
    """The frame indices that mPLUG-2 feeds to the model, as its data code computes them.

    The video is cut into ``S = min(num_segments, num_video_frames)`` segments at
    ``edges = int(linspace(0, num_video_frames, S + 1))``; segment ``i`` is
    ``[edges[i], edges[i+1] - 1]`` and:

    * ``'rand'`` (training): a uniform random frame of ``range(edges[i], edges[i+1] - 1)``.
      The end is exclusive, so the last frame of a segment is never chosen. When any
      segment holds a single frame this range is empty for it, and the official code
      falls back to ``S`` distinct random frames of the whole video, sorted; so does this.
    * ``'middle'`` (test): ``(edges[i] + edges[i+1] - 1) // 2``.

    Videos shorter than ``num_segments`` are padded with their last index.

    Args:
        num_video_frames: number of frames of the video (>= 1).
        num_segments: number of frames to sample (T).
        mode: ``'rand'`` or ``'middle'``.
        rng: random source of ``'rand'``: ``None`` (numpy's global state), an int seed, a
            ``np.random.Generator`` or ``np.random.RandomState``.

    Returns:
        ``np.ndarray`` of ``num_segments`` int64 indices, non-decreasing.
    """
    if num_video_frames < 1:
        raise ValueError(f'a video needs at least one frame, got {num_video_frames}')
    if num_segments < 1:
        raise ValueError(f'num_segments must be >= 1, got {num_segments}')
    num_sampled = min(num_segments, num_video_frames)
    edges = np.linspace(0, num_video_frames, num_sampled + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:] - 1
    if mode == 'rand':
        rng = _as_rng(rng)
        widths = ends - starts
        if np.all(widths > 0):
            offsets = np.floor(rng.random(num_sampled) * widths).astype(np.int64)
            indices = starts + np.minimum(offsets, widths - 1)
        else:
            indices = np.sort(rng.permutation(num_video_frames)[:num_sampled]).astype(np.int64)
    elif mode == 'middle':
        indices = (starts + ends) // 2
    else:
        raise ValueError(f"mode must be 'rand' or 'middle', got {mode!r}")
    if num_sampled < num_segments:
        indices = np.concatenate(
            [indices, np.full(num_segments - num_sampled, indices[-1], dtype=np.int64)])
    return indices


# ---------------------------------------------------------------------------
# Readers: a common interface over decord, PyAV and PIL (GIF)
# ---------------------------------------------------------------------------
class _Reader:
    backend = ''

    def __init__(self, path: str) -> None:
        self.path = path

    def __len__(self) -> int:
        return self.num_frames

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 RGB."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class _DecordReader(_Reader):
    backend = 'decord'

    def __init__(self, path: str, num_threads: int = 1) -> None:
        super().__init__(path)
        import decord
        self._reader = decord.VideoReader(path, num_threads=num_threads)
        self.num_frames = len(self._reader)
        self.fps = float(self._reader.get_avg_fps())

    def get_frames(self, indices):
        return self._reader.get_batch(list(map(int, indices))).asnumpy()

    def close(self):
        self._reader = None


class _PyAVReader(_Reader):
    """Sequential decoding; keeps only the requested frames (no seeking: exact indices)."""
    backend = 'pyav'

    def __init__(self, path: str) -> None:
        super().__init__(path)
        import av
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError('the file has no video stream')
            stream = container.streams.video[0]
            self.fps = float(stream.average_rate or 0.0)
            # The header count is unreliable for some containers: count decoded frames.
            self.num_frames = sum(1 for _ in container.decode(stream))

    def get_frames(self, indices):
        import av
        wanted = set(int(i) for i in indices)
        last = max(wanted)
        frames = {}
        with av.open(self.path) as container:
            for index, frame in enumerate(container.decode(container.streams.video[0])):
                if index > last:
                    break
                if index in wanted:
                    frames[index] = frame.to_ndarray(format='rgb24')
        missing = [i for i in wanted if i not in frames]
        if missing:
            raise ValueError(f'frames {missing[:5]} could not be decoded')
        return np.stack([frames[int(i)] for i in indices])


class _GifReader(_Reader):
    backend = 'pil'

    def __init__(self, path: str) -> None:
        super().__init__(path)
        from PIL import Image
        self._image = Image.open(path)
        self._image.load()
        self.num_frames = int(getattr(self._image, 'n_frames', 1))
        duration_ms = self._image.info.get('duration') or 0
        self.fps = 1000.0 / duration_ms if duration_ms else 0.0

    def get_frames(self, indices):
        frames = []
        for index in indices:
            self._image.seek(int(index))
            frames.append(np.asarray(self._image.convert('RGB')))
        return np.stack(frames)

    def close(self):
        self._image.close()


def open_video(path: str, backend: str = 'auto', num_threads: int = 1) -> _Reader:
    """Open a video or GIF, or raise :class:`VideoLoadError` naming the file and the reason.

    ``backend='auto'``: ``.gif`` files with PIL (as the official TGIF code), everything
    else with decord, then PyAV if decord fails. ``'decord'``, ``'pyav'``, ``'pil'`` force
    one backend.
    """
    if backend not in ('auto', 'decord', 'pyav', 'pil'):
        raise ValueError(f"backend must be 'auto', 'decord', 'pyav' or 'pil', got {backend!r}")
    if not osp.isfile(path):
        reason = 'is a directory, not a file' if osp.isdir(path) else 'file not found'
        raise VideoLoadError(path, reason)
    if osp.getsize(path) == 0:
        raise VideoLoadError(path, 'the file is empty (0 bytes)')
    if backend == 'auto':
        chain = ['pil'] if path.lower().endswith('.gif') else ['decord', 'pyav']
    else:
        chain = [backend]
    failures = []
    for name in chain:
        try:
            if name == 'decord':
                reader = _DecordReader(path, num_threads)
            elif name == 'pyav':
                reader = _PyAVReader(path)
            else:
                reader = _GifReader(path)
        except ImportError as err:
            failures.append(f'{name}: not installed ({err})')
            continue
        except Exception as err:  # decoders raise many types; the reason is kept
            failures.append(f'{name}: {_one_line(err)}')
            continue
        if reader.num_frames < 1:
            failures.append(f'{name}: the video has no frames')
            continue
        return reader
    raise VideoLoadError(path, 'corrupt or unreadable video (' + '; '.join(failures) + ')')


def _one_line(err: Exception, limit: int = 300) -> str:
    text = ' '.join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[:limit] + '...'


# ---------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------
@TRANSFORMS.register_module()
class VideoInit(BaseTransform):
    """Open ``results['filename']``.

    Added keys: ``video_reader``, ``total_frames``, ``avg_fps``, ``video_backend``.

    Args:
        backend: ``'auto'`` (GIF with PIL, else decord with a PyAV fallback), ``'decord'``,
            ``'pyav'`` or ``'pil'``.
        num_threads: decord decoding threads.
    """

    def __init__(self, backend: str = 'auto', num_threads: int = 1) -> None:
        self.backend = backend
        self.num_threads = num_threads

    def transform(self, results: dict) -> dict:
        try:
            reader = open_video(results['filename'], self.backend, self.num_threads)
        except VideoLoadError as err:
            tried = results.get('filename_candidates') or []
            if err.reason == 'file not found' and len(tried) > 1:
                others = ', '.join(osp.basename(t) for t in tried if t != err.filename)
                raise VideoLoadError(err.filename,
                                     f'file not found (also tried {others})') from None
            raise
        results['video_reader'] = reader
        results['total_frames'] = reader.num_frames
        results['avg_fps'] = reader.fps
        results['video_backend'] = reader.backend
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(backend={self.backend!r}, num_threads={self.num_threads})'


@TRANSFORMS.register_module()
class SampleVideoFrames(BaseTransform):
    """The official segment-based sampling (:func:`sample_frame_indices`).

    Required key ``total_frames``; added keys ``frame_inds`` (int64 array of
    ``num_frames``), ``clip_len`` (= ``num_frames``), ``num_clips`` (1), ``frame_interval``
    (None), which is what mmaction2's decoders and ``FormatShape`` expect.

    Args:
        num_frames: T (16 in the official configs).
        test_mode: picks ``'middle'`` when True, ``'rand'`` when False.
        mode: force ``'rand'`` or ``'middle'`` (overrides ``test_mode``).
        seed: fixed seed (for tests and debugging); None uses numpy's global state,
            which MMEngine seeds per worker.
    """

    def __init__(self, num_frames: int = 16, test_mode: bool = False,
                 mode: Optional[str] = None, seed: Optional[int] = None) -> None:
        if mode not in (None, 'rand', 'middle'):
            raise ValueError(f"mode must be None, 'rand' or 'middle', got {mode!r}")
        self.num_frames = num_frames
        self.test_mode = test_mode
        self.mode = mode or ('middle' if test_mode else 'rand')
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def transform(self, results: dict) -> dict:
        results['frame_inds'] = sample_frame_indices(
            results['total_frames'], self.num_frames, self.mode, self._rng)
        results['clip_len'] = self.num_frames
        results['num_clips'] = 1
        results['frame_interval'] = None
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_frames={self.num_frames}, mode={self.mode!r}, '
                f'seed={self.seed})')


@TRANSFORMS.register_module()
class VideoDecode(BaseTransform):
    """Decode ``frame_inds`` from ``video_reader``.

    Added keys: ``imgs`` (list of ``H x W x 3`` uint8 RGB arrays), ``img_shape``,
    ``original_shape``, ``modality`` (``'RGB'``, for mmaction2's ``Flip``);
    ``video_reader`` is closed and removed.
    """

    def transform(self, results: dict) -> dict:
        reader = results.pop('video_reader')
        indices = np.asarray(results['frame_inds'], dtype=np.int64).reshape(-1)
        try:
            if indices.size and (indices.min() < 0 or indices.max() >= reader.num_frames):
                raise ValueError(f'frame indices {indices.tolist()} out of range for '
                                 f'{reader.num_frames} frames')
            frames = reader.get_frames(indices)
        except VideoLoadError:
            raise
        except Exception as err:
            raise VideoLoadError(reader.path, f'decoding with {reader.backend} failed: '
                                 f'{_one_line(err)}') from err
        finally:
            reader.close()
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise VideoLoadError(reader.path, f'unexpected decoded frames: shape {frames.shape}, '
                                 f'dtype {frames.dtype}')
        results['imgs'] = list(frames)
        results['img_shape'] = frames.shape[1:3]
        results['original_shape'] = frames.shape[1:3]
        results.setdefault('modality', 'RGB')  # read by mmaction2's Flip
        return results


@TRANSFORMS.register_module()
class LoadVideoFrames(BaseTransform):
    """:class:`VideoInit` + :class:`SampleVideoFrames` + :class:`VideoDecode` in one step.

    Args:
        num_frames, test_mode, mode, seed: see :class:`SampleVideoFrames`.
        backend, num_threads: see :class:`VideoInit`.
    """

    def __init__(self, num_frames: int = 16, test_mode: bool = False,
                 mode: Optional[str] = None, seed: Optional[int] = None,
                 backend: str = 'auto', num_threads: int = 1) -> None:
        self.init = VideoInit(backend, num_threads)
        self.sample = SampleVideoFrames(num_frames, test_mode, mode, seed)
        self.decode = VideoDecode()

    def transform(self, results: dict) -> dict:
        return self.decode(self.sample(self.init(results)))

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.init!r}, {self.sample!r})'
