"""Inference on video files: build a model from a config, then answer questions or caption.

.. code-block:: python

    from mplug2.apis import init_model, answer_question, caption_video

    qa = init_model('my_videoqa_config.py', 'videoqa.pth', device='cuda:0')
    answer_question(qa, 'video7010.mp4', 'what is the man doing?')        # -> 'cooking'
    answer_question(qa, ['a.mp4', 'b.mp4'], 'what color is the shape?')  # -> ['red', 'blue']

    captioner = init_model('my_videocaption_config.py', 'videocaption.pth')
    caption_video(captioner, 'video7010.mp4')                            # -> 'a man is cooking'

Each video goes through the config's test pipeline (``cfg.test_pipeline``, else
``cfg.test_dataloader.dataset.pipeline``; model-only configs fall back to the official
test pipeline: 16 middle frames, torch nearest resize to the encoder's input size, question
cleaning with the official test word limit), the
samples are collated as the test dataloader does (``pseudo_collate``) and the model runs
``test_step``: its data preprocessor (stacking, CLIP normalisation), then ``predict``.
"""
from __future__ import annotations

import copy
import logging
import os
import os.path as osp
from collections.abc import Iterable, Mapping
from typing import List, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

__all__ = ['init_model', 'build_test_pipeline', 'inference_model', 'answer_question',
           'caption_video']

PathLike = Union[str, os.PathLike]
VideoInput = Union[PathLike, Sequence[PathLike]]

#: The official test pipeline, used when a config defines none (model-only configs).
#: ``scale`` is filled in with the vision encoder's input size.
DEFAULT_TEST_PIPELINE = [
    dict(type='mplug2.LoadVideoFrames', num_frames=16, test_mode=True),
    dict(type='mplug2.VideoResize', scale=None, interpolation='nearest'),
    dict(type='mplug2.CleanQuestion', max_words=50),  # the official test word limit
    dict(type='mplug2.PackMultimodalInputs'),
]


