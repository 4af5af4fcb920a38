"""Shared helpers of the host-task tests: tiny sizes, a saved mPLUG-2 checkpoint."""
import os.path as osp

import pytest
import torch

import mplug2  # noqa: F401  (compatibility layer before the host libraries)

# OpenCV must be loaded before decord: decord's bundled libraries otherwise
# break cv2's PNG decoding in the same process ("libpng error: bad parameters
# to zlib"), which the image and detection tests rely on.
import cv2  # noqa: F401,E402  isort: skip

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
TINY_CONFIG_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'configs')

#: Tiny encoder of the tiny configs: width 32, 2 blocks, patch 8 (video and
#: image tests) or patch 16 (detection).
TINY_ARCH = dict(width=32, layers=2, heads=2, patch_size=8)
TINY_DET_ARCH = dict(width=32, layers=2, heads=2, patch_size=16)
TINY_BERT = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64,
                 vocab_size=64, max_position_embeddings=16)


def randomised_encoder(arch, img_size, seed=0, std=0.02):
    """A DualVisionEncoder whose every tensor (LT up-projections included,
    which start at zero) holds distinct random values."""
    from mplug2.models.backbones.dual_vision_encoder import DualVisionEncoder
    torch.manual_seed(seed)
    encoder = DualVisionEncoder(arch=arch, img_size=img_size)
    with torch.no_grad():
        for param in encoder.parameters():
            param.normal_(std=std)
    return encoder


def save_mplug2_checkpoint(path, arch, img_size, with_universal=False):
    """Save ``{'state_dict': {'vision_encoder.*', ['universal_layers.*'],
    'text_encoder.*'}}`` the way our mPLUG-2 models store it; returns the
    state dict."""
    encoder = randomised_encoder(arch, img_size)
    state_dict = {f'vision_encoder.{k}': v
                  for k, v in encoder.state_dict().items()}
    if with_universal:
        from mplug2.models.necks.universal_layers import UniversalLayers
        torch.manual_seed(1)
        universal = UniversalLayers(arch=TINY_BERT, num_layers=2,
                                    num_queries=4)
        state_dict.update({f'universal_layers.{k}': v
                           for k, v in universal.state_dict().items()})
    # A module the vision tasks do not use.
    state_dict['text_encoder.embeddings.word_embeddings.weight'] = torch.ones(
        3, 3)
    torch.save(dict(state_dict=state_dict), path)
    return state_dict


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory):
    """(path, state_dict) of a tiny mPLUG-2 checkpoint (patch 8, 32 px)."""
    path = str(tmp_path_factory.mktemp('ckpt') / 'mplug2_tiny.pth')
    return path, save_mplug2_checkpoint(path, TINY_ARCH, 32,
                                        with_universal=True)


def assert_encoder_loaded(module, state_dict, prefix='vision_encoder.'):
    """Every encoder tensor of ``state_dict`` equals the module's tensor."""
    own = module.state_dict()
    expected = {k[len(prefix):]: v for k, v in state_dict.items()
                if k.startswith(prefix)}
    assert expected, 'checkpoint has no encoder keys'
    missing = sorted(set(expected) - set(own))
    assert not missing, f'keys not in the module: {missing[:5]}'
    for key, value in expected.items():
        torch.testing.assert_close(own[key], value, rtol=0, atol=0,
                                   msg=f'{key} was not loaded')
    # nothing of the encoder stays at its initial value
    encoder_keys = {k for k in own if not k.startswith('universal_layers.')}
    assert encoder_keys <= set(expected), sorted(encoder_keys - set(expected))


@pytest.fixture(autouse=True)
def restore_default_scope():
    """Undo the default scopes that host Runners / init_default_scope create,
    so that tests run afterwards see the scope they started with."""
    from mmengine.registry import DefaultScope
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)
