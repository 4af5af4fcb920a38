import json

import numpy as np
import pytest
import torch

import mplug2  # noqa: F401
from mplug2.datasets import VideoLoadError, VideoQADataset
from mplug2.datasets.moving_shapes import COLORS
from mplug2.datasets.transforms import (LoadVideoFrames, PackMultimodalInputs, VideoResize,
                                        open_video)
from mplug2.models.data_preprocessors import CLIP_MEAN, CLIP_STD, MPLUG2DataPreprocessor


def _labels(root):
    return json.loads((root / 'annotations' / 'labels.json').read_text())


def _centroid(frame):
    mask = np.abs(frame.astype(int) - 16).sum(-1) > 90
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean(), frame[mask].mean(0)


@pytest.mark.parametrize('backend', ['decord', 'pyav'])
def test_decode_moving_shape_mp4(shapes_dir, backend):
    video_id = 'shapes_train_00000'
    label = _labels(shapes_dir)[video_id]
    results = LoadVideoFrames(num_frames=8, test_mode=True, backend=backend)(
        dict(filename=str(shapes_dir / 'videos' / f'{video_id}.mp4')))
    assert results['total_frames'] == 8 and results['frame_inds'].tolist() == list(range(8))
    frames = np.stack(results['imgs'])
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    x0, y0, colour = _centroid(frames[0])
    x1, y1, _ = _centroid(frames[-1])
    # the colour survives H.264 compression closely enough to be recognised
    nearest = min(COLORS, key=lambda c: np.abs(np.array(COLORS[c]) - colour).sum())
    assert nearest == label['color']
    dx, dy = x1 - x0, y1 - y0
    direction = (('right' if dx > 0 else 'left') if abs(dx) > abs(dy) else
                 ('down' if dy > 0 else 'up'))
    assert direction == label['direction']
    assert max(abs(dx), abs(dy)) == pytest.approx(16, abs=1.5)


def test_pyav_and_decord_agree(shapes_dir):
    path = str(shapes_dir / 'videos' / 'shapes_test_00001.mp4')
    a = open_video(path, 'decord').get_frames([0, 3, 7])
    b = open_video(path, 'pyav').get_frames([0, 3, 7])
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_gif_with_pil(shapes_gif_dir):
    label = _labels(shapes_gif_dir)['shapes_test_00000']
    results = LoadVideoFrames(num_frames=4, test_mode=True)(
        dict(filename=str(shapes_gif_dir / 'videos' / 'shapes_test_00000.gif')))
    assert results['video_backend'] == 'pil'
    assert results['frame_inds'].tolist() == [0, 2, 4, 6]
    frame = results['imgs'][0]
    _, _, colour = _centroid(frame)
    assert tuple(np.round(colour).astype(int)) == COLORS[label['color']]  # GIF is lossless


def test_missing_empty_and_corrupt_videos(tmp_path):
    loader = LoadVideoFrames(num_frames=4)
    missing = tmp_path / 'nope.mp4'
    with pytest.raises(VideoLoadError, match='nope.mp4.*file not found') as info:
        loader(dict(filename=str(missing)))
    assert info.value.filename == str(missing)
    empty = tmp_path / 'empty.mp4'
    empty.write_bytes(b'')
    with pytest.raises(VideoLoadError, match='empty.mp4.*empty'):
        loader(dict(filename=str(empty)))
    corrupt = tmp_path / 'corrupt.mp4'
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoLoadError, match=r'corrupt\.mp4.*corrupt or unreadable.*decord.*pyav'):
        loader(dict(filename=str(corrupt)))
    bad_gif = tmp_path / 'bad.gif'
    bad_gif.write_bytes(b'GIF89a-not-really')
    with pytest.raises(VideoLoadError, match=r'bad\.gif.*pil'):
        loader(dict(filename=str(bad_gif)))
    with pytest.raises(VideoLoadError, match='also tried nope.avi'):
        loader(dict(filename=str(missing), filename_candidates=[str(missing), 'nope.avi']))


def test_video_resize_matches_torch_nearest():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (36, 48, 3), dtype=np.uint8) for _ in range(3)]
    out = VideoResize(scale=(20, 16))(dict(imgs=list(frames)))
    assert out['img_shape'] == (16, 20) and out['imgs'][0].shape == (16, 20, 3)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float(), size=(16, 20),
        mode='nearest').to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(np.stack(out['imgs']), expected)
    bicubic = VideoResize(16, interpolation='bicubic')(dict(imgs=list(frames)))
    assert bicubic['imgs'][0].dtype == np.uint8 and bicubic['imgs'][0].shape == (16, 16, 3)


