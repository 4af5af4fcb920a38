import numpy as np
import pytest

import mplug2  # noqa: F401
from mplug2.datasets.transforms import SampleVideoFrames, sample_frame_indices


@pytest.mark.parametrize('num_frames, segments, expected', [
    (100, 4, [12, 37, 62, 87]),  # edges 0,25,50,75,100 -> (s + next - 1) // 2
    (10, 3, [1, 4, 7]),  # edges int(linspace) = 0,3,6,10
    (16, 16, list(range(16))),  # one frame per segment
    (3, 5, [0, 1, 2, 2, 2]),  # short video: padded with the last index
    (1, 4, [0, 0, 0, 0]),
])
def test_middle_exact(num_frames, segments, expected):
    indices = sample_frame_indices(num_frames, segments, 'middle')
    assert indices.dtype == np.int64
    assert indices.tolist() == expected


def test_rand_within_segments_never_last_frame():
    edges = [0, 25, 50, 75, 100]
    seen = [set() for _ in range(4)]
    rng = np.random.default_rng(0)
    for _ in range(3000):
        indices = sample_frame_indices(100, 4, 'rand', rng)
        for i, index in enumerate(indices):
            # range(start, next_start - 1): the last frame (next_start - 1) is excluded
            assert edges[i] <= index <= edges[i + 1] - 2
            seen[i].add(int(index))
    assert all(s == set(range(edges[i], edges[i + 1] - 1)) for i, s in enumerate(seen))


def test_rand_two_frame_segments_always_first():
    # Segments of two frames: range(start, start + 1) holds only the start.
    for seed in range(5):
        assert sample_frame_indices(8, 4, 'rand', seed).tolist() == [0, 2, 4, 6]


def test_rand_single_frame_segments_fall_back_to_sorted_distinct():
    # 20 frames, 16 segments: some segments hold one frame -> official fallback
    for seed in range(20):
        indices = sample_frame_indices(20, 16, 'rand', seed)
        assert len(indices) == 16 and len(set(indices.tolist())) == 16
        assert np.all(np.diff(indices) > 0) and indices.min() >= 0 and indices.max() < 20


def test_rand_short_video_padding_and_seed():
    assert sample_frame_indices(3, 5, 'rand', 0).tolist() == [0, 1, 2, 2, 2]
    a = sample_frame_indices(1000, 16, 'rand', 123)
    b = sample_frame_indices(1000, 16, 'rand', 123)
    c = sample_frame_indices(1000, 16, 'rand', 124)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    np.random.seed(5)
    d = sample_frame_indices(1000, 16, 'rand')
    np.random.seed(5)
    assert d.tolist() == sample_frame_indices(1000, 16, 'rand').tolist()


def test_invalid_arguments():
    with pytest.raises(ValueError, match='at least one frame'):
        sample_frame_indices(0, 4, 'middle')
    with pytest.raises(ValueError, match='mode'):
        sample_frame_indices(10, 4, 'uniform')


def test_sample_transform_modes():
    results = SampleVideoFrames(num_frames=4, test_mode=True)(dict(total_frames=100))
    assert results['frame_inds'].tolist() == [12, 37, 62, 87]
    assert results['clip_len'] == 4 and results['num_clips'] == 1
    train = SampleVideoFrames(num_frames=4, seed=0)
    assert train.mode == 'rand'
    inds = train(dict(total_frames=100))['frame_inds']
    assert all(25 * i <= x <= 25 * i + 23 for i, x in enumerate(inds))
    assert SampleVideoFrames(4, test_mode=False, mode='middle').mode == 'middle'
