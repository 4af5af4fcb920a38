"""The demo configs (QA, captioning, retrieval) train through the Runner on generated moving-shapes
videos, their loss decreases, and testing reports the task's metrics."""
import json
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

from mplug2.datasets.moving_shapes import generate_moving_shapes
from tests.conftest import TINY_VOCAB, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(ROOT, 'configs', 'demo')
TEXT_MODULES = ('universal_layers', 'text_encoder', 'fusion', 'text_decoder')
NUM_TRAIN = 16

# task -> (training records per video, batches per epoch at batch 16, epochs, metric keys of the test)
# (retrieval learns from in-batch negatives, with two captions per video: it gets more epochs)
TASKS = {
    'videoqa': (3, 3, 12, {'videoqa/acc', 'videoqa/acc_color', 'videoqa/acc_shape',
                       'videoqa/acc_direction'}),
    'videocaption': (2, 2, 12, {'caption/BLEU_4', 'caption/METEOR', 'caption/ROUGE_L',
                            'caption/CIDEr'}),
    'videoretrieval': (2, 2, 30, {'retrieval/t2v_R1', 'retrieval/v2t_R1', 'retrieval/R_mean'}),
}


@pytest.fixture(scope='module')
def shapes_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_moving_shapes(str(root), num_train=NUM_TRAIN, num_test=4, num_frames=4, size=32, seed=0)
    words = set()
    for name in ('qa_train', 'caption_train'):
        with open(root / 'annotations' / f'{name}.jsonl') as f:
            for line in f:
                record = json.loads(line)
                text = ' '.join(record.get(key, '') for key in ('question', 'answer', 'caption'))
                words.update(text.replace('?', ' ').split())
    vocab = TINY_VOCAB + sorted(words - set(TINY_VOCAB) - {'a', 'video', 'of'}) + ['video', 'of']
    vocab = list(dict.fromkeys(vocab))
    write_vocab(root / 'vocab.txt', vocab)
    return root, len(vocab)


def demo_config(task, root, vocab_size, work_dir, epochs):
    cfg = Config.fromfile(os.path.join(CONFIG_DIR, f'mplug2-tiny_moving-shapes_{task}.py'))
    cfg.work_dir = str(work_dir)
    cfg.model.tokenizer.vocab_file = str(root / 'vocab.txt')
    cfg.model.tokenizer.vocab_size = vocab_size
    for module in TEXT_MODULES:
        if cfg.model.get(module):
            cfg.model[module].arch.vocab_size = vocab_size
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.data_root = str(root)
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs)
    cfg.optim_wrapper.optimizer.lr = 1e-3
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.2, by_epoch=False, begin=0, end=5)]
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs)
    cfg.log_processor = dict(window_size=1, by_epoch=True)
    return cfg


def test_demo_configs_share_the_tiny_model():
    configs = {task: Config.fromfile(os.path.join(CONFIG_DIR, f'mplug2-tiny_moving-shapes_{task}.py'))
               for task in TASKS}
    assert {task: cfg.model.type for task, cfg in configs.items()} == {
        'videoqa': 'MPLUG2QA', 'videocaption': 'MPLUG2Captioner', 'videoretrieval': 'MPLUG2Retriever'}
    encoders = {str(cfg.model.vision_encoder) for cfg in configs.values()}
    assert len(encoders) == 1
    assert configs['videocaption'].model.text_encoder is None
    assert configs['videoretrieval'].model.text_decoder is None
    assert configs['videoretrieval'].test_cfg.type == 'MPLUG2RetrievalTestLoop'
    for cfg in configs.values():
        # No flip: it would swap left and right; the LT modules train 10x faster.
        assert [t['type'] for t in cfg.train_dataloader.dataset.pipeline] == [
            'CleanQuestion', 'CleanCaption', 'LoadVideoFrames', 'PackMultimodalInputs']
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {'.lmhra': dict(lr_mult=10.0)}


