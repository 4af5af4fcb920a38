import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

import mplug2  # noqa: F401
from mplug2.datasets import (VideoCaptionDataset, VideoQADataset, VideoRetrievalDataset,
                             load_answer_list)
from mplug2.datasets.moving_shapes import generate_moving_shapes, render_moving_shape

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _read(path):
    with open(path) as f:
        return f.read()


def test_deterministic_and_seed_dependent(tmp_path):
    a = generate_moving_shapes(str(tmp_path / 'a'), num_train=5, num_test=3, seed=3)
    b = generate_moving_shapes(str(tmp_path / 'b'), num_train=5, num_test=3, seed=3)
    c = generate_moving_shapes(str(tmp_path / 'c'), num_train=5, num_test=3, seed=4)
    for name in ('qa_train', 'caption_test', 'retrieval_train', 'labels'):
        assert _read(a[name]) == _read(b[name])
    assert _read(a['labels']) != _read(c['labels'])


def test_annotations_in_dataset_formats(shapes_dir):
    ann = shapes_dir / 'annotations'
    labels = json.loads((ann / 'labels.json').read_text())
    qa = VideoQADataset(str(ann / 'qa_train.jsonl'))
    assert len(qa) == 18 and len(load_answer_list(str(ann / 'qa_answer_list.json'))) == 11
    for i in range(3):
        info = qa.get_data_info(i)
        assert info['gt_answer'] == labels['shapes_train_00000'][info['question_type']]
    assert qa.get_data_info(2)['question'] == 'which direction is the shape moving?'
    caption = VideoCaptionDataset(str(ann / 'caption_test.jsonl'), test_mode=True)
    label = labels['shapes_test_00000']
    assert caption.get_data_info(0)['gt_caption'][0] == (
        f"a {label['color']} {label['shape']} moves {label['direction']}")
    assert len(VideoCaptionDataset(str(ann / 'caption_train.jsonl'))) == 12
    retrieval = VideoRetrievalDataset(str(ann / 'retrieval_test.jsonl'), test_mode=True)
    assert retrieval.num_videos == 4 and retrieval.num_texts == 8


def test_clips_come_in_time_reversed_twins(tmp_path):
    """Clip 2k+1 is clip 2k backwards: the direction is only in the order of the frames."""
    from mplug2.datasets.moving_shapes import OPPOSITE
    from mplug2.datasets.transforms import LoadVideoFrames
    generate_moving_shapes(str(tmp_path), num_train=6, num_test=2, num_frames=4, size=32,
                           seed=0, video_format='gif')
    labels = json.loads((tmp_path / 'annotations' / 'labels.json').read_text())
    load = LoadVideoFrames(num_frames=4, test_mode=True)

    def frames(video_id):
        return np.stack(load(dict(filename=str(tmp_path / 'videos' / f'{video_id}.gif')))['imgs'])

    for split, count in (('train', 6), ('test', 2)):
        for k in range(0, count, 2):
            first, second = f'shapes_{split}_{k:05d}', f'shapes_{split}_{k + 1:05d}'
            a, b = labels[first], labels[second]
            assert (a['color'], a['shape']) == (b['color'], b['shape'])
            assert b['direction'] == OPPOSITE[a['direction']]
            forward, backward = frames(first), frames(second)
            assert forward.shape == (4, 32, 32, 3)
            np.testing.assert_array_equal(forward[::-1], backward)
            assert not np.array_equal(forward[0], forward[-1])


def test_render_colour_shape_motion():
    frames = render_moving_shape('green', 'triangle', 'down', num_frames=4, size=32)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    masks = (frames == (30, 200, 30)).all(-1)
    rows = [np.nonzero(m)[0].mean() for m in masks]
    assert np.all(np.diff(rows) > 0)  # moving down
    assert masks[0].sum() == masks[-1].sum() > 10  # the shape stays inside the frame
    # The default path is centred: the first and last positions mirror around the middle.
    assert rows[0] + rows[-1] == pytest.approx(2 * np.nonzero(masks.any(0))[0].mean(), abs=1)
    up = (render_moving_shape('green', 'triangle', 'up', num_frames=4, size=32) == (30, 200, 30)).all(-1)
    np.testing.assert_array_equal(up[::-1], masks)  # "up" is "down" backwards
    # a triangle is wider at the bottom than at the top
    ys, xs = np.nonzero(masks[0])
    assert np.ptp(xs[ys == ys.max()]) > np.ptp(xs[ys == ys.min()])
    with pytest.raises(ValueError, match='num_frames'):
        generate_moving_shapes('/nonexistent', num_frames=1)


def test_cli(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'generate_moving_shapes',
        osp.join(ROOT, 'tools', 'dataset_converters', 'generate_moving_shapes.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    files = tool.main(['--out-dir', str(tmp_path), '--num-train', '3', '--num-test', '2',
                       '--frames', '6', '--size', '48', '--seed', '0', '--format', 'gif'])
    assert sorted(p.name for p in (tmp_path / 'videos').iterdir())[:1] == ['shapes_test_00000.gif']
    assert len(list((tmp_path / 'videos').iterdir())) == 5
    assert osp.isfile(files['retrieval_test'])
