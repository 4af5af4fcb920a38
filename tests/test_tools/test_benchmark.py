"""tools/analysis_tools/benchmark.py on a tiny config: the figures exist, are positive and agree
with each other (throughput from the JSON's own token counts and times)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import TINY_VOCAB, write_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, 'tools', 'analysis_tools', 'benchmark.py')
CONFIG = os.path.join(ROOT, 'tests', 'data', 'configs', 'bench_tiny.py')


def _run(tmp_path, *extra):
    vocab = write_vocab(tmp_path / 'vocab.txt')
    out = tmp_path / 'bench.json'
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    result = subprocess.run(
        [sys.executable, TOOL, CONFIG, '--batch-size', '2', '--frames', '3', '--img-size', '16',
         '--steps', '1', '--warmup', '1', '--num-beams', '2', '--max-length', '3',
         '--vocab', vocab, '--json', str(out), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_benchmark_tiny_qa(tmp_path):
    stdout, results = _run(tmp_path)
    for line in ('parameters:', 'train step (incl. AdamW step)', 'generation (KV cache)',
                 'generation (no cache)', 'peak RSS'):
        assert line in stdout, stdout
    train, cached, uncached = results['train'], results['gen_cache'], results['gen_nocache']
    assert train['params_total'] > 0
    assert sum(train['params_per_module'].values()) == train['params_total']
    assert train['params_per_module']['text_decoder'] > 0
    for key in ('step_s', 'fwd_bwd_s', 'forward_s', 'backward_s', 'optimizer_s', 'peak_rss_gb',
                'rss_model_gb'):
        assert train[key] > 0, key
    assert train['peak_rss_gb'] >= train['rss_model_gb']
    for gen in (cached, uncached):
        assert gen['num_beams'] == 2 and gen['max_length'] == 3 and gen['batch'] == 2
        for key in ('latency_s', 'decode_s', 'tokens_per_s', 'peak_rss_gb'):
            assert gen[key] > 0, key
        assert 1 <= gen['generated_steps'] <= 3
        _check_throughput(gen)
    assert len(TINY_VOCAB) == 45  # bench_tiny.py's vocab_size
    label = {'gen_cache': 'KV cache', 'gen_nocache': 'no cache'}
    for phase in ('gen_cache', 'gen_nocache'):  # the printed figures are those of the JSON
        gen = results[phase]
        assert (f'generation ({label[phase]}): batch 2, beams 2, max 3, {gen["generated_steps"]} steps: '
                f'{gen["latency_s"]:.3f}s median') in stdout
        assert (f'{gen["tokens_per_s"]:.2f} tokens/s (decode-only {gen["decode_tokens_per_s"]:.2f})'
                in stdout)


def _check_throughput(gen):
    """tokens/s = generated tokens x batch / time, from the JSON's own fields (1 timed step)."""
    assert gen['latency_times_s'] == [gen['latency_s']]
    assert gen['tokens_per_s'] == pytest.approx(
        gen['generated_steps'] * gen['batch'] / gen['latency_s'], rel=1e-12)
    assert gen['decode_tokens_per_s'] == pytest.approx(
        gen['generated_steps'] * gen['batch'] / gen['decode_s'], rel=1e-12)
    assert gen['decode_s'] <= gen['latency_s']  # the decoder's generate is part of predict


def test_benchmark_tiny_captioner_images_bf16(tmp_path):
    stdout, results = _run(
        tmp_path, '--frames', '0', '--dtype', 'bf16', '--no-optimizer', '--with-cp',
        '--phases', 'train', 'gen_cache', '--cfg-options', 'model.type=MPLUG2Captioner',
        'model.text_encoder=None', 'model.fusion=None')
    assert 'train step (no optimizer step)' in stdout
    assert set(results) == {'_meta', 'train', 'gen_cache'}
    assert results['train']['optimizer_included'] is False
    assert 'text_encoder' not in results['train']['params_per_module']
    assert results['train']['step_s'] > 0 and results['gen_cache']['batch'] == 2
    _check_throughput(results['gen_cache'])


@pytest.mark.parametrize('config', ['mplug2-base_videoqa_model.py', 'mplug2-base_videocaption_model.py'])
def test_documented_model_configs_build(config):
    """The commands of docs/benchmark.md name model-only configs, whose data preprocessor has
    no scope: the tool builds them in the mplug2 scope (built on the meta device: sizes only)."""
    spec = importlib.util.spec_from_file_location('mplug2_benchmark_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args([os.path.join(ROOT, 'configs', 'mplug2', config)])
    docs = open(os.path.join(ROOT, 'docs', 'benchmark.md'), encoding='utf-8').read()
    assert f'configs/mplug2/{config}' in docs
    with torch.device('meta'):
        model, _ = tool.build_model(args)
    assert type(model.data_preprocessor).__name__ == 'MPLUG2DataPreprocessor'
    assert model.vision_encoder.width == 768 and model.text_width == 768