@pytest.mark.parametrize('task', list(TASKS))
def test_demo_config_trains_and_tests(task, shapes_data, tmp_path):
    root, vocab_size = shapes_data
    records_per_video, batches, epochs, metric_keys = TASKS[task]
    runner = Runner.from_cfg(demo_config(task, root, vocab_size, tmp_path, epochs))
    runner.train()
    # The LT modules train at 10x the learning rate of everything else.
    lt = {id(p) for n, p in runner.model.named_parameters() if '.lmhra' in n}
    lrs = {True: set(), False: set()}
    for group in runner.optim_wrapper.optimizer.param_groups:
        lrs[id(group['params'][0]) in lt].add(group['lr'])
    assert len(lrs[True]) == len(lrs[False]) == 1
    assert lrs[True].pop() == pytest.approx(10 * lrs[False].pop())
    assert len(runner.train_dataloader.dataset) == NUM_TRAIN * records_per_video
    history = runner.message_hub.get_scalar('train/loss')._log_history
    assert len(history) == epochs * batches
    first, last = history[:batches].mean(), history[-batches:].mean()
    assert last < 0.6 * first, (first, last)

    metrics = runner.test()
    assert metric_keys <= set(metrics), sorted(metrics)
    # the reported numbers are those of the trained model's predictions, computed here apart
    expected = REFERENCE_METRICS[task](runner.model, runner.test_dataloader)
    assert set(expected) <= set(metrics)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (key, metrics[key], value)


def _predictions(model, dataloader):
    model.eval()
    samples = []
    with torch.no_grad():
        for data in dataloader:
            samples += model.test_step(data)
    assert len(samples) == len(dataloader.dataset)
    return samples


def _qa_reference(model, dataloader):
    """Exact-match accuracy in %, overall and per question type."""
    hits = {}
    for sample in _predictions(model, dataloader):
        answers = sample.gt_answer if isinstance(sample.gt_answer, list) else [sample.gt_answer]
        hit = sample.pred_answer in answers
        for key in ('videoqa/acc', f'videoqa/acc_{sample.question_type}'):
            hits.setdefault(key, []).append(hit)
    assert len(hits) == 4  # 3 question types
    return {key: 100.0 * np.mean(values) for key, values in hits.items()}


def _caption_reference(model, dataloader):
    """BLEU, ROUGE-L and CIDEr of pycocoevalcap on the predictions (texts already lower-case
    words: the PTB tokenisation leaves them unchanged), in %; METEOR is left out (Java, slow)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    gts, res = {}, {}
    for sample in _predictions(model, dataloader):
        gts[sample.video_id] = list(sample.gt_caption)
        res[sample.video_id] = [sample.pred_caption]
    assert all(text == text.lower() and text.replace(' ', '').isalpha() for text in
               [r[0] for r in res.values() if r[0]] + sum(gts.values(), []))
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    metrics = {f'caption/BLEU_{n + 1}': 100.0 * value for n, value in enumerate(bleu)}
    metrics['caption/ROUGE_L'] = 100.0 * Rouge().compute_score(gts, res)[0]
    metrics['caption/CIDEr'] = 100.0 * Cider().compute_score(gts, res)[0]
    return metrics


def _retrieval_reference(model, dataloader):
    """All test videos and texts in one batch, ranked at once by predict_all: recalls in %."""
    from mplug2.evaluation.metrics.retrieval import invert_mapping, ranks_to_metrics, retrieval_ranks
    dataset = dataloader.dataset
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]), False)
        feats = model(data['inputs'], data['data_samples'], mode='tensor')
        sims = model.predict_all(
            {key: feats[key] for key in ('visual_feat', 'visual_embeds')},
            {key: feats[key] for key in ('text_feat', 'text_embeds', 'text_mask')})
    txt2vid = dataset.metainfo['txt2vid']
    assert feats['text_sample'].tolist() == txt2vid  # texts in text_id order
    metrics = {}
    for direction, sim, gt in (('t2v', sims['sim_t2v'], txt2vid),
                               ('v2t', sims['sim_v2t'], invert_mapping(txt2vid, len(dataset)))):
        for key, value in ranks_to_metrics(retrieval_ranks(sim, gt)).items():
            metrics[f'retrieval/{direction}_{key}'] = value
    metrics['retrieval/R_mean'] = np.mean([metrics[f'retrieval/{d}_R{k}'] for d in ('t2v', 'v2t')
                                           for k in (1, 5, 10)])
    return metrics


REFERENCE_METRICS = {'videoqa': _qa_reference, 'videocaption': _caption_reference,
                     'videoretrieval': _retrieval_reference}
