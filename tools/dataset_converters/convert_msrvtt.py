#!/usr/bin/env python
"""Convert MSR-VTT annotations to the jsonl files read by mplug2's datasets.

Inputs (the files distributed with MSR-VTT and with the 1k-A split of JSFusion/CLIP4Clip):

* ``--data-json MSRVTT_data.json``: ``{"videos": [{"video_id": "video0", "split":
  "train" | "validate" | "test", ...}, ...], "sentences": [{"video_id": "video0",
  "caption": "...", "sen_id": 0}, ...]}``;
* ``--test-csv MSRVTT_JSFUSION_test.csv`` (optional): the 1k-A test split, a CSV with
  the columns ``key, vid_key, video_id, sentence`` (one sentence per video);
* ``--train-csv MSRVTT_train.9k.csv`` (optional): the 9k (or 7k) retrieval training
  videos, a CSV with a ``video_id`` column.

Outputs in ``--out-dir``:

* captioning (official splits: 6,513 train / 497 validate / 2,990 test videos):
  ``caption_train.jsonl`` (``{"video_id", "caption"}`` per caption),
  ``caption_val.jsonl`` and ``caption_test.jsonl`` (``{"video_id", "golden_captions"}``);
* with ``--test-csv``: ``caption_test1k.jsonl`` (the 1k-A videos with all their 20
  captions, for comparing with papers that caption-evaluate on 1k-A) and
  ``retrieval_test1k.jsonl`` (``{"clip_name", "caption"}``, the csv sentence);
* with ``--train-csv``: ``retrieval_train.jsonl`` (``{"clip_name", "caption"}`` per
  caption of the listed videos).
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import OrderedDict

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mplug2  # noqa: E402,F401  isort: skip
from mplug2.datasets.annotation_io import get_str, read_csv_rows  # noqa: E402
from mplug2.datasets.errors import AnnotationError  # noqa: E402

SPLITS = {'train': 'train', 'validate': 'val', 'test': 'test'}


def _write_jsonl(path, records):
    with open(path, 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')
    return path


def load_msrvtt_data(path):
    """``(split_of_video, captions_of_video)`` from ``MSRVTT_data.json``, in file order."""
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise AnnotationError(f'{path}:{err.lineno}', f'invalid JSON ({err.msg})') from None
    for key in ('videos', 'sentences'):
        if not isinstance(data.get(key) if isinstance(data, dict) else None, list):
            raise AnnotationError(path, f'expected an object with a {key!r} list')
    split_of = OrderedDict()
    for index, video in enumerate(data['videos']):
        where = f'{path}[videos][{index}]'
        split = get_str(video, 'split', where)
        if split not in SPLITS:
            raise AnnotationError(where, f'unknown split {split!r}; expected {list(SPLITS)}')
        split_of[get_str(video, 'video_id', where)] = SPLITS[split]
    captions = OrderedDict((v, []) for v in split_of)
    for index, sentence in enumerate(data['sentences']):
        where = f'{path}[sentences][{index}]'
        video_id = get_str(sentence, 'video_id', where)
        if video_id not in captions:
            raise AnnotationError(where, f'video {video_id!r} is not in the videos list')
        captions[video_id].append(get_str(sentence, 'caption', where).strip())
    return split_of, captions


def convert_msrvtt(data_json, out_dir, test_csv=None, train_csv=None):
    """Write the jsonl files described in the module docstring; returns ``{name: path}``."""
    os.makedirs(out_dir, exist_ok=True)
    split_of, captions = load_msrvtt_data(data_json)
    files = {}
    by_split = {s: [v for v, split in split_of.items() if split == s] for s in SPLITS.values()}
    files['caption_train'] = _write_jsonl(
        osp.join(out_dir, 'caption_train.jsonl'),
        (dict(video_id=v, caption=c) for v in by_split['train'] for c in captions[v]))
    for split in ('val', 'test'):
        files[f'caption_{split}'] = _write_jsonl(
            osp.join(out_dir, f'caption_{split}.jsonl'),
            (dict(video_id=v, golden_captions=captions[v]) for v in by_split[split]))

    if test_csv:
        rows = read_csv_rows(test_csv, required=('video_id', 'sentence'))
        for where, row in rows:
            if row['video_id'] not in captions:
                raise AnnotationError(where, f"video {row['video_id']!r} is not in {data_json}")
        files['retrieval_test1k'] = _write_jsonl(
            osp.join(out_dir, 'retrieval_test1k.jsonl'),
            (dict(clip_name=row['video_id'], caption=row['sentence'].strip()) for _, row in rows))
        videos = list(OrderedDict.fromkeys(row['video_id'] for _, row in rows))
        files['caption_test1k'] = _write_jsonl(
            osp.join(out_dir, 'caption_test1k.jsonl'),
            (dict(video_id=v, golden_captions=captions[v]) for v in videos))
    if train_csv:
        rows = read_csv_rows(train_csv, required=('video_id', ))
        for where, row in rows:
            if row['video_id'] not in captions:
                raise AnnotationError(where, f"video {row['video_id']!r} is not in {data_json}")
        files['retrieval_train'] = _write_jsonl(
            osp.join(out_dir, 'retrieval_train.jsonl'),
            (dict(clip_name=row['video_id'], caption=c) for _, row in rows
             for c in captions[row['video_id']]))
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-json', required=True, help='MSRVTT_data.json')
    parser.add_argument('--test-csv', help='1k-A test split csv (MSRVTT_JSFUSION_test.csv)')
    parser.add_argument('--train-csv', help='retrieval training csv (MSRVTT_train.9k.csv)')
    parser.add_argument('--out-dir', required=True, help='output folder')
    args = parser.parse_args(argv)
    files = convert_msrvtt(args.data_json, args.out_dir, args.test_csv, args.train_csv)
    for name, path in files.items():
        print(f'{name:18s} {path}')
    return files


if __name__ == '__main__':
    main()
