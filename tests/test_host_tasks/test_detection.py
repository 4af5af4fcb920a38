"""COCO detection / instance segmentation through mmdet's Cascade Mask R-CNN
with the mPLUG-2 encoder as a ViTDet backbone and a SimpleFPN neck."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from .conftest import (CONFIG_DIR, TINY_CONFIG_DIR, TINY_DET_ARCH,
                       assert_encoder_loaded, save_mplug2_checkpoint)

pytest.importorskip('mmcv.ops')
pytest.importorskip('pycocotools')

DET_CONFIG = osp.join(
    CONFIG_DIR, 'detection',
    'mplug2_vit-l14_cascade-mask-rcnn_simplefpn_lsj-100e_coco.py')


@pytest.fixture(scope='module')
def shapes_coco(tmp_path_factory):
    """A 4-image COCO instances json with squares and triangles (polygon masks)."""
    from PIL import Image, ImageDraw
    root = tmp_path_factory.mktemp('shapes_coco')
    (root / 'images').mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for image_id in range(1, 5):
        canvas = Image.fromarray(
            rng.integers(0, 50, size=(64, 64, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(canvas)
        for shape_index in range(2):
            size = int(rng.integers(14, 22))
            x0 = 4 + 30 * shape_index + int(rng.integers(0, 6))
            y0 = int(rng.integers(4, 64 - size - 4))
            category = 1 + (image_id + shape_index) % 2
            if category == 1:  # square
                polygon = [x0, y0, x0 + size, y0, x0 + size, y0 + size, x0,
                           y0 + size]
            else:  # triangle
                polygon = [x0, y0 + size, x0 + size, y0 + size,
                           x0 + size / 2, y0]
            draw.polygon(polygon, fill=(230, 230, 230))
            xs, ys = polygon[0::2], polygon[1::2]
            box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=category, bbox=box, area=box[2] * box[3] /
                (1 if category == 1 else 2), segmentation=[polygon],
                iscrowd=0))
        name = f'{image_id:06d}.png'
        canvas.save(root / 'images' / name)
        images.append(dict(id=image_id, file_name=name, width=64, height=64))
    categories = [dict(id=1, name='square'), dict(id=2, name='triangle')]
    (root / 'annotations.json').write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=categories)))
    return root


def tiny_cfg(data_root, work_dir):
    cfg = Config.fromfile(
        osp.join(TINY_CONFIG_DIR, 'mplug2_tiny_shapes_cascade-mask-rcnn.py'))
    root = str(data_root) + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = root + 'annotations.json'
    cfg.work_dir = str(work_dir)
    return cfg


def test_coco_config_builds():
    """The full-size config builds in the mmdet scope (meta device)."""
    cfg = Config.fromfile(DET_CONFIG)
    assert cfg.default_scope == 'mmdet'
    assert cfg.model.data_preprocessor.batch_augments[0].type == \
        'BatchFixedSizePad'
    assert cfg.train_dataloader.dataset.dataset.pipeline[2].ratio_range == (
        0.1, 2.0)  # large-scale jitter
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.8
    init_default_scope('mmdet')
    import mplug2.models.backbones.mplug2_vit_adapters  # noqa: F401
    import mplug2.models.necks.simple_fpn  # noqa: F401
    from mmdet.registry import MODELS
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'CascadeRCNN'
    backbone = model.backbone
    assert type(backbone).__name__ == 'MPLUG2ViTDetBackbone'
    assert (backbone.layers, backbone.width, backbone.window_size) == (24, 1024, 16)
    assert backbone.global_attn_indexes == (5, 11, 17, 23)
    assert type(model.neck).__name__ == 'SimpleFPN'
    stages = model.roi_head.bbox_head
    assert len(stages) == 3
    for stage in stages:
        assert type(stage).__name__ == 'Shared4Conv1FCBBoxHead'
        assert len(stage.shared_convs) == 4
        assert type(stage.shared_convs[0].norm).__name__ == 'LN2d'
    assert len(model.roi_head.mask_head) == 3
    for mask_head in model.roi_head.mask_head:
        assert type(mask_head.convs[0].norm).__name__ == 'LN2d'


def test_train_and_predict_coco_shapes(shapes_coco, tmp_path):
    """Two Runner iterations on a COCO-format json from a saved mPLUG-2
    checkpoint; predict gives DetDataSamples with boxes, scores, labels, masks."""
    from mmengine.runner import Runner
    ckpt_path = str(tmp_path / 'mplug2_tiny_p16.pth')
    state_dict = save_mplug2_checkpoint(ckpt_path, TINY_DET_ARCH, 32)
    cfg = tiny_cfg(shapes_coco, tmp_path)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=ckpt_path, prefix='vision_encoder.')
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()
    assert_encoder_loaded(model.backbone, state_dict)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    runner.train()

    scalars = runner.message_hub.log_scalars
    for key in ('train/loss', 'train/loss_rpn_cls', 'train/s0.loss_cls',
                'train/s2.loss_bbox', 'train/s0.loss_mask'):
        values = scalars[key].data[0]
        assert len(values) == 2 and np.isfinite(values).all(), key
    after = model.state_dict()
    for key in ('backbone.transformer.resblocks.0.attn.in_proj_weight',
                'backbone.class_embedding', 'neck.fpn1.1.weight',
                'roi_head.bbox_head.2.shared_convs.0.conv.weight',
                'roi_head.mask_head.2.convs.0.conv.weight'):
        assert not torch.equal(before[key], after[key]), key
    for key in ('backbone.ln_post.weight',
                'backbone.transformer.resblocks.0.lmhra1.up_proj.weight'):
        assert torch.equal(before[key], after[key]), key  # unused -> frozen

    batch = next(iter(runner.test_dataloader))
    model.eval()
    with torch.no_grad():
        samples = model.test_step(batch)
    assert len(samples) == 2
    for sample in samples:
        assert type(sample).__name__ == 'DetDataSample'
        pred = sample.pred_instances
        num = len(pred)
        assert 0 < num <= 10
        assert pred.bboxes.shape == (num, 4)
        assert pred.scores.shape == (num, ) and pred.labels.shape == (num, )
        assert set(pred.labels.tolist()) <= {0, 1}
        assert pred.masks.shape == (num, 64, 64)
        assert pred.masks.dtype == torch.bool
        assert (pred.bboxes >= 0).all() and (pred.bboxes <= 64).all()
    # every test image's predictions, scored by pycocotools directly: the runner's metrics
    predictions = []
    with torch.no_grad():
        for data in runner.test_dataloader:
            predictions += model.test_step(data)
    assert sorted(p.img_id for p in predictions) == [1, 2, 3, 4]
    metrics = runner.test()
    for iou_type in ('bbox', 'segm'):
        expected = coco_map(shapes_coco / 'annotations.json', predictions, iou_type)
        assert metrics[f'coco/{iou_type}_mAP'] == pytest.approx(expected, abs=5e-4), iou_type

    # hand-made predictions: the ground truth itself scores 1, half of it 0.5
    evaluator = runner.test_evaluator
    for keep, expected in ((2, 1.0), (1, 0.5)):
        evaluator.process(data_samples=ground_truth_predictions(
            shapes_coco / 'annotations.json', predictions, keep))
        scores = evaluator.evaluate(len(predictions))
        assert scores['coco/bbox_mAP'] == pytest.approx(expected, abs=0.01), (keep, scores)
        assert scores['coco/segm_mAP'] == pytest.approx(expected, abs=0.01), (keep, scores)


def coco_map(ann_file, samples, iou_type):
    """mAP@[.5:.95] of DetDataSamples by pycocotools (labels 0, 1 = category ids 1, 2)."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    results = []
    for sample in samples:
        pred = sample.pred_instances
        for index, (x0, y0, x1, y1) in enumerate(pred.bboxes.tolist()):
            result = dict(image_id=sample.img_id, category_id=int(pred.labels[index]) + 1,
                          score=float(pred.scores[index]))
            if iou_type == 'bbox':
                result['bbox'] = [x0, y0, x1 - x0, y1 - y0]
            else:
                rle = mask_utils.encode(np.asfortranarray(pred.masks[index].numpy().astype(np.uint8)))
                result['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
            results.append(result)
    if not results:
        return 0.0
    gt = COCO(str(ann_file))
    evaluation = COCOeval(gt, gt.loadRes(results), iou_type)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return max(float(evaluation.stats[0]), 0.0)  # -1: no ground truth (not the case here)


def ground_truth_predictions(ann_file, samples, keep):
    """The samples with the first ``keep`` annotations of their image as predictions."""
    from pycocotools.coco import COCO
    from mmengine.structures import InstanceData
    gt = COCO(str(ann_file))
    made = []
    for sample in samples:
        anns = gt.loadAnns(gt.getAnnIds(imgIds=[sample.img_id]))[:keep]
        new = sample.clone()
        new.pred_instances = InstanceData(
            bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]),
            scores=torch.ones(len(anns)),
            labels=torch.tensor([a['category_id'] - 1 for a in anns]),
            masks=torch.from_numpy(np.stack([gt.annToMask(a) for a in anns])).bool())
        made.append(new)
    return made
