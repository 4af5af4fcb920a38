"""Our modules are built from mplug2-scoped configs and from the host libraries' scopes."""
import pytest
import torch
from mmengine.registry import DefaultScope

import mplug2  # noqa: F401
from mplug2 import registry

TINY_ENCODER = dict(arch=dict(width=32, layers=1, heads=2, patch_size=4), img_size=16)


def test_registries_are_children_of_mmengine_roots():
    from mmengine import registry as root
    pairs = [('MODELS', 'MODELS'), ('DATASETS', 'DATASETS'), ('TRANSFORMS', 'TRANSFORMS'),
             ('METRICS', 'METRICS'), ('LOOPS', 'LOOPS'), ('HOOKS', 'HOOKS'),
             ('OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIM_WRAPPER_CONSTRUCTORS'), ('RUNNERS', 'RUNNERS')]
    for ours, theirs in pairs:
        assert getattr(registry, ours).parent is getattr(root, theirs)
        assert getattr(registry, ours).scope == 'mplug2'
    assert registry.TOKENIZERS.scope == 'mplug2'


def test_lazy_locations_register_models():
    # No explicit import of mplug2.models: the registry's `locations` import it on lookup.
    assert registry.MODELS.get('DualVisionEncoder') is not None
    assert registry.MODELS.get('TextDecoder') is not None
    assert registry.TOKENIZERS.get('MPLUG2Tokenizer') is not None


def _build_in_scope(scope, type_name):
    # Build from the scope's own registry, as a host library's Runner does (the scope is restored after).
    with DefaultScope.overwrite_default_scope(scope):
        if scope == 'mplug2':
            host_models = registry.MODELS
        elif scope == 'mmdet':
            from mmdet.registry import MODELS as host_models
        elif scope == 'mmaction':
            from mmaction.registry import MODELS as host_models
        elif scope == 'mmpretrain':
            from mmpretrain.registry import MODELS as host_models
        return host_models.build(dict(type=type_name, **TINY_ENCODER))


@pytest.mark.parametrize('scope,type_name', [
    ('mplug2', 'DualVisionEncoder'),
    ('mplug2', 'mplug2.DualVisionEncoder'),
    ('mmdet', 'mplug2.DualVisionEncoder'),
    ('mmaction', 'mplug2.DualVisionEncoder'),
    ('mmpretrain', 'mplug2.DualVisionEncoder'),
])
def test_build_from_each_scope(scope, type_name):
    encoder = _build_in_scope(scope, type_name)
    assert type(encoder).__name__ == 'DualVisionEncoder'
    out = encoder(torch.zeros(1, 3, 16, 16))
    assert out.shape == (1, 1 + 16, 32)


def test_host_module_reachable_from_our_scope():
    import mmdet.models  # noqa: F401  (registers mmdet's modules)
    with DefaultScope.overwrite_default_scope('mplug2'):
        neck = registry.MODELS.build(dict(type='mmdet.FPN', in_channels=[8, 16], out_channels=8, num_outs=2))
    assert type(neck).__module__.startswith('mmdet.')
