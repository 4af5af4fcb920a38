"""The video-text task configs: they load, hold the paper's / official values, every ``type``
resolves in the registries (``default_scope='mplug2'``), the models build on the meta device and
the dataset pipelines run on a few synthetic videos.

Cheap by design: no full-size forward; models are built on the meta device only.
"""
import glob
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASK_DIR = osp.join(ROOT, 'configs', 'mplug2')
DATASET_DIR = osp.join(ROOT, 'configs', '_base_', 'datasets')

ALL_CONFIGS = sorted(glob.glob(osp.join(TASK_DIR, '*.py')) + glob.glob(osp.join(DATASET_DIR, '*.py')))
# Task configs: everything under configs/mplug2 except the model-only *_model.py files.
TASK_CONFIGS = sorted(p for p in glob.glob(osp.join(TASK_DIR, '*.py')) if not p.endswith('_model.py'))
#: The video-text dataset bases (the text-task bases, glue_*, squad_*, gigaword, are checked by
#: tests/test_text_tasks with their task configs).
VIDEO_DATASET_BASES = ('msrvtt_qa', 'msvd_qa', 'tgif_frameqa', 'msrvtt_caption', 'msvd_caption',
                       'msrvtt_retrieval_1ka', 'didemo_retrieval', 'lsmdc_retrieval')
DATASET_CONFIGS = [osp.join(DATASET_DIR, f'{name}.py') for name in VIDEO_DATASET_BASES]

QA, CAPTION, RETRIEVAL = 'qa', 'caption', 'retrieval'
MODEL_TYPES = {QA: 'MPLUG2QA', CAPTION: 'MPLUG2Captioner', RETRIEVAL: 'MPLUG2Retriever'}
DATASET_TYPES = {QA: 'VideoQADataset', CAPTION: 'VideoCaptionDataset',
                 RETRIEVAL: 'VideoRetrievalDataset'}
METRIC_TYPES = {QA: 'VideoQAAccuracy', CAPTION: 'CaptionMetric', RETRIEVAL: 'RetrievalMetric'}
BEST_METRIC = {QA: 'videoqa/acc', CAPTION: 'caption/CIDEr', RETRIEVAL: 'retrieval/R_mean'}

# name -> (task, size, kind, data_root, text-side lr or None for test-only configs)
EXPECTED = {
    'mplug2-large_8xb4-10e_msrvtt-qa': (QA, 'large', 'train', 'data/msrvtt/', 2e-5),
    'mplug2-large_8xb4-10e_msvd-qa': (QA, 'large', 'train', 'data/msvd/', 2e-5),
    'mplug2-large_8xb4-10e_tgif-frameqa': (QA, 'large', 'train', 'data/tgif/', 2e-5),
    'mplug2-large_8xb4-10e_msrvtt-caption': (CAPTION, 'large', 'train', 'data/msrvtt/', 2e-5),
    'mplug2-large_8xb4-10e_msvd-caption': (CAPTION, 'large', 'train', 'data/msvd/', 2e-5),
    'mplug2-large_8xb4-5e_msrvtt-caption-scst': (CAPTION, 'large', 'scst', 'data/msrvtt/', 2e-6),
    'mplug2-large_8xb4-10e_msrvtt-ret-1ka': (RETRIEVAL, 'large', 'train', 'data/msrvtt/', 1e-5),
    'mplug2-large_8xb4-10e_didemo-ret': (RETRIEVAL, 'large', 'train', 'data/didemo/', 1e-5),
    'mplug2-large_8xb4-10e_lsmdc-ret': (RETRIEVAL, 'large', 'train', 'data/lsmdc/', 1e-5),
    'mplug2-large_zeroshot_msrvtt-ret-1ka': (RETRIEVAL, 'large', 'test', 'data/msrvtt/', None),
    'mplug2-base_8xb4-10e_msrvtt-qa': (QA, 'base', 'train', 'data/msrvtt/', 2e-5),
    'mplug2-base_8xb4-10e_msrvtt-caption': (CAPTION, 'base', 'train', 'data/msrvtt/', 2e-5),
    'mplug2-base_8xb4-10e_msrvtt-ret-1ka': (RETRIEVAL, 'base', 'train', 'data/msrvtt/', 1e-5),
    'mplug2-large_official-eval_msrvtt-qa': (QA, 'large', 'test', 'data/msrvtt/', None),
    'mplug2-large_official-eval_msrvtt-caption': (CAPTION, 'large', 'test', 'data/msrvtt/', None),
}
ARCH = {'large': ('l/14', 'large'), 'base': ('b/16', 'base')}
# Text cleaning, the first transform of the pipelines: (train, test) per dataset type; None: the
# test references stay as written (the caption dataset lower-cases them).
TEXT_CLEANING = {
    'VideoQADataset': (dict(type='CleanQuestion', max_words=30),
                       dict(type='CleanQuestion', max_words=50)),
    'VideoCaptionDataset': (dict(type='CleanCaption', max_words=80), None),
    'VideoRetrievalDataset': (dict(type='CleanCaption', max_words=256),
                              dict(type='CleanCaption', max_words=256)),
}
# Retrieval fine-tuning: DistillAlphaWarmupHook's warmup_iters (one epoch at 8 x 4).
ALPHA_WARMUP_ITERS = {
    'mplug2-large_8xb4-10e_msrvtt-ret-1ka': 5625,
    'mplug2-base_8xb4-10e_msrvtt-ret-1ka': 5625,
    'mplug2-large_8xb4-10e_didemo-ret': 263,
    'mplug2-large_8xb4-10e_lsmdc-ret': 3160,
}
# Text arguments that moved into the pipelines' CleanQuestion / CleanCaption.
REMOVED_DATASET_ARGS = {'max_words', 'max_question_words'}
REMOVED_MODEL_ARGS = {'max_question_words', 'max_caption_words'}
DATASET_BASES = set(VIDEO_DATASET_BASES)


