"""mplug2.apis: init_model / answer_question / caption_video on tiny moving-shapes videos, and the demo CLI."""
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope

import mplug2  # noqa: F401  compatibility layer first
from mplug2.apis import answer_question, build_test_pipeline, caption_video, inference_model, init_model
from mplug2.datasets.moving_shapes import QUESTIONS, generate_moving_shapes
from mplug2.registry import MODELS
from mplug2.utils.checkpoint import load_checkpoint_file
from tests.conftest import logged_warnings, tiny_mplug2, write_vocab

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE, FRAMES = 32, 4
QUESTION = QUESTIONS['color']


def _model_cfg(model_type, vocab, **overrides):
    # tests/conftest.py sizes, but a 32x32 input with patch 8 (the rendered video size).
    cfg = tiny_mplug2(model_type, vocab, **overrides)
    cfg['vision_encoder'] = dict(type='DualVisionEncoder', img_size=SIZE,
                                 arch=dict(width=32, layers=2, heads=2, patch_size=8))
    cfg['data_preprocessor'] = dict(type='MPLUG2DataPreprocessor')
    return cfg


def _write_config(path, model, with_pipeline=True):
    cfg = dict(default_scope='mplug2', model=model)
    if with_pipeline:
        pipeline = [
            dict(type='LoadVideoFrames', num_frames=FRAMES, test_mode=True),
            dict(type='VideoResize', scale=SIZE, interpolation='nearest'),
            dict(type='CleanQuestion', max_words=50),
            dict(type='PackMultimodalInputs'),
        ]
        cfg['test_dataloader'] = dict(
            batch_size=2, num_workers=0,
            dataset=dict(type='VideoQADataset', ann_file='unused.jsonl', data_prefix=dict(video='.'),
                         test_mode=True, pipeline=pipeline))
    Config(cfg).dump(str(path))
    return str(path)


def _save_random_checkpoint(config, path, seed):
    cfg = Config.fromfile(config)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mplug2'):
        model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(path))
    return str(path)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('apis')
    generate_moving_shapes(str(root / 'shapes'), num_train=0, num_test=2, num_frames=FRAMES, size=SIZE,
                           seed=0)
    videos = sorted(str(p) for p in (root / 'shapes' / 'videos').iterdir())
    assert len(videos) == 2
    vocab = write_vocab(root / 'vocab.txt')
    qa_config = _write_config(root / 'tiny_videoqa.py', _model_cfg(
        'MPLUG2QA', vocab, generation=dict(num_beams=2, max_length=4, min_length=1)))
    cap_config = _write_config(root / 'tiny_videocaption.py', _model_cfg(
        'MPLUG2Captioner', vocab, text_encoder=None, fusion=None, prompt='a video of',
        generation=dict(num_beams=2, max_length=6, min_length=1)))
    return dict(
        root=root, videos=videos, vocab=vocab, qa_config=qa_config, cap_config=cap_config,
        qa_ckpt=_save_random_checkpoint(qa_config, root / 'qa.pth', seed=0),
        cap_ckpt=_save_random_checkpoint(cap_config, root / 'cap.pth', seed=1))


@pytest.fixture(scope='module')
def qa_model(setup):
    return init_model(setup['qa_config'], setup['qa_ckpt'])


@pytest.fixture(scope='module')
def captioner(setup):
    return init_model(setup['cap_config'], setup['cap_ckpt'])


def test_init_model_loads_weights_eval_mode_and_cfg(setup, qa_model):
    assert not qa_model.training
    assert isinstance(qa_model.cfg, Config) and qa_model.cfg.model.type == 'MPLUG2QA'
    saved = load_checkpoint_file(setup['qa_ckpt'])['state_dict']
    state = qa_model.state_dict()
    assert set(state) == set(saved)
    for name, value in saved.items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=0)


