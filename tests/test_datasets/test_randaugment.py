"""TemporalConsistentRandAugment against a per-frame transcription of the official operations."""
import cv2
import numpy as np
import pytest

from mplug2.datasets.transforms import TemporalConsistentRandAugment
from mplug2.datasets.transforms.augment import FINETUNE_OPS, OPS


# ---- the official per-frame operations (randaugment_video.py), level M out of 10 ----
def ref_contrast(img, level):
    factor = level / 10 * 1.8 + 0.1
    mean = np.sum(np.mean(img, axis=(0, 1)) * np.array([0.114, 0.587, 0.299]))
    table = np.array([(el - mean) * factor + mean for el in range(256)]).clip(0, 255).astype(np.uint8)
    return table[img]


def ref_brightness(img, level):
    factor = level / 10 * 1.8 + 0.1
    return (np.arange(256, dtype=np.float32) * factor).clip(0, 255).astype(np.uint8)[img]


def ref_sharpness(img, level):
    factor = level / 10 * 1.8 + 0.1
    kernel = np.ones((3, 3), dtype=np.float32)
    kernel[1][1] = 5
    kernel /= 13
    degenerate = cv2.filter2D(img, -1, kernel)
    if factor == 1.0:
        return img
    out = img.astype(np.float32)
    degenerate = degenerate.astype(np.float32)[1:-1, 1:-1, :]
    out[1:-1, 1:-1, :] = degenerate + factor * (out[1:-1, 1:-1, :] - degenerate)
    return out.astype(np.uint8)


def ref_warp(img, matrix):
    h, w = img.shape[:2]
    return cv2.warpAffine(img, np.float32(matrix), (w, h), borderValue=(128, 128, 128),
                          flags=cv2.INTER_LINEAR).astype(np.uint8)


def ref_rotate(img, level):
    h, w = img.shape[:2]
    return cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), level / 10 * 30, 1), (w, h),
                          borderValue=(128, 128, 128))


REFERENCE = {
    'Identity': lambda img, level: img,
    'Contrast': ref_contrast,
    'Brightness': ref_brightness,
    'Sharpness': ref_sharpness,
    'ShearX': lambda img, level: ref_warp(img, [[1, level / 10 * 0.3, 0], [0, 1, 0]]),
    'ShearY': lambda img, level: ref_warp(img, [[1, 0, 0], [level / 10 * 0.3, 1, 0]]),
    'TranslateX': lambda img, level: ref_warp(img, [[1, 0, -level], [0, 1, 0]]),
    'TranslateY': lambda img, level: ref_warp(img, [[1, 0, 0], [0, 1, -level]]),
    'Rotate': ref_rotate,
    'HorizontalFlip': lambda img, level: cv2.flip(img, 1),
}
GEOMETRIC = {'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate'}


@pytest.fixture
def clip():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 24, 28, 3), dtype=np.uint8)
    frames[:, 8:16, 6:20] = (200, 40, 90)  # a flat patch: interior pixels away from edges
    return frames


@pytest.mark.parametrize('name', sorted(OPS))
@pytest.mark.parametrize('level', [3, 5, 8])
def test_ops_match_the_official_per_frame_ops(name, level, clip):
    ours = OPS[name](clip.copy(), level)
    assert ours.shape == clip.shape and ours.dtype == np.uint8
    reference = np.stack([REFERENCE[name](frame, level) for frame in clip])
    np.testing.assert_array_equal(ours, reference)
    if name in GEOMETRIC or name == 'HorizontalFlip':
        assert not np.array_equal(ours, clip)


def test_magnitude_5_leaves_the_enhancements_unchanged(clip):
    # The official M=5 gives factor 1.0: Contrast, Brightness and Sharpness are identities.
    for name in ('Contrast', 'Brightness', 'Sharpness'):
        np.testing.assert_array_equal(OPS[name](clip, 5), clip)


def test_translate_moves_content_by_the_magnitude():
    frames = np.zeros((2, 20, 20, 3), dtype=np.uint8)
    frames[:, 10, 10] = 255
    moved = OPS['TranslateX'](frames, 5)  # 5 pixels towards x = 0
    assert (moved[:, 10, 5] == 255).all() and (moved[:, 10, 10] == 0).all()
    assert (moved[:, :, -5:] == 128).all()  # grey fill where the content left


def test_one_draw_per_clip_applied_to_every_frame():
    frame = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    transform = TemporalConsistentRandAugment(num_ops=2, magnitude=9, seed=0)
    seen = set()
    for _ in range(20):
        results = transform(dict(imgs=[frame.copy() for _ in range(4)]))
        names = results['randaug_ops']
        assert len(names) == 2 and len(set(names)) == 2 and set(names) <= set(FINETUNE_OPS)
        seen.add(tuple(sorted(names)))
        out = results['imgs']
        for other in out[1:]:  # identical frames stay identical: one draw for the clip
            np.testing.assert_array_equal(other, out[0])
        expected = frame
        for name in names:
            expected = OPS[name](expected[None], 9)[0]
        np.testing.assert_array_equal(out[0], expected)
    assert len(seen) > 5  # the draws vary between clips


def test_seeded_draws_repeat_and_bad_arguments_raise(clip):
    a = TemporalConsistentRandAugment(seed=3)
    b = TemporalConsistentRandAugment(seed=3)
    for _ in range(5):
        assert a(dict(imgs=list(clip)))['randaug_ops'] == b(dict(imgs=list(clip)))['randaug_ops']
    with pytest.raises(ValueError, match='unknown RandAugment ops'):
        TemporalConsistentRandAugment(ops=['Identity', 'Solarise'])
    with pytest.raises(ValueError, match='num_ops'):
        TemporalConsistentRandAugment(num_ops=10)
    with pytest.raises(ValueError, match='magnitude'):
        TemporalConsistentRandAugment(magnitude=11)
    with pytest.raises(ValueError, match='uint8'):
        TemporalConsistentRandAugment()(dict(imgs=[np.zeros((8, 8, 3), np.float32)]))
