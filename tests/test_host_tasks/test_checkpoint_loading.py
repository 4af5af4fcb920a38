"""Every host adapter starts from an mPLUG-2 checkpoint (keys `vision_encoder.*`)
through `init_cfg=dict(type='Pretrained', prefix='vision_encoder.')`."""
import pytest
import torch
from mmengine.logging import MMLogger

from .conftest import TINY_ARCH, TINY_BERT, assert_encoder_loaded


@pytest.mark.parametrize('adapter,kwargs', [
    ('MPLUG2VideoBackbone', {}),
    ('MPLUG2ImageBackbone', {}),
    ('MPLUG2ImageBackbone',
     dict(universal_layers=dict(arch=TINY_BERT, num_layers=2, num_queries=4))),
    ('MPLUG2ViTDetBackbone', dict(window_size=2)),
])
def test_adapter_loads_every_encoder_weight(tiny_checkpoint, adapter, kwargs,
                                            caplog):
    from mmengine.registry import MODELS
    ckpt_path, state_dict = tiny_checkpoint
    cfg = dict(type=f'mplug2.{adapter}', arch=TINY_ARCH, img_size=32,
               init_cfg=dict(type='Pretrained', checkpoint=ckpt_path,
                             prefix='vision_encoder.'), **kwargs)
    if 'universal_layers' in kwargs:
        cfg['universal_layers'] = dict(
            cfg['universal_layers'],
            init_cfg=dict(type='Pretrained', checkpoint=ckpt_path,
                          prefix='universal_layers.'))
    import mplug2.models.backbones.mplug2_vit_adapters  # noqa: F401
    backbone = MODELS.build(cfg)
    MMLogger.get_instance('mmengine')  # PretrainedInit logs to 'current'
    backbone.init_weights()
    # every encoder tensor equals the checkpoint, none is missing
    assert_encoder_loaded(backbone, state_dict)
    if 'universal_layers' in kwargs:
        assert_encoder_loaded(backbone.universal_layers, state_dict,
                              prefix='universal_layers.')
    # strict loading of the stripped encoder dict: no missing/unexpected keys
    encoder_state = {k[len('vision_encoder.'):]: v
                     for k, v in state_dict.items()
                     if k.startswith('vision_encoder.')}
    result = backbone.load_state_dict(encoder_state, strict=False)
    assert not [k for k in result.missing_keys
                if not k.startswith('universal_layers.')]
    assert not result.unexpected_keys