def test_answer_question_and_caption_video_return_strings(setup, qa_model, captioner):
    """A string for one video, a list of strings for a list: the same results either way."""
    answer = answer_question(qa_model, setup['videos'][0], QUESTION)
    assert isinstance(answer, str) and answer
    answers = answer_question(qa_model, setup['videos'], [QUESTION, QUESTIONS['shape']])
    assert isinstance(answers, list)
    assert answers == [answer, answer_question(qa_model, setup['videos'][1], QUESTIONS['shape'])]
    caption = caption_video(captioner, setup['videos'][1])
    assert isinstance(caption, str) and caption
    captions = caption_video(captioner, setup['videos'], batch_size=1)
    assert captions == [caption_video(captioner, setup['videos'][0]), caption]
    assert caption_video(captioner, setup['videos'], batch_size=2) == captions
    samples = inference_model(captioner, setup['videos'][0])
    assert samples[0].video_id == osp.splitext(osp.basename(setup['videos'][0]))[0]
    assert tuple(samples[0].img_shape) == (SIZE, SIZE)


def _run_directly(config, checkpoint, model_type, videos, questions):
    """The same model and pipeline assembled by hand, without mplug2.apis."""
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mplug2'):
        model = MODELS.build(cfg.model)
        pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
        samples = []
        for index, video in enumerate(videos):
            info = dict(filename=video, sample_idx=index)
            if questions is not None:
                info['question'] = questions[index]
            samples.append(pipeline(info))
    model.load_state_dict(load_checkpoint_file(checkpoint)['state_dict'], strict=True)
    model.eval()
    data = model.data_preprocessor(pseudo_collate(samples), False)
    assert data['inputs'].shape == (len(videos), 3, FRAMES, SIZE, SIZE)
    outputs = model.predict(data['inputs'], data['data_samples'])
    key = 'pred_answer' if model_type == 'qa' else 'pred_caption'
    return [sample.get(key) for sample in outputs]


def test_results_equal_running_the_model_directly(setup, qa_model, captioner):
    questions = [QUESTION, QUESTIONS['direction']]
    expected = _run_directly(setup['qa_config'], setup['qa_ckpt'], 'qa', setup['videos'], questions)
    assert answer_question(qa_model, setup['videos'], questions) == expected
    assert answer_question(qa_model, setup['videos'], questions) == expected  # repeatable
    expected = _run_directly(setup['cap_config'], setup['cap_ckpt'], 'caption', setup['videos'], None)
    assert caption_video(captioner, setup['videos']) == expected


@pytest.fixture(scope='module')
def varied_qa(setup):
    """(model, videos, answers): a QA model, loaded through init_model, whose answers differ
    from video to video (random weights plus noise: far from the near-uniform initial outputs),
    and 3 videos with 3 different answers."""
    root = setup['root'] / 'varied'
    generate_moving_shapes(str(root), num_train=0, num_test=8, num_frames=FRAMES, size=SIZE, seed=0)
    cfg = Config.fromfile(setup['qa_config'])
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mplug2'):
        model = MODELS.build(cfg.model)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    checkpoint = root / 'varied_qa.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(checkpoint))
    model = init_model(setup['qa_config'], str(checkpoint))
    by_answer = {}
    for video in sorted(str(p) for p in (root / 'videos').iterdir()):
        by_answer.setdefault(answer_question(model, video, QUESTION), video)  # one at a time
    assert len(by_answer) >= 3, f'the videos should get different answers: {by_answer}'
    answers = sorted(by_answer)[:3]
    return model, [by_answer[answer] for answer in answers], answers


def test_results_keep_the_order_of_the_inputs(varied_qa):
    """Answers that differ per video come back in the order of the videos, whatever the batch
    size and the order of the list."""
    model, videos, answers = varied_qa
    assert len(set(answers)) == 3
    for batch_size in (1, 2, 8):
        assert answer_question(model, videos, QUESTION, batch_size=batch_size) == answers
        assert answer_question(model, videos[::-1], QUESTION, batch_size=batch_size) == answers[::-1]
    rotated = videos[1:] + videos[:1]
    samples = inference_model(model, rotated, QUESTION, batch_size=2)
    assert [s.pred_answer for s in samples] == answers[1:] + answers[:1]
    assert [s.video_id for s in samples] == [osp.splitext(osp.basename(v))[0] for v in rotated]
    assert [s.sample_idx for s in samples] == [0, 1, 2]
    # one question per video, in the same order
    questions = [QUESTION, QUESTIONS['shape'], QUESTION]
    mixed = answer_question(model, videos, questions, batch_size=2)
    assert mixed[0] == answers[0] and mixed[2] == answers[2]
    assert mixed[1] == answer_question(model, videos[1], QUESTIONS['shape'])


