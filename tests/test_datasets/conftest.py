import pytest

import mplug2  # noqa: F401  compatibility layer first
from mplug2.datasets.moving_shapes import generate_moving_shapes


@pytest.fixture(scope='session')
def shapes_dir(tmp_path_factory):
    """A tiny moving-shapes dataset (mp4): 6 train and 4 test videos of 8 frames, 32x32."""
    out = tmp_path_factory.mktemp('moving_shapes')
    generate_moving_shapes(str(out), num_train=6, num_test=4, num_frames=8, size=32, seed=0)
    return out


@pytest.fixture(scope='session')
def shapes_gif_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('moving_shapes_gif')
    generate_moving_shapes(str(out), num_train=2, num_test=2, num_frames=8, size=32, seed=1,
                           video_format='gif')
    return out