def _name(path):
    return osp.splitext(osp.basename(path))[0]


_CACHE = {}


def load(path):
    if path not in _CACHE:
        _CACHE[path] = Config.fromfile(path)
    return _CACHE[path]


def loaders(cfg):
    return [cfg[key] for key in ('train_dataloader', 'val_dataloader', 'test_dataloader')
            if cfg.get(key) is not None]


# ----------------------------------------------------------------------------- loading
def test_expected_configs_exist():
    names = {_name(p) for p in TASK_CONFIGS}
    assert set(EXPECTED) <= names, sorted(set(EXPECTED) - names)
    assert all(osp.isfile(p) for p in DATASET_CONFIGS), DATASET_CONFIGS


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=_name)
def test_config_loads(path):
    cfg = load(path)
    if path in TASK_CONFIGS:
        assert cfg.default_scope == 'mplug2'


@pytest.mark.parametrize('path', DATASET_CONFIGS, ids=_name)
def test_dataset_base(path):
    cfg = load(path)
    assert cfg.data_root.startswith('data/') and cfg.data_root.endswith('/')
    train, val, test = cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader
    assert train.sampler.shuffle is True and not train.dataset.get('test_mode', False)
    for loader in (val, test):
        assert loader.sampler == dict(type='DefaultSampler', shuffle=False)
        assert loader.dataset.test_mode is True
    for loader in (train, val, test):
        assert loader.dataset.type == cfg.dataset_type
        assert loader.dataset.data_root == cfg.data_root
        assert not REMOVED_DATASET_ARGS & set(loader.dataset)
    assert cfg.val_evaluator.type == cfg.test_evaluator.type
    # Bases must not define what the schedule or runtime bases own (duplicate _base_ keys).
    for key in ('val_cfg', 'test_cfg', 'train_cfg', 'custom_hooks', 'default_scope', 'model'):
        assert key not in cfg, key
    _check_pipelines(cfg)


def _strip_text_cleaning(pipeline, expected):
    """``pipeline`` without its leading text-cleaning transform, which must be ``expected``
    (None: no text cleaning anywhere in the pipeline)."""
    if expected is None:
        assert not any(t['type'] in ('CleanQuestion', 'CleanCaption') for t in pipeline)
        return pipeline
    assert pipeline[0] == expected
    return pipeline[1:]


def _check_pipelines(cfg):
    """Text cleaning first; then 16 frames, 224 pixels; random segments + crop/flip +
    RandAugment for training, middle frames + nearest resize at test (the official
    transforms)."""
    clean_train, clean_test = TEXT_CLEANING[cfg.dataset_type]
    train = _strip_text_cleaning(cfg.train_dataloader.dataset.pipeline, clean_train)
    types = [t['type'] for t in train]
    assert types == ['LoadVideoFrames', 'mmaction.RandomResizedCrop', 'VideoResize', 'mmaction.Flip',
                     'TemporalConsistentRandAugment', 'PackMultimodalInputs']
    assert train[0]['num_frames'] == 16 and not train[0].get('test_mode', False)
    assert tuple(train[1]['area_range']) == (0.5, 1.0)
    assert train[2]['scale'] == 224 and train[3]['flip_ratio'] == 0.5
    assert (train[4]['num_ops'], train[4]['magnitude']) == (2, 5)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        test = _strip_text_cleaning(loader.dataset.pipeline, clean_test)
        assert [t['type'] for t in test] == ['LoadVideoFrames', 'VideoResize', 'PackMultimodalInputs']
        assert test[0]['num_frames'] == 16 and test[0]['test_mode'] is True
        assert test[1]['scale'] == 224 and test[1]['interpolation'] == 'nearest'