def test_missing_video_error_names_the_file(setup, qa_model, captioner):
    missing = str(setup['root'] / 'no_such_video.mp4')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        answer_question(qa_model, missing, QUESTION)
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        caption_video(captioner, [setup['videos'][0], missing])


def test_wrong_capability_and_bad_arguments(setup, qa_model, captioner):
    video = setup['videos'][0]
    with pytest.raises(TypeError, match='cannot answer questions.*use caption_video'):
        answer_question(captioner, video, QUESTION)
    with pytest.raises(TypeError, match='cannot caption videos.*use answer_question'):
        caption_video(qa_model, video)
    with pytest.raises(ValueError, match='give one question per video'):
        inference_model(qa_model, video)
    with pytest.raises(ValueError, match='2 videos but 3 questions'):
        answer_question(qa_model, setup['videos'], [QUESTION] * 3)
    with pytest.raises(ValueError, match='non-empty string'):
        answer_question(qa_model, video, '  ')


# 'balls' is 2 word pieces in the tiny vocabulary ('ball', '##s'): these 42 words (within
# CleanQuestion's 50) make 81 tokens with [CLS], more than the 64 rows of the tiny position tables.
LONG_QUESTION = 'what color is the ' + ' '.join(['balls'] * 38) + '?'


def test_question_longer_than_the_position_table_is_truncated_with_a_warning(setup):
    model = init_model(setup['qa_config'], setup['qa_ckpt'])  # its own warning counters
    assert model.text_encoder.config.max_position_embeddings == 64
    with logged_warnings() as warnings:
        answer = answer_question(model, setup['videos'][0], LONG_QUESTION)  # was an IndexError
    assert isinstance(answer, str)
    assert len(warnings) == 1
    assert '1 of 1 texts had more than 64 tokens' in warnings[0]
    assert 'the longest 81' in warnings[0] and '17 tokens dropped' in warnings[0]
    assert "text_encoder's position table (max_position_embeddings) has 64 positions" in warnings[0]
    # Cut to 64 tokens: the answer is that of the question's first 63 word pieces.
    truncated = ' '.join(LONG_QUESTION.split()[:4] + ['balls'] * 29) + ' ball'
    assert len(model.tokenizer(truncated)['input_ids'][0]) == 64
    assert answer_question(model, setup['videos'][0], truncated) == answer

    # 60 words: CleanQuestion's word cut (50) is reported too, then the token cut (counted).
    with logged_warnings() as warnings:
        answer = answer_question(model, setup['videos'], [' '.join(['balls'] * 60), QUESTION])
    assert len(answer) == 2
    assert any("CleanQuestion: 'question' has 60 words, more than max_words=50" in message
               for message in warnings)


def test_every_tokenization_fits_the_position_table(qa_model):
    """Training too: a max_length above the position table is capped to it, with a warning."""
    with logged_warnings() as warnings:
        tokens = qa_model.tokenize([LONG_QUESTION, QUESTION], 200)
    assert tokens['input_ids'].shape == (2, 64) and tokens['attention_mask'][1].sum() < 64
    assert len(warnings) == 1 and 'max_length=200 is more than the 64 positions' in warnings[0]
    memory, _ = qa_model.encode_memory(torch.zeros(1, 3, FRAMES, SIZE, SIZE), [LONG_QUESTION],
                                       training=True)
    assert memory.shape[0] == 1


def test_normal_question_gives_no_warning(setup, qa_model):
    with logged_warnings() as warnings:
        answer_question(qa_model, setup['videos'], [QUESTION, QUESTIONS['shape']])
    assert warnings == []


