"""A synthetic "moving shapes" video-text dataset for smoke tests and tiny experiments.

Each clip shows one coloured shape (circle, square, triangle; red, green, blue, yellow) on
a dark background, moving left, right, up or down. Colour and shape can be read from any
single frame; the direction needs at least two frames in order. Clips come in time-reversed
pairs (clip ``2k + 1`` is clip ``2k`` played backwards, with the opposite direction), so the
direction cannot be learnt from a frame or from the set of frames, nor memorised from the
shape's colour, kind or position: only a model that sees the order of the frames (mPLUG-2's
local temporal modules) can answer it. The annotation files use the same
formats as the real datasets (official mPLUG-2 jsonl), so the real dataset classes read
them unchanged:

.. code-block:: text

    OUT_DIR/
      videos/shapes_train_00000.mp4 ...      (or .gif with video_format='gif')
      annotations/
        qa_train.jsonl, qa_test.jsonl          {"video_id", "question", "answer", "question_type"}
        qa_answer_list.json                    {"red": 0, "green": 1, ...} (official ans2label)
        caption_train.jsonl                    {"video_id", "caption"} (one line per caption)
        caption_test.jsonl                     {"video_id", "golden_captions": [...]}
        retrieval_train.jsonl                  {"clip_name", "caption"} (one line per caption)
        retrieval_test.jsonl                   {"clip_name", "caption": [...]}
        labels.json                            {video_id: {"split", "color", "shape", "direction"}}

Everything is deterministic given ``seed`` (the encoded bytes may differ between codec
builds; the pixels decoded back are the same up to compression).
"""
import json
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np

__all__ = ['generate_moving_shapes', 'render_moving_shape', 'COLORS', 'SHAPES', 'DIRECTIONS']

COLORS: Dict[str, Tuple[int, int, int]] = {
    'red': (230, 30, 30),
    'green': (30, 200, 30),
    'blue': (40, 70, 235),
    'yellow': (235, 225, 30),
}
SHAPES = ('circle', 'square', 'triangle')
#: direction -> (dx, dy) in image coordinates (y grows downwards).
DIRECTIONS: Dict[str, Tuple[int, int]] = {
    'left': (-1, 0),
    'right': (1, 0),
    'up': (0, -1),
    'down': (0, 1),
}
OPPOSITE = {'left': 'right', 'right': 'left', 'up': 'down', 'down': 'up'}
BACKGROUND = (16, 16, 16)

QUESTIONS = {
    'color': 'what color is the shape?',
    'shape': 'what shape is it?',
    'direction': 'which direction is the shape moving?',
}
_DIRECTION_PHRASE = {'left': 'to the left', 'right': 'to the right', 'up': 'upwards',
                     'down': 'downwards'}


def _shape_mask(shape: str, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    if shape == 'circle':
        return dx * dx + dy * dy <= radius * radius
    if shape == 'square':
        return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    if shape == 'triangle':  # apex up, base at the bottom, as wide as the square
        rows = dy + radius  # 0 at the apex, 2r at the base
        return (rows >= 0) & (rows <= 2 * radius) & (np.abs(dx) <= rows / 2)
    raise ValueError(f'unknown shape {shape!r}; expected one of {SHAPES}')


def _path_start(direction: str, size: int, across: float = None) -> Tuple[float, float]:
    """Centre of the shape in the first frame of a clip moving in ``direction``.

    Every path is centred on the frame along the motion (so a clip and its time reversal
    cover the same positions); ``across`` (default: the middle) places it across the motion.
    """
    travel = size / 2
    middle = (size - 1) / 2  # the midpoint of the inner range [r + 1, size - r - 2]
    dx, dy = DIRECTIONS[direction]
    along = middle - (dx + dy) * travel / 2
    across = middle if across is None else across
    return (along, across) if dx else (across, along)


def render_moving_shape(color: str, shape: str, direction: str, num_frames: int = 8,
                        size: int = 32, start: Tuple[float, float] = None) -> np.ndarray:
    """``(num_frames, size, size, 3)`` uint8 RGB frames of one shape moving in ``direction``.

    The shape travels half the frame width over the clip and stays fully inside. ``start``
    is the centre in the first frame; default: a path centred on the frame.
    """
    radius = max(2.0, size / 7)
    travel = size / 2
    dx, dy = DIRECTIONS[direction]
    if start is None:
        start = _path_start(direction, size)
    step = travel / max(num_frames - 1, 1)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    frames[:] = BACKGROUND
    for t in range(num_frames):
        mask = _shape_mask(shape, size, start[0] + dx * step * t, start[1] + dy * step * t, radius)
        frames[t][mask] = COLORS[color]
    return frames


def _write_mp4(path: str, frames: np.ndarray, fps: int) -> None:
    import av
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = 'yuv420p'
        stream.options = {'crf': '10', 'preset': 'ultrafast', 'tune': 'zerolatency'}
        stream.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_gif(path: str, frames: np.ndarray, fps: int) -> None:
    from PIL import Image
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps),
                   loop=0, optimize=False, disposal=1)


