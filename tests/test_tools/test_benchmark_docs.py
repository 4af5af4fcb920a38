"""Every command of docs/benchmark.md, on a tiny config of the same model shape.

The commands are read from the document (its ``bash`` blocks, continuation lines joined); a command
with optional ``[...]`` flags runs twice, without them and with all of them. The documented Base
config is replaced by a tiny one of the same task and module set, and size flags are added
(batch 2, 3 frames of 16 px, 2 beams, 3 tokens, 1 thread). The tool runs as documented, except that each
phase runs in this process instead of a fresh one (tests/test_tools/test_benchmark.py runs the
tool as a subprocess): a few seconds for all the commands.
"""
import importlib.util
import json
import os
import re
import shlex
import sys
import types

import pytest
import torch
from mmengine.config import Config

from tests.conftest import write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, 'tools', 'analysis_tools', 'benchmark.py')
DOCS = os.path.join(ROOT, 'docs', 'benchmark.md')
PROGRAM = 'python tools/analysis_tools/benchmark.py'
TINY = {
    'configs/mplug2/mplug2-base_videoqa_model.py': 'tests/data/configs/bench_tiny.py',
    'configs/mplug2/mplug2-base_videocaption_model.py': 'tests/data/configs/bench_tiny_caption.py',
}
TINY_FLAGS = ['--batch-size', '2', '--frames', '3', '--img-size', '16', '--num-beams', '2',
              '--max-length', '3', '--threads', '1']
MODULES = ('vision_encoder', 'universal_layers', 'text_encoder', 'fusion', 'text_decoder')


def documented_commands():
    """The benchmark command lines of the document's bash blocks, in order."""
    with open(DOCS, encoding='utf-8') as f:
        text = f.read()
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        for line in re.sub(r'\\\n\s*', ' ', block).splitlines():
            line = line.strip()
            if line.startswith(PROGRAM):
                commands.append(line)
    return commands


def variants(command):
    """argv lists (after the program): without the optional [...] flags, and with all of them."""
    optional = re.findall(r'\[([^\]]+)\]', command)
    bare = shlex.split(re.sub(r'\s*\[[^\]]+\]', '', command))[len(PROGRAM.split()):]
    if not optional:
        return [bare]
    return [bare, bare + [word for flags in optional for word in flags.split()]]


CASES = [argv for command in documented_commands() for argv in variants(command)]


def _case_id(argv):
    config = os.path.basename(argv[0]).replace('mplug2-base_', '').replace('_model.py', '')
    return '-'.join([config] + [word.lstrip('-') for word in argv[1:] if word.startswith('-')])


def _load_tool():
    spec = importlib.util.spec_from_file_location('mplug2_benchmark_tool_docs', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_the_document_has_the_commands():
    commands = documented_commands()
    assert len(commands) >= 6, commands
    assert {shlex.split(command)[2] for command in commands} == set(TINY)
    assert len(CASES) >= 9


@pytest.mark.parametrize('base, tiny', sorted(TINY.items()))
def test_tiny_configs_have_the_documented_model_shape(base, tiny):
    base_model = Config.fromfile(os.path.join(ROOT, base)).model
    tiny_model = Config.fromfile(os.path.join(ROOT, tiny)).model
    assert tiny_model.type == base_model.type
    assert [bool(tiny_model.get(m)) for m in MODULES] == [bool(base_model.get(m)) for m in MODULES]
    assert tiny_model.get('prompt') == base_model.get('prompt')


@pytest.fixture
def keep_threads():
    """The phases run here set torch's thread count (--threads): restore it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('argv', CASES, ids=[_case_id(argv) for argv in CASES])
def test_documented_command_on_a_tiny_config(argv, tmp_path, monkeypatch, capsys, keep_threads):
    tool = _load_tool()
    argv = list(argv)
    argv[0] = os.path.join(ROOT, TINY[argv[0]])
    json_out = None
    if '--json' in argv:
        index = argv.index('--json') + 1
        json_out = argv[index] = str(tmp_path / os.path.basename(argv[index]))
    argv += TINY_FLAGS + ['--vocab', write_vocab(tmp_path / 'vocab.txt')]
    phases_run = []

    def run_phase_here(cmd, check, env):
        """The driver's ``subprocess.run([python, tool, *argv, '--phase', P, '--phase-out', F])``."""
        assert cmd[0] == sys.executable and check and cmd[-4] == '--phase'
        phases_run.append(cmd[-3])
        assert tool.main(cmd[2:]) is None  # one phase: writes its JSON, returns nothing
        return types.SimpleNamespace(returncode=0)

    monkeypatch.setattr(tool, 'subprocess', types.SimpleNamespace(run=run_phase_here))
    results = tool.main(argv)
    stdout = capsys.readouterr().out

    args = tool.parse_args(argv)
    assert phases_run == args.phases
    assert set(results) == {'_meta', *args.phases}
    assert 'parameters:' in stdout
    for phase in args.phases:
        result = results[phase]
        assert result['params_total'] > 0 and result['peak_rss_gb'] > 0
        if phase == 'train':
            assert result['optimizer_included'] is True
            for key in ('step_s', 'fwd_bwd_s', 'forward_s', 'backward_s', 'optimizer_s'):
                assert result[key] > 0, key
            assert len(result['step_times_s']) == args.steps
            assert f'train step (incl. AdamW step): {result["step_s"]:.3f}s' in stdout
        else:
            assert result['batch'] == 2 and result['num_beams'] == 2 and result['max_length'] == 3
            assert 1 <= result['generated_steps'] <= 3
            assert len(result['latency_times_s']) == args.steps
            # tokens/s counts every item of the batch
            assert result['tokens_per_s'] == pytest.approx(
                result['batch'] * result['generated_steps'] / result['latency_s'])
            assert result['decode_tokens_per_s'] == pytest.approx(
                result['batch'] * result['generated_steps'] / result['decode_s'])
            assert result['decode_s'] <= result['latency_s']
            label = 'KV cache' if phase == 'gen_cache' else 'no cache'
            assert f'generation ({label}): batch 2, beams 2, max 3' in stdout
            assert f'{result["tokens_per_s"]:.2f} tokens/s' in stdout
    if {'gen_cache', 'gen_nocache'} <= set(args.phases):
        assert 'KV cache speed-up (end to end)' in stdout
    if json_out is not None:
        with open(json_out) as f:
            assert json.load(f) == json.loads(json.dumps(results))