def test_bad_questions_are_refused_with_clear_errors(setup, qa_model):
    video, videos = setup['videos'][0], setup['videos']
    with pytest.raises(TypeError, match=r'a question must be a string .*got int'):
        answer_question(qa_model, video, 3)
    with pytest.raises(TypeError, match=r'a question must be a string, got int \(question 2 of 2\)'):
        answer_question(qa_model, videos, [QUESTION, 3])
    with pytest.raises(TypeError, match='a question must be a string, got bytes'):
        answer_question(qa_model, video, [b'what color'])
    for question in ('?!', '...', ' ? ! '):
        with pytest.raises(ValueError, match=re.escape(f'the question {question!r} is empty')):
            answer_question(qa_model, video, question)
    with pytest.raises(ValueError, match=r"the question '\?!' is empty.*question 1 of 2"):
        answer_question(qa_model, videos, ['?!', QUESTION])
    # The pipeline's CleanQuestion refuses it too (e.g. when called without the API's checks).
    pipeline = build_test_pipeline(qa_model.cfg, qa_model)
    with pytest.raises(ValueError, match=r"CleanQuestion: the question '\.\.\.' is empty"):
        pipeline(dict(filename=video, question='...'))


def test_checkpoint_loading_is_strict(setup, tmp_path):
    state = load_checkpoint_file(setup['qa_ckpt'])['state_dict']
    dropped = sorted(state)[0]
    missing = dict(state)
    del missing[dropped]
    torch.save(dict(state_dict=missing), str(tmp_path / 'missing.pth'))
    with pytest.raises(RuntimeError, match=re.escape(dropped)):
        init_model(setup['qa_config'], str(tmp_path / 'missing.pth'))
    extra = dict(state, **{'extra_head.weight': torch.zeros(1)})
    torch.save(extra, str(tmp_path / 'extra.pth'))  # a plain state dict, as the converter writes
    with pytest.raises(RuntimeError, match='extra_head.weight'):
        init_model(setup['qa_config'], str(tmp_path / 'extra.pth'))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        init_model(setup['qa_config'], str(tmp_path / 'nope.pth'))


def test_config_object_options_and_default_pipeline(setup, qa_model):
    cfg = Config.fromfile(setup['qa_config'])
    model = init_model(cfg, setup['qa_ckpt'], cfg_options={'model.generation.num_beams': 1})
    assert model.generation['num_beams'] == 1 and cfg.model.generation.num_beams == 2  # cfg not modified
    # A model-only config: the official test pipeline (16 middle frames, resize to img_size).
    model_only = _write_config(setup['root'] / 'model_only.py', Config.fromfile(setup['qa_config']).model,
                               with_pipeline=False)
    model = init_model(model_only, setup['qa_ckpt'])
    pipeline = build_test_pipeline(model.cfg, model)
    packed = pipeline(dict(filename=setup['videos'][0], question=QUESTION))
    assert tuple(packed['inputs'].shape) == (3, 16, SIZE, SIZE)
    with torch.no_grad():
        expected = model.test_step(pseudo_collate([packed]))[0].pred_answer
    assert answer_question(model, setup['videos'][0], QUESTION) == expected


def test_demo_cli(setup, qa_model, captioner):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    video = setup['videos'][0]
    result = subprocess.run(
        [sys.executable, 'demo/video_demo.py', video, setup['qa_config'], setup['qa_ckpt'],
         '--question', QUESTION, '--device', 'cpu'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == answer_question(qa_model, video, QUESTION)


def test_demo_main_in_process(setup, captioner, capsys):
    spec = importlib.util.spec_from_file_location('video_demo', osp.join(ROOT, 'demo', 'video_demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    video = setup['videos'][1]
    assert demo.main([video, setup['cap_config'], setup['cap_ckpt']]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == caption_video(captioner, video)
    # The wrong task for the model: a clear error and exit status 2, before loading anything.
    assert demo.main([video, setup['cap_config'], setup['cap_ckpt'], '--question', QUESTION]) == 2
    assert 'takes no question' in capsys.readouterr().err
    assert demo.main([video, setup['qa_config'], setup['qa_ckpt']]) == 2
    assert 'pass --question' in capsys.readouterr().err