def _write_jsonl(path: str, records) -> None:
    with open(path, 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')


def generate_moving_shapes(out_dir: str, num_train: int = 64, num_test: int = 16,
                           num_frames: int = 8, size: int = 32, seed: int = 0,
                           video_format: str = 'mp4', fps: int = 8) -> Dict[str, str]:
    """Write the moving-shapes dataset under ``out_dir`` (layout in the module docstring).

    Args:
        num_train / num_test: number of videos of each split.
        num_frames: frames per video (>= 2, the direction needs motion).
        size: frame height and width in pixels (even, >= 16; libx264 needs even sizes).
        seed: everything (attributes, start positions) derives from it.
        video_format: ``'mp4'`` (H.264 via PyAV) or ``'gif'`` (PIL; lossless colours).
        fps: frame rate written into the files.

    Returns:
        ``{name: path}`` of the video folder and of every annotation file.
    """
    if num_frames < 2:
        raise ValueError('num_frames must be >= 2 (the direction needs motion)')
    if size < 16 or size % 2:
        raise ValueError('size must be an even number >= 16')
    if video_format not in ('mp4', 'gif'):
        raise ValueError(f"video_format must be 'mp4' or 'gif', got {video_format!r}")
    rng = np.random.default_rng(seed)
    video_dir = osp.join(out_dir, 'videos')
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(video_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    write = _write_mp4 if video_format == 'mp4' else _write_gif
    color_names, direction_names = list(COLORS), list(DIRECTIONS)

    labels = {}
    files = {'videos': video_dir}
    answers = color_names + list(SHAPES) + direction_names
    radius = max(2.0, size / 7)
    for split, count in (('train', num_train), ('test', num_test)):
        qa, caption_lines, caption_test, retrieval = [], [], [], []
        for i in range(count):
            video_id = f'shapes_{split}_{i:05d}'
            if i % 2 == 0:
                color = color_names[rng.integers(len(color_names))]
                shape = SHAPES[rng.integers(len(SHAPES))]
                direction = direction_names[rng.integers(len(direction_names))]
                # Jitter the path across the motion so that clips differ.
                across = float(rng.uniform(radius + 1, size - radius - 2))
                frames = render_moving_shape(color, shape, direction, num_frames, size,
                                             _path_start(direction, size, across))
            else:
                # The time-reversed twin of the previous clip: the same frames in reverse
                # order, so the shape moves the opposite way along the same path. No single
                # frame, nor the set of frames, tells the twins apart; only the order does.
                # Direction can neither be read from one frame nor be memorised from where
                # and what the shape is: it has to come from the temporal modules.
                direction = OPPOSITE[direction]
                frames = np.ascontiguousarray(frames[::-1])
            write(osp.join(video_dir, f'{video_id}.{video_format}'), frames, fps)
            labels[video_id] = dict(split=split, color=color, shape=shape, direction=direction)

            for question_type, answer in (('color', color), ('shape', shape),
                                          ('direction', direction)):
                qa.append(dict(video_id=video_id, question=QUESTIONS[question_type],
                               answer=answer, question_type=question_type))
            captions = [f'a {color} {shape} moves {direction}',
                        f'a {color} {shape} is moving {_DIRECTION_PHRASE[direction]}']
            caption_lines.extend(dict(video_id=video_id, caption=c) for c in captions)
            caption_test.append(dict(video_id=video_id, golden_captions=captions))
            if split == 'train':
                retrieval.extend(dict(clip_name=video_id, caption=c) for c in captions)
            else:
                retrieval.append(dict(clip_name=video_id, caption=captions))

        outputs = {
            f'qa_{split}': qa,
            f'caption_{split}': caption_lines if split == 'train' else caption_test,
            f'retrieval_{split}': retrieval,
        }
        for name, records in outputs.items():
            files[name] = osp.join(ann_dir, f'{name}.jsonl')
            _write_jsonl(files[name], records)

    files['qa_answer_list'] = osp.join(ann_dir, 'qa_answer_list.json')
    with open(files['qa_answer_list'], 'w') as f:
        json.dump({a: i for i, a in enumerate(answers)}, f, indent=0)
    files['labels'] = osp.join(ann_dir, 'labels.json')
    with open(files['labels'], 'w') as f:
        json.dump(labels, f, indent=1)
    return files
