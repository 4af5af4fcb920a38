"""Action recognition through mmaction2's Recognizer3D with the mPLUG-2 video path."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from .conftest import (CONFIG_DIR, TINY_ARCH, TINY_CONFIG_DIR,
                       assert_encoder_loaded)

av = pytest.importorskip('av')
pytest.importorskip('decord')

ACTION_DIR = osp.join(CONFIG_DIR, 'action_recognition')
KINETICS_CONFIGS = {
    'mplug2_vit-l14_u8_kinetics710-rgb.py': 710,
    'mplug2_vit-l14_k710-pre_u8_kinetics400-rgb.py': 400,
    'mplug2_vit-l14_k710-pre_u8_kinetics600-rgb.py': 600,
    'mplug2_vit-l14_k710-pre_u8_kinetics700-rgb.py': 700,
}


def write_moving_square(path, direction, num_frames=8, size=32, seed=0):
    """An mp4 clip of a white 8x8 square moving 3 px per frame to the left
    (``direction=-1``) or to the right (``+1``) on a dark background."""
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, size - 8))
    start = 2 if direction > 0 else size - 10 - 1
    with av.open(path, mode='w') as container:
        stream = container.add_stream('mpeg4', rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = 'yuv420p'
        for t in range(num_frames):
            frame = np.full((size, size, 3), 20, dtype=np.uint8)
            left = start + direction * 3 * t
            frame[top:top + 8, left:left + 8] = 235
            for packet in stream.encode(
                    av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope='module')
def moving_shapes(tmp_path_factory):
    """A VideoDataset folder: videos/ and an annotation list '<file> <label>'
    (label 0: moving left, 1: moving right)."""
    root = tmp_path_factory.mktemp('moving_shapes')
    (root / 'videos').mkdir()
    lines = []
    for index in range(8):
        label = index % 2
        name = f'clip_{index}.mp4'
        write_moving_square(str(root / 'videos' / name), 1 if label else -1,
                            seed=index)
        lines.append(f'{name} {label}')
    (root / 'train_list_videos.txt').write_text('\n'.join(lines) + '\n')
    return root


def tiny_cfg(data_root, work_dir):
    cfg = Config.fromfile(
        osp.join(TINY_CONFIG_DIR, 'mplug2_tiny_moving-shapes_action.py'))
    ann_file = str(data_root / 'train_list_videos.txt')
    videos = str(data_root / 'videos')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.ann_file = ann_file
        cfg[loader].dataset.data_prefix = dict(video=videos)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.parametrize('name,num_classes', sorted(KINETICS_CONFIGS.items()))
def test_kinetics_configs_build(name, num_classes):
    """The full-size configs build in the mmaction scope (on the meta device)."""
    cfg = Config.fromfile(osp.join(ACTION_DIR, name))
    assert cfg.default_scope == 'mmaction'
    assert cfg.model.backbone.type == 'mplug2.MPLUG2VideoBackbone'
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert cfg.train_cfg.max_epochs == (40 if num_classes == 710 else 5)
    init_default_scope('mmaction')
    import mplug2.models.backbones.mplug2_vit_adapters  # noqa: F401
    from mmaction.registry import MODELS
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'Recognizer3D'
    backbone = model.backbone
    assert (backbone.width, backbone.layers, backbone.patch_size) == (1024, 24, 14)
    assert backbone.positional_embedding.shape == (1 + 16 * 16, 1024)
    assert model.cls_head.fc_cls.weight.shape == (num_classes, 1024)
    if num_classes == 710:
        datasets = cfg.train_dataloader.dataset.datasets
        assert [d.ann_file.split('/')[-1] for d in datasets] == [
            'k400_train_list_videos.txt', 'k600_train_list_videos.txt',
            'k700_train_list_videos.txt']


def test_video_backbone_output():
    """NCTHW clips -> (N, D): the mean of the frame CLS tokens after ln_post."""
    from mplug2.models.backbones.mplug2_vit_adapters import \
        MPLUG2VideoBackbone
    torch.manual_seed(0)
    backbone = MPLUG2VideoBackbone(arch=TINY_ARCH, img_size=32)
    clips = torch.randn(3, 3, 4, 32, 32)
    feats = backbone(clips)
    assert feats.shape == (3, 32)
    tokens = super(MPLUG2VideoBackbone, backbone).forward(clips)
    assert tokens.shape == (3, 1 + 4 * 16, 32)
    torch.testing.assert_close(feats, tokens[:, 0])
    avg = MPLUG2VideoBackbone(arch=TINY_ARCH, img_size=32, out_type='avg_featmap')
    avg.load_state_dict(backbone.state_dict())
    torch.testing.assert_close(avg(clips), tokens[:, 1:].mean(1))
    with pytest.raises(ValueError, match=r'MPLUG2VideoBackbone expects NCTHW clips, got \(1, 3, 32, 32\)'):
        backbone(torch.randn(1, 3, 32, 32))


def test_train_and_predict_moving_shapes(moving_shapes, tmp_path,
                                         tiny_checkpoint):
    """A few Runner iterations on mp4 clips in mmaction2's VideoDataset format,
    starting from a saved mPLUG-2 checkpoint; predict gives ActionDataSamples."""
    from mmengine.runner import Runner
    ckpt_path, state_dict = tiny_checkpoint
    cfg = tiny_cfg(moving_shapes, tmp_path)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=ckpt_path, prefix='vision_encoder.')
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()
    assert_encoder_loaded(model.backbone, state_dict)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    runner.train()

    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == cfg.train_cfg.max_iters
    assert all(np.isfinite(losses))
    after = model.state_dict()
    # the spatial blocks, the local temporal modules and the head all learn
    for key in ('backbone.transformer.resblocks.0.attn.in_proj_weight',
                'backbone.transformer.resblocks.1.lmhra1.up_proj.weight',
                'backbone.transformer.resblocks.0.lmhra2.conv.weight',
                'cls_head.fc_cls.weight'):
        assert not torch.equal(before[key], after[key]), key

    batch = next(iter(runner.test_dataloader))
    # 2 clips x 1 crop per video, stacked as views
    assert batch['inputs'][0].shape == (2, 3, 4, 32, 32)
    model.eval()
    with torch.no_grad():
        samples = model.test_step(batch)
    assert len(samples) == 2
    for sample in samples:
        assert type(sample).__name__ == 'ActionDataSample'
        assert sample.pred_score.shape == (2, )
        torch.testing.assert_close(sample.pred_score.sum(), torch.tensor(1.))
        assert sample.pred_label.item() == sample.pred_score.argmax().item()
        assert sample.gt_label.item() in (0, 1)
    # the metric is the share of test videos whose predicted class is right
    correct = []
    with torch.no_grad():
        for data in runner.test_dataloader:
            correct += [s.pred_label.item() == s.gt_label.item() for s in model.test_step(data)]
    assert len(correct) == 8
    metrics = runner.test()
    assert metrics['acc/top1'] == pytest.approx(sum(correct) / len(correct))