# ----------------------------------------------------------------------------- task values
@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_task_config_values(name):
    task, size, kind, data_root, lr = EXPECTED[name]
    cfg = load(osp.join(TASK_DIR, name + '.py'))
    model = cfg.model
    assert model.type == MODEL_TYPES[task]
    vision_arch, text_arch = ARCH[size]
    assert model.vision_encoder.arch == vision_arch and model.vision_encoder.img_size == 224
    assert model.universal_layers.arch == text_arch and model.universal_layers.num_queries == 50
    assert model.data_preprocessor.type == 'MPLUG2DataPreprocessor'
    assert model.get('data_preprocessor', {}).get('mean') is None  # CLIP defaults

    if task == QA:
        assert model.generation == dict(num_beams=5, max_length=10, min_length=1, **(
            dict(length_penalty=0.6) if 'length_penalty' in model.generation else {}))
    elif task == CAPTION:
        assert model.text_encoder is None and model.fusion is None
        assert model.prompt == 'a video of'
        assert (model.generation.num_beams, model.generation.min_length,
                model.generation.max_length) == (5, 4, 20)
    else:
        assert model.text_decoder is None and model.k_test == 128
        assert model.itc_head == dict(type='ITCHead', embed_dim=256, temperature=0.07,
                                      temperature_range=(0.001, 0.5), queue_size=65536,
                                      use_momentum=True, momentum=0.995, alpha=0.4)
        assert model.itm_head == dict(type='ITMHead')
        assert model.rerank_score == 'itm'

    # Loops and evaluators.
    expected_loops = ({'val': 'MPLUG2RetrievalValLoop', 'test': 'MPLUG2RetrievalTestLoop'}
                      if task == RETRIEVAL else {'val': 'ValLoop', 'test': 'TestLoop'})
    assert cfg.test_cfg.type == expected_loops['test']
    assert cfg.test_evaluator.type == METRIC_TYPES[task]
    assert cfg.test_dataloader.dataset.type == DATASET_TYPES[task]
    assert cfg.test_dataloader.dataset.data_root == data_root
    assert cfg.test_dataloader.sampler.shuffle is False
    hooks = [dict(type='mplug2.BadSampleReportHook'), dict(type='mplug2.NonFiniteLossHook')]
    if task == RETRIEVAL and kind == 'train':  # the distillation weight ramps up
        hooks.append(dict(type='DistillAlphaWarmupHook', warmup_iters=ALPHA_WARMUP_ITERS[name]))
    assert cfg.custom_hooks == hooks
    assert not REMOVED_MODEL_ARGS & set(model)
    for loader in loaders(cfg):
        assert loader.dataset.type == DATASET_TYPES[task]
        assert loader.batch_size in (4, 8)
    _check_pipelines_of_task(cfg)

    if kind == 'test':
        assert cfg.train_dataloader is None and cfg.val_dataloader is None
        assert cfg.get('train_cfg') is None and cfg.get('optim_wrapper') is None
        return
    assert cfg.val_cfg.type == expected_loops['val']
    assert cfg.val_evaluator.type == METRIC_TYPES[task]
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == (5 if kind == 'scst' else 10)
    assert cfg.default_hooks.checkpoint.save_best == BEST_METRIC[task]
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW' and optimizer.weight_decay == 0.02
    assert optimizer.lr == pytest.approx(lr)
    # Vision encoder at a tenth of the language side (official lr2 = lr1 / 10).
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {'vision_encoder': dict(lr_mult=0.1)}
    assert cfg.load_from  # initialised from a (converted) pre-trained checkpoint
    if kind == 'scst':
        assert model.scst == dict(num_samples=5, corpus=data_root + 'annotations/caption_train.jsonl')
        assert cfg.train_dataloader.dataset.test_mode is True  # all references per video
        assert [s.type for s in cfg.param_scheduler] == ['CosineAnnealingLR']
        assert cfg.param_scheduler[0].end == 5
    else:
        warmup, cosine = cfg.param_scheduler
        assert warmup.type == 'LinearLR' and warmup.end == 200 and not warmup.by_epoch
        assert cosine.type == 'CosineAnnealingLR' and cosine.eta_min == 1e-6
        assert cosine.end == 10 and cosine.convert_to_iter_based
    if task == CAPTION:  # the official caption script accumulates over 2 iterations
        assert cfg.optim_wrapper.accumulative_counts == 2


