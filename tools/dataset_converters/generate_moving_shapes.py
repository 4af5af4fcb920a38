#!/usr/bin/env python
"""Generate the synthetic "moving shapes" video-text dataset (QA, captioning, retrieval).

Example::

    python tools/dataset_converters/generate_moving_shapes.py --out-dir data/moving_shapes \
        --num-train 256 --num-test 64 --frames 8 --size 32 --seed 0

See ``mplug2/datasets/moving_shapes.py`` for the layout of the output.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mplug2  # noqa: E402,F401  isort: skip  (compatibility layer first)
from mplug2.datasets.moving_shapes import generate_moving_shapes  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', required=True, help='output folder (created)')
    parser.add_argument('--num-train', type=int, default=64, help='training videos')
    parser.add_argument('--num-test', type=int, default=16, help='test videos')
    parser.add_argument('--frames', type=int, default=8, help='frames per video')
    parser.add_argument('--size', type=int, default=32, help='frame height and width (even)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--format', choices=['mp4', 'gif'], default='mp4',
                        help='video container: mp4 (H.264 via PyAV) or gif (PIL)')
    parser.add_argument('--fps', type=int, default=8, help='frame rate written to the files')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    files = generate_moving_shapes(args.out_dir, num_train=args.num_train,
                                   num_test=args.num_test, num_frames=args.frames,
                                   size=args.size, seed=args.seed, video_format=args.format,
                                   fps=args.fps)
    print(f'wrote {args.num_train + args.num_test} videos in {time.time() - start:.1f}s:')
    for name, path in files.items():
        print(f'  {name:16s} {path}')
    return files


if __name__ == '__main__':
    main()