def test_full_pipeline_and_preprocessor(shapes_dir):
    pipeline = [
        dict(type='mplug2.LoadVideoFrames', num_frames=4, test_mode=True),
        dict(type='mplug2.VideoResize', scale=24),
        dict(type='mplug2.CleanQuestion', max_words=50),
        dict(type='mplug2.PackMultimodalInputs'),
    ]
    dataset = VideoQADataset(
        str(shapes_dir / 'annotations' / 'qa_test.jsonl'),
        data_prefix=dict(video=str(shapes_dir / 'videos')), pipeline=pipeline, test_mode=True)
    data = dataset[0]
    inputs, sample = data['inputs'], data['data_samples']
    assert inputs.shape == (3, 4, 24, 24) and inputs.dtype == torch.uint8
    assert sample.video_id == 'shapes_test_00000' and sample.question == 'what color is the shape'
    assert sample.frame_inds.tolist() == [0, 2, 4, 6]

    preprocessor = MPLUG2DataPreprocessor()
    batch = preprocessor(dict(inputs=[data['inputs'], dataset[1]['inputs']],
                              data_samples=[sample, dataset[1]['data_samples']]))
    out = batch['inputs']
    assert out.shape == (2, 3, 4, 24, 24) and out.dtype == torch.float32
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]) * 255
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]) * 255
    for c in range(3):
        value = inputs[c, 2, 5, 7].item()
        assert out[0, c, 2, 5, 7].item() == pytest.approx((value - mean[c].item()) / std[c].item(),
                                                          rel=1e-6)
    expected = (inputs.float() - mean.view(3, 1, 1, 1)) / std.view(3, 1, 1, 1)
    assert torch.allclose(out[0], expected, atol=1e-6)
    assert batch['data_samples'][0] is not None and len(batch['data_samples']) == 2


def test_preprocessor_images_and_custom_stats():
    pre = MPLUG2DataPreprocessor(mean=(0, 0, 0), std=(255, 255, 255))
    images = [torch.full((3, 2, 2), 255, dtype=torch.uint8),
              torch.zeros(3, 2, 2, dtype=torch.uint8)]
    out = pre(dict(inputs=images))['inputs']
    assert out.shape == (2, 3, 2, 2)
    assert torch.all(out[0] == 1) and torch.all(out[1] == 0)
    clip = MPLUG2DataPreprocessor()
    white = clip(dict(inputs=torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)))['inputs']
    assert white.flatten().tolist() == pytest.approx(
        [(255 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD)], rel=1e-6)
    with pytest.raises(ValueError, match='different shapes'):
        clip(dict(inputs=[torch.zeros(3, 2, 2), torch.zeros(3, 4, 4)]))


def test_mmaction_train_pipeline_cross_scope(shapes_dir):
    from mmengine.dataset import Compose
    pipeline = Compose([
        dict(type='mplug2.LoadVideoFrames', num_frames=4, seed=0),
        dict(type='mmaction.RandomResizedCrop', area_range=(0.5, 1.0)),
        dict(type='mplug2.VideoResize', scale=16, interpolation='bicubic'),
        dict(type='mmaction.Flip', flip_ratio=0.5),
        dict(type='mmaction.FormatShape', input_format='NCTHW'),
        dict(type='mplug2.PackMultimodalInputs'),
    ])
    data = pipeline(dict(filename=str(shapes_dir / 'videos' / 'shapes_train_00001.mp4'),
                         video_id='shapes_train_00001'))
    assert data['inputs'].shape == (3, 4, 16, 16) and data['inputs'].dtype == torch.uint8
    assert 'flip' in data['data_samples'].metainfo


def test_pack_image():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = PackMultimodalInputs()(dict(img=image, question='q', video_id='img0'))
    assert data['inputs'].shape == (3, 2, 3)
    assert torch.equal(data['inputs'][:, 1, 2], torch.from_numpy(image[1, 2]))
    assert data['data_samples'].question == 'q'
    with pytest.raises(KeyError, match='imgs'):
        PackMultimodalInputs()(dict(question='q'))