def _check_pipelines_of_task(cfg):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader is None:
            continue
        assert not REMOVED_DATASET_ARGS & set(loader.dataset)
        # The train loader cleans as for training, also with SCST's test_mode dataset.
        clean_train, clean_test = TEXT_CLEANING[loader.dataset.type]
        pipeline = _strip_text_cleaning(
            loader.dataset.pipeline, clean_train if key == 'train_dataloader' else clean_test)
        assert pipeline[0]['type'] == 'LoadVideoFrames' and pipeline[0]['num_frames'] == 16
        resize = [t for t in pipeline if t['type'] == 'VideoResize']
        assert len(resize) == 1 and resize[0]['scale'] == 224


def test_official_eval_configs_follow_the_official_decoding():
    qa = load(osp.join(TASK_DIR, 'mplug2-large_official-eval_msrvtt-qa.py'))
    assert qa.model.generation == dict(num_beams=5, min_length=1, max_length=10, length_penalty=0.6)
    assert qa.test_dataloader.dataset.ann_file == 'annotations/qa_test.jsonl'
    caption = load(osp.join(TASK_DIR, 'mplug2-large_official-eval_msrvtt-caption.py'))
    assert caption.model.force_prompt is False  # the model generates the prompt; it is cut off
    assert caption.model.generation == dict(num_beams=5, min_length=4, max_length=20,
                                            length_penalty=0.6)
    assert caption.test_dataloader.dataset.ann_file == 'annotations/caption_test.jsonl'  # 2,990
    for cfg in (qa, caption):
        assert cfg.load_from is None  # the checkpoint is tools/test.py's argument


def test_didemo_is_paragraph_to_video():
    cfg = load(osp.join(TASK_DIR, 'mplug2-large_8xb4-10e_didemo-ret.py'))
    for loader in loaders(cfg):
        assert loader.dataset.is_paragraph is True