def _scope(cfg: Config) -> str:
    return cfg.get('default_scope') or 'mplug2'


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
def init_model(config: Union[PathLike, Config],
               checkpoint: Optional[PathLike] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = True) -> torch.nn.Module:
    """Build a model from a config and load a checkpoint; the model is returned in eval mode.

    Args:
        config: config file path or :class:`mmengine.config.Config`; the object is
            copied, not modified.
        checkpoint: checkpoint file (an mmengine checkpoint with ``state_dict`` or a
            plain state dict, e.g. from
            ``tools/model_converters/mplug2_official_to_mmengine.py``). It is loaded
            weights-only (:mod:`mplug2.utils.checkpoint`; a URL too) and strictly: a
            missing, unexpected or wrongly shaped key raises a ``RuntimeError`` listing the
            keys. None leaves the randomly initialised weights (a warning says so).
        device: where the model runs (``'cpu'``, ``'cuda'``, ``'cuda:1'`` ...).
        cfg_options: overrides merged into the config (``{'model.generation.num_beams': 3}``).
        strict: False loads the tensors that fit and logs the others (the explicit opt-out,
            e.g. for a checkpoint of a model with an extra head).

    Returns:
        The model, on ``device``, in eval mode, with the config as ``model.cfg``.
    """
    if isinstance(config, (str, os.PathLike)):
        config = os.fspath(config)
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config!r}')
        cfg = Config.fromfile(config)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        raise TypeError(f'config must be a file path or a mmengine Config, got {type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('model') is None:
        raise KeyError('the config has no `model` to build')

    from mplug2.registry import MODELS
    with DefaultScope.overwrite_default_scope(_scope(cfg)):
        model = MODELS.build(cfg.model)

    if checkpoint is not None:
        from mplug2.utils.checkpoint import is_remote_checkpoint, load_model_checkpoint
        checkpoint = os.fspath(checkpoint)
        if not is_remote_checkpoint(checkpoint) and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint file not found: {checkpoint!r}')
        # Mapping to CPU first avoids a GPU memory spike; weights-only, as every load.
        load_model_checkpoint(model, checkpoint, strict=strict, map_location='cpu')
    else:
        print_log('init_model: no checkpoint given, the model has random weights',
                  logger='current', level=logging.WARNING)
    model.cfg = cfg
    model.to(device)
    model.eval()
    return model


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def _test_pipeline_cfg(cfg: Config, model: Optional[torch.nn.Module] = None) -> list:
    if cfg.get('test_pipeline') is not None:
        return copy.deepcopy(list(cfg.test_pipeline))
    dataset = (cfg.get('test_dataloader') or {}).get('dataset')
    # Dataset wrappers (ConcatDataset, RepeatDataset ...) hold the real dataset(s) inside.
    while isinstance(dataset, dict) and dataset.get('pipeline') is None:
        inner = dataset.get('dataset') or (dataset.get('datasets') or [None])[0]
        dataset = inner
    if isinstance(dataset, dict) and dataset.get('pipeline') is not None:
        return copy.deepcopy(list(dataset.pipeline))
    img_size = getattr(getattr(model, 'vision_encoder', None), 'img_size', None)
    if img_size is None:
        img_size = (cfg.model.get('vision_encoder') or {}).get('img_size', 224)
    height, width = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    pipeline = copy.deepcopy(DEFAULT_TEST_PIPELINE)
    pipeline[1]['scale'] = (width, height)
    print_log('the config defines neither test_pipeline nor test_dataloader.dataset.pipeline: '
              f'using the official test pipeline {pipeline}', logger='current', level=logging.WARNING)
    return pipeline


def build_test_pipeline(cfg: Config, model: Optional[torch.nn.Module] = None) -> Compose:
    """The test pipeline of ``cfg`` as a callable (see the module docstring for the lookup)."""
    with DefaultScope.overwrite_default_scope(_scope(cfg)):
        return Compose(_test_pipeline_cfg(cfg, model))


def _video_paths(videos: VideoInput) -> tuple[List[str], bool]:
    """-> (paths, whether a single video was given). Missing files raise, naming the file."""
    single = isinstance(videos, (str, os.PathLike))
    items = [videos] if single else list(videos)
    if not items:
        raise ValueError('no video given')
    paths = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f'a video must be a file path, got {type(item).__name__}')
        path = os.fspath(item)
        if osp.isdir(path):
            raise IsADirectoryError(f'video path is a directory, not a file: {path!r}')
        if not osp.isfile(path):
            raise FileNotFoundError(f'video file not found: {path!r}')
        paths.append(path)
    return paths, single


def _questions(questions: Union[None, str, Sequence[str]], count: int) -> List[Optional[str]]:
    """One question per video, checked: a string (``TypeError``), not blank and not empty
    once cleaned as the test pipeline's ``CleanQuestion`` cleans it (``ValueError``)."""
    from mplug2.datasets.transforms.text import pre_question
    if questions is None:
        return [None] * count
    if isinstance(questions, str):
        questions = [questions] * count
    elif isinstance(questions, Iterable) and not isinstance(questions, (bytes, Mapping)):
        questions = list(questions)
    else:
        raise TypeError(f'a question must be a string (or a list of strings, one per video), '
                        f'got {type(questions).__name__}')
    if len(questions) != count:
        raise ValueError(f'got {count} videos but {len(questions)} questions')
    for index, question in enumerate(questions):
        where = f' (question {index + 1} of {len(questions)})' if len(questions) > 1 else ''
        if not isinstance(question, str):
            raise TypeError(f'a question must be a string, got {type(question).__name__}{where}')
        if not question.strip():
            raise ValueError(f'a question must be a non-empty string, got {question!r}{where}')
        if not pre_question(question, max_words=len(question) + 1).strip():
            raise ValueError(f'the question {question!r} is empty once cleaned (lower-cased, '
                             'without the punctuation ,.\'!?"()*#:;~): nothing is left to '
                             f'ask{where}')
    return questions


