"""Image classification through mmpretrain's ImageClassifier with the mPLUG-2 image path."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from .conftest import (CONFIG_DIR, TINY_ARCH, TINY_BERT, TINY_CONFIG_DIR,
                       assert_encoder_loaded)

CLS_DIR = osp.join(CONFIG_DIR, 'image_classification')
CLASSES = ('horizontal_bar', 'vertical_bar')


@pytest.fixture(scope='module')
def shapes_folder(tmp_path_factory):
    """mmpretrain CustomDataset folder: <root>/<class>/<image>.png, 4 per class."""
    from PIL import Image
    root = tmp_path_factory.mktemp('shapes')
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir()
        for index in range(4):
            image = rng.integers(0, 40, size=(40, 40, 3), dtype=np.uint8)
            offset = int(rng.integers(4, 28))
            if label == 0:
                image[offset:offset + 8, 4:36] = 230
            else:
                image[4:36, offset:offset + 8] = 230
            Image.fromarray(image).save(root / name / f'{index}.png')
    return root


def tiny_cfg(data_root, work_dir, universal=False):
    cfg = Config.fromfile(
        osp.join(TINY_CONFIG_DIR, 'mplug2_tiny_shapes_image-cls.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(data_root)
    if universal:
        cfg.model.backbone.universal_layers = dict(
            type='mplug2.UniversalLayers', arch=TINY_BERT, num_layers=2,
            num_queries=4)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.parametrize('name,universal', [
    ('mplug2_vit-l14_32xb128_in1k-224px.py', False),
    ('mplug2_vit-l14-universal_32xb128_in1k-224px.py', True),
])
def test_imagenet_configs_build(name, universal):
    """The full-size configs build in the mmpretrain scope (meta device) and
    carry the paper's recipe."""
    cfg = Config.fromfile(osp.join(CLS_DIR, name))
    assert cfg.default_scope == 'mmpretrain'
    assert [t.type for t in cfg.train_dataloader.dataset.pipeline] == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'RandAugment',
        'RandomErasing', 'PackInputs']
    assert cfg.optim_wrapper.optimizer.lr == 6e-5
    assert cfg.optim_wrapper.constructor == \
        'mplug2.LayerDecayOptimWrapperConstructor'
    assert cfg.train_cfg.max_epochs == 30
    assert cfg.auto_scale_lr.base_batch_size == 4096
    init_default_scope('mmpretrain')
    import mplug2.models.backbones.mplug2_vit_adapters  # noqa: F401
    from mmpretrain.registry import MODELS
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'ImageClassifier'
    assert model.backbone.layers == 24 and model.backbone.width == 1024
    assert model.head.fc.weight.shape == (1000, 1024)
    assert (model.backbone.universal_layers is not None) == universal
    if universal:
        assert len(model.backbone.universal_layers.layers) == 2
        assert model.backbone.universal_layers.init_cfg.prefix == \
            'universal_layers.'


@pytest.mark.parametrize('out_type', ['cls_token', 'avg_featmap'])
def test_image_backbone_output(out_type):
    """Images -> ((N, D),) from ln_post tokens; the LT modules are frozen."""
    from mplug2.models.backbones.dual_vision_encoder import DualVisionEncoder
    from mplug2.models.backbones.mplug2_vit_adapters import \
        MPLUG2ImageBackbone
    torch.manual_seed(0)
    backbone = MPLUG2ImageBackbone(arch=TINY_ARCH, img_size=32,
                                   out_type=out_type)
    encoder = DualVisionEncoder(arch=TINY_ARCH, img_size=32)
    encoder.load_state_dict(backbone.state_dict())
    images = torch.randn(2, 3, 32, 32)
    (feats, ) = backbone(images)
    tokens = encoder(images)
    expected = tokens[:, 0] if out_type == 'cls_token' else tokens[:, 1:].mean(1)
    torch.testing.assert_close(feats, expected)
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    assert frozen and all('lmhra' in n for n in frozen)


def test_image_backbone_with_universal_layers():
    from mplug2.models.backbones.mplug2_vit_adapters import \
        MPLUG2ImageBackbone
    torch.manual_seed(0)
    backbone = MPLUG2ImageBackbone(
        arch=TINY_ARCH, img_size=32,
        universal_layers=dict(arch=TINY_BERT, num_layers=2, num_queries=4))
    backbone.eval()
    images = torch.randn(2, 3, 32, 32)
    (feats, ) = backbone(images)
    tokens = super(MPLUG2ImageBackbone, backbone).forward(images)
    expected = backbone.universal_layers.forward_vision(tokens)[:, 0]
    torch.testing.assert_close(feats, expected)
    with pytest.raises(ValueError, match='width'):
        MPLUG2ImageBackbone(arch=TINY_ARCH, img_size=32,
                            universal_layers=dict(arch=dict(
                                TINY_BERT, hidden_size=64)))


@pytest.mark.parametrize('universal', [False, True])
def test_train_and_predict_shapes(shapes_folder, tmp_path, tiny_checkpoint,
                                  universal):
    """A few Runner iterations on a CustomDataset folder (paper augmentations),
    from a saved mPLUG-2 checkpoint; predict gives mmpretrain DataSamples."""
    from mmengine.runner import Runner
    ckpt_path, state_dict = tiny_checkpoint
    cfg = tiny_cfg(shapes_folder, tmp_path, universal)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=ckpt_path, prefix='vision_encoder.')
    if universal:
        cfg.model.backbone.universal_layers.init_cfg = dict(
            type='Pretrained', checkpoint=ckpt_path,
            prefix='universal_layers.')
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()
    assert_encoder_loaded(model.backbone, state_dict)
    if universal:
        assert_encoder_loaded(model.backbone.universal_layers, state_dict,
                              prefix='universal_layers.')
    before = {k: v.clone() for k, v in model.state_dict().items()}

    runner.train()

    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 4 and all(np.isfinite(losses))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert 'head.fc.weight' in changed
    assert 'backbone.transformer.resblocks.0.attn.in_proj_weight' in changed
    # video-only modules are frozen on the image path
    assert not any('lmhra' in k for k in changed)
    assert any(k.startswith('backbone.universal_layers.')
               for k in changed) == universal

    batch = next(iter(runner.test_dataloader))
    model.eval()
    with torch.no_grad():
        samples = model.test_step(batch)
    assert len(samples) == 4
    for sample in samples:
        assert type(sample).__name__ == 'DataSample'
        assert sample.pred_score.shape == (2, )
        torch.testing.assert_close(sample.pred_score.sum(), torch.tensor(1.))
        assert sample.pred_label.item() == sample.pred_score.argmax().item()
        assert sample.gt_label.item() in (0, 1)
    # the metric is the share of test images whose predicted label is right, in %
    correct = []
    with torch.no_grad():
        for data in runner.test_dataloader:
            correct += [s.pred_label.item() == s.gt_label.item() for s in model.test_step(data)]
    assert len(correct) == len(runner.test_dataloader.dataset)
    metrics = runner.test()
    assert metrics['accuracy/top1'] == pytest.approx(100.0 * sum(correct) / len(correct))