# ----------------------------------------------------------------------------- registries
def _types(node, path=''):
    """Every ``(path, type)`` in a config subtree."""
    if isinstance(node, dict):
        if 'type' in node and isinstance(node['type'], str):
            yield path, node['type']
        for key, value in node.items():
            yield from _types(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _types(value, f'{path}[{index}]')


def _registry_for(path):
    from mplug2 import registry as R
    # `retriever`: the retrieval model fields that configs/_base_/models/mplug2_retriever.py
    # shares between the Base and Large models.
    if path.startswith(('model', 'retriever')):
        return R.TOKENIZERS if '.tokenizer' in path else R.MODELS
    if path.endswith('.sampler'):
        return R.DATA_SAMPLERS
    if path.endswith('.collate_fn'):
        return R.FUNCTIONS
    if path.endswith('.dataset'):
        return R.DATASETS
    if '.pipeline[' in path or path.startswith(('train_pipeline[', 'test_pipeline[')):
        return R.TRANSFORMS
    if path.startswith(('val_evaluator', 'test_evaluator')):
        return R.METRICS
    if path in ('train_cfg', 'val_cfg', 'test_cfg'):
        return R.LOOPS
    if path.startswith(('default_hooks', 'custom_hooks')):
        return R.HOOKS
    if path.startswith('optim_wrapper.optimizer'):
        return R.OPTIMIZERS
    if path == 'optim_wrapper':
        return R.OPTIM_WRAPPERS
    if path.startswith('param_scheduler'):
        return R.PARAM_SCHEDULERS
    if path.startswith(('vis_backends', 'visualizer.vis_backends')):
        return R.VISBACKENDS
    if path == 'visualizer':
        return R.VISUALIZERS
    if path == 'log_processor':
        return R.LOG_PROCESSORS
    raise AssertionError(f'no registry known for {path}')


@pytest.mark.parametrize('path', TASK_CONFIGS + DATASET_CONFIGS, ids=_name)
def test_every_type_resolves(path):
    init_default_scope('mplug2')
    cfg = load(path).to_dict()
    found = list(_types(cfg))
    assert found
    missing = [(where, type_) for where, type_ in found
               if _registry_for(where).get(type_) is None]
    assert not missing, missing


# ----------------------------------------------------------------------------- models
@pytest.fixture(scope='module')
def bert_sized_vocab(tmp_path_factory):
    """A 30,522-entry vocabulary with BERT's special tokens (the real one is not needed to build)."""
    tokens = ['[PAD]'] + [f'[unused{i}]' for i in range(99)] + ['[UNK]', '[CLS]', '[SEP]', '[MASK]']
    tokens += ['a', 'video', 'of']
    tokens += [f'w{i}' for i in range(30522 - len(tokens))]
    path = tmp_path_factory.mktemp('vocab') / 'vocab.txt'
    path.write_text('\n'.join(tokens) + '\n')
    return str(path)


@pytest.mark.parametrize('path', TASK_CONFIGS, ids=_name)
def test_model_builds_on_meta(path, bert_sized_vocab):
    from mmengine.optim import build_optim_wrapper

    from mplug2.registry import MODELS
    init_default_scope('mplug2')
    cfg = load(path)
    model_cfg = cfg.model.copy()
    model_cfg.tokenizer = dict(model_cfg.tokenizer, vocab_file=bert_sized_vocab)
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    assert type(model).__name__ == cfg.model.type
    assert model.vision_encoder.width == (1024 if '-large_' in osp.basename(path) else 768)
    # The schedule's lr_mult key must match the vision encoder's parameters.
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(n.startswith('vision_encoder.') for n in names)
    if cfg.get('optim_wrapper') is None:  # evaluation-only configs
        return
    # The optimiser builds (tied parameters once) with the vision encoder at lr x 0.1.
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = optim_wrapper.optimizer.param_groups
    params = [id(p) for group in groups for p in group['params']]
    assert len(params) == len(set(params)) == len({id(p) for p in model.parameters() if p.requires_grad})
    lr = cfg.optim_wrapper.optimizer.lr
    vision = {id(p) for p in model.vision_encoder.parameters()}
    for group in groups:
        expected = 0.1 * lr if id(group['params'][0]) in vision else lr
        assert group['lr'] == pytest.approx(expected)
    if cfg.model.type == 'MPLUG2Captioner':
        assert model.force_prompt is cfg.model.get('force_prompt', True)
        assert model.scst == (None if cfg.model.get('scst') is None else dict(
            num_samples=5, corpus=cfg.train_dataloader.dataset.data_root
            + cfg.train_dataloader.dataset.ann_file, corpus_max_words=80, generation={}))


# ----------------------------------------------------------------------------- pipelines
@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    from mplug2.datasets import generate_moving_shapes
    out = tmp_path_factory.mktemp('shapes')
    generate_moving_shapes(str(out), num_train=3, num_test=2, num_frames=4, size=32, seed=0)
    return str(out)


@pytest.mark.parametrize('base', ['msrvtt_qa', 'msrvtt_caption', 'msrvtt_retrieval_1ka',
                                  'didemo_retrieval'])
def test_pipelines_run_on_synthetic_videos(base, shapes):
    """The dataset bases' train and test pipelines on two tiny synthetic videos."""
    from mplug2.registry import DATASETS
    init_default_scope('mplug2')
    cfg = load(osp.join(DATASET_DIR, base + '.py'))
    kind = 'qa' if 'qa' in base else 'caption' if 'caption' in base else 'retrieval'
    for key, split in (('train_dataloader', 'train'), ('test_dataloader', 'test')):
        dataset_cfg = cfg[key].dataset.copy()
        dataset_cfg.update(data_root=shapes, data_prefix=dict(video='videos'),
                           ann_file=f'annotations/{kind}_{split}.jsonl')
        dataset = DATASETS.build(dataset_cfg)
        sample = dataset[0]
        assert sample['inputs'].shape == (3, 16, 224, 224)
        assert sample['inputs'].dtype == torch.uint8
        data_sample = sample['data_samples']
        if kind == 'qa':
            assert data_sample.get('question')
        elif kind == 'caption':
            assert data_sample.get('gt_caption')
        else:
            assert data_sample.get('text')
            if base == 'didemo_retrieval':  # paragraph: one text per video
                text = data_sample.get('text')
                assert isinstance(text, str) or len(text) == 1


def test_runtime_defines_custom_hooks_once():
    # A list cannot be merged across _base_ files: only default_runtime.py may define it.
    defining = []
    for path in glob.glob(osp.join(ROOT, 'configs', '_base_', '**', '*.py'), recursive=True):
        with open(path, encoding='utf-8') as f:
            if any(line.startswith('custom_hooks') for line in f):
                defining.append(os.path.relpath(path, ROOT))
    assert defining == [osp.join('configs', '_base_', 'default_runtime.py')]
