#!/usr/bin/env python
"""Convert the released VideoQA annotations to the official mPLUG-2 jsonl format.

Output lines: ``{"video_id": str, "question": str, "answer": str, "question_id": int,
"question_type": str}`` (``question_type`` = the question word: what/who/how/when/where,
else other), read by ``mplug2.datasets.VideoQADataset``.

Formats (``--format``):

* ``msrvtt-qa``: ``train_qa.json`` / ``val_qa.json`` / ``test_qa.json`` of Xu et al. 2017:
  a JSON list of ``{"id": int, "video_id": int, "question": str, "answer": str,
  "category_id": int}``; ``video_id`` N becomes ``"videoN"`` (the MSR-VTT file names).
* ``msvd-qa``: the same JSON layout with ``video_id`` N meaning ``vidN``;
  ``--mapping youtube_mapping.txt`` (lines ``<youtube clip name> vidN``) turns it into the
  clip name of the MSVD video file (e.g. ``-4wsuPCjDBc_5_15``).
* ``tgif-frameqa``: ``Train_frameqa_question.tsv`` / ``Test_frameqa_question.tsv``: a
  tab-separated file with the columns ``gif_name, question, answer`` (plus ``vid_id``,
  ``key``, ``type``); ``video_id`` is ``gif_name`` (the ``.gif`` file name).

``--ans2label PATH`` also writes the official answer-list file: ``{answer: label}`` by
decreasing frequency (use it on the training split for ``VideoQADataset(answer_list=...)``).
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
from collections import Counter

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mplug2  # noqa: E402,F401  isort: skip
from mplug2.datasets.annotation_io import get_field, get_str, iter_records  # noqa: E402
from mplug2.datasets.errors import AnnotationError  # noqa: E402

QUESTION_WORDS = ('what', 'who', 'how', 'when', 'where')


def question_type(question: str) -> str:
    words = question.strip().lower().split()
    return words[0] if words and words[0] in QUESTION_WORDS else 'other'


def load_youtube_mapping(path):
    """``{'vidN': clip_name}`` from MSVD's ``youtube_mapping.txt``."""
    mapping = {}
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise AnnotationError(f'{path}:{lineno}',
                                      f'expected "<clip name> vidN", got {line.strip()!r}')
            mapping[parts[1]] = parts[0]
    return mapping


def _json_records(path, video_name):
    records = []
    for position, (where, record) in enumerate(iter_records(path)):
        video = get_field(record, 'video_id', where)
        if isinstance(video, bool) or not isinstance(video, (int, str)):
            raise AnnotationError(where, f"field 'video_id' must be an int, got {video!r}")
        question = get_str(record, 'question', where)
        records.append(dict(video_id=video_name(str(video), where), question=question,
                            answer=get_str(record, 'answer', where),
                            question_id=record.get('id', position),
                            question_type=question_type(question)))
    return records


def _tsv_records(path):
    records = []
    with open(path, newline='') as f:
        reader = csv.DictReader(f, delimiter='\t')
        missing = {'gif_name', 'question', 'answer'} - set(reader.fieldnames or [])
        if missing:
            raise AnnotationError(f'{path}:1', f'missing column(s) {sorted(missing)} in '
                                  f'header {reader.fieldnames}')
        for row in reader:
            where = f'{path}:{reader.line_num}'
            for column in ('gif_name', 'question', 'answer'):
                if not (row.get(column) or '').strip():
                    raise AnnotationError(where, f'empty value in column {column!r}')
            records.append(dict(video_id=row['gif_name'].strip(), question=row['question'],
                                answer=row['answer'].strip(),
                                question_id=len(records),
                                question_type=question_type(row['question'])))
    return records


def convert_videoqa(src, out, fmt, mapping=None, ans2label=None):
    """Convert ``src`` to the jsonl file ``out``; returns the records written."""
    if fmt == 'msrvtt-qa':
        records = _json_records(src, lambda v, where: v if v.startswith('video') else f'video{v}')
    elif fmt == 'msvd-qa':
        names = load_youtube_mapping(mapping) if mapping else None

        def video_name(v, where):
            key = v if v.startswith('vid') else f'vid{v}'
            if names is None:
                return key
            if key not in names:
                raise AnnotationError(where, f'{key} is not in the mapping file {mapping}')
            return names[key]

        records = _json_records(src, video_name)
    elif fmt == 'tgif-frameqa':
        records = _tsv_records(src)
    else:
        raise ValueError(f'unknown format {fmt!r}')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')
    if ans2label:
        counts = Counter(r['answer'] for r in records)
        ordered = sorted(counts, key=lambda a: (-counts[a], a))
        with open(ans2label, 'w') as f:
            json.dump({a: i for i, a in enumerate(ordered)}, f)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='the released annotation file (json or tsv)')
    parser.add_argument('out', help='output .jsonl file')
    parser.add_argument('--format', required=True,
                        choices=['msrvtt-qa', 'msvd-qa', 'tgif-frameqa'])
    parser.add_argument('--mapping', help='MSVD youtube_mapping.txt (msvd-qa)')
    parser.add_argument('--ans2label', help='also write {answer: label} of this file')
    args = parser.parse_args(argv)
    records = convert_videoqa(args.src, args.out, args.format, args.mapping, args.ans2label)
    print(f'wrote {len(records)} questions to {args.out}')
    return records


if __name__ == '__main__':
    main()