def _check_capability(model: torch.nn.Module, task: str) -> None:
    from mplug2.models import MPLUG2Captioner, MPLUG2QA
    if task == 'qa' and not isinstance(model, MPLUG2QA):
        raise TypeError(f'{type(model).__name__} cannot answer questions: question answering needs '
                        'a video QA model (type=MPLUG2QA, e.g. configs/mplug2/'
                        'mplug2-base_videoqa_model.py)' + (
                            '; this is a captioning model, use caption_video'
                            if isinstance(model, MPLUG2Captioner) else ''))
    if task == 'caption' and not isinstance(model, MPLUG2Captioner):
        raise TypeError(f'{type(model).__name__} cannot caption videos: captioning needs a '
                        'captioning model (type=MPLUG2Captioner, e.g. configs/mplug2/'
                        'mplug2-base_videocaption_model.py)' + (
                            '; this is a question answering model, use answer_question with '
                            'a question' if isinstance(model, MPLUG2QA) else ''))


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------
def inference_model(model: torch.nn.Module,
                    videos: VideoInput,
                    questions: Union[None, str, Sequence[str]] = None,
                    batch_size: int = 8) -> list:
    """Run ``model`` on video files; returns one data sample per video, with the prediction.

    QA models (``MPLUG2QA``) need ``questions`` and write ``pred_answer``; captioning
    models (``MPLUG2Captioner``) take no question and write ``pred_caption``.

    Args:
        model: a model from :func:`init_model` (it needs ``model.cfg``).
        videos: a video file path or a list of them.
        questions: one question per video, or one for all of them, or None.
        batch_size: videos per forward pass.

    Returns:
        The :class:`~mplug2.structures.DataSample` of each video, in order (a list even
        for a single video).
    """
    from mplug2.models import MPLUG2QA
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise AttributeError('the model has no `cfg`: build it with mplug2.apis.init_model or '
                             'set model.cfg to its mmengine Config')
    paths, _ = _video_paths(videos)
    questions = _questions(questions, len(paths))
    if questions[0] is not None:
        _check_capability(model, 'qa')
    elif isinstance(model, MPLUG2QA):
        raise ValueError(f'{type(model).__name__} answers questions: give one question per video')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')

    pipeline = build_test_pipeline(cfg, model)
    samples = []
    for index, (path, question) in enumerate(zip(paths, questions)):
        info = dict(filename=path, video_id=osp.splitext(osp.basename(path))[0],
                    sample_idx=index)
        if question is not None:
            info['question'] = question
        with DefaultScope.overwrite_default_scope(_scope(cfg)):
            samples.append(pipeline(info))

    was_training = model.training
    model.eval()
    results = []
    try:
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                results.extend(model.test_step(pseudo_collate(samples[start:start + batch_size])))
    finally:
        model.train(was_training)
    return results


def answer_question(model: torch.nn.Module,
                    video: VideoInput,
                    question: Union[str, Sequence[str]],
                    batch_size: int = 8) -> Union[str, List[str]]:
    """Answer ``question`` about ``video`` with a video QA model (``MPLUG2QA``).

    Args:
        model: a model from :func:`init_model`.
        video: a video file path, or a list of them.
        question: one question, or one per video.
        batch_size: videos per forward pass.

    Returns:
        The answer, or the list of answers when ``video`` is a list.
    """
    _check_capability(model, 'qa')
    if question is None:
        raise ValueError('answer_question needs a question')
    _, single = _video_paths(video)
    answers = [sample.pred_answer for sample in inference_model(model, video, question, batch_size)]
    return answers[0] if single else answers


def caption_video(model: torch.nn.Module, video: VideoInput,
                  batch_size: int = 8) -> Union[str, List[str]]:
    """Caption ``video`` with a captioning model (``MPLUG2Captioner``).

    Returns:
        The caption, or the list of captions when ``video`` is a list.
    """
    _check_capability(model, 'caption')
    _, single = _video_paths(video)
    captions = [sample.pred_caption for sample in inference_model(model, video, None, batch_size)]
    return captions[0] if single else captions
