"""Convert an official mPLUG-2 checkpoint (X-PLUG/mPLUG-2) to an MMEngine checkpoint of this project.

Usage::

    python tools/model_converters/mplug2_official_to_mmengine.py IN.pth OUT.pth \\
        [--task qa|caption] [--config CONFIG [--cfg-options KEY=VALUE ...]] \\
        [--num-text-layers N] [--num-universal-layers S] \\
        [--num-fusion-layers-total F_TOTAL] [--num-fusion-layers F] [--ignore-keys REGEX ...]

IN may be the fine-tuned format ``{'model': ..., 'optimizer', 'lr_scheduler', 'config',
'epoch'}``, DeepSpeed's ``{'module': ...}`` or a raw state dict; it is read weights-only.
OUT is ``{'state_dict': converted, 'meta': {...}}``, loadable with ``load_from=OUT``.

The conversion is :mod:`mplug2.checkpoints.official`. With ``--config`` the model is built
from the config (the tokenizer vocabulary must exist: ``--cfg-options
model.tokenizer.vocab_file=PATH``), the layer counts and the task are taken from it, its
``state_dict()`` is the target layout, the converted weights are loaded with ``strict=True``
and every loaded tensor is compared with its source tensor. Without it, the target layout is
that of our modules built on the meta device in the sizes the checkpoint implies
(:func:`mplug2.checkpoints.official.build_target_layout`).
"""
import argparse
import os
import sys
from typing import Dict, Optional, Sequence

import torch

from mplug2.checkpoints.official import (DROP_RULES, OfficialCheckpointError, plan_official_conversion,
                                         read_official_checkpoint)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Convert an official mPLUG-2 checkpoint to an mplug2 (MMEngine) checkpoint')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument('--task', choices=['qa', 'caption'], default=None,
                        help='target model: qa (MPLUG2QA) or caption (MPLUG2Captioner); '
                        'default: from --config, else qa')
    parser.add_argument('--config', help='model config to build and load the result into (strict)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.tokenizer.vocab_file=PATH')
    parser.add_argument('--num-text-layers', type=int, help='N: text layers incl. universal ones')
    parser.add_argument('--num-universal-layers', type=int, help='S: universal layers (last S text layers)')
    parser.add_argument('--num-fusion-layers-total', type=int, help='fusion layers stored')
    parser.add_argument('--num-fusion-layers', type=int, help='fusion layers run (the last ones)')
    parser.add_argument('--ignore-keys', nargs='+', default=[], metavar='REGEX',
                        help='drop extra source keys matching these regular expressions')
    return parser.parse_args(argv)


def build_model_from_config(config: str, cfg_options: Optional[dict]):
    import mplug2  # noqa: F401  (compatibility layer, registries)
    from mmengine.config import Config

    from mplug2.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mplug2'))
    try:
        model = MODELS.build(cfg.model)
    except FileNotFoundError as error:
        raise SystemExit(
            f'error: building the model from {config} failed: {error}\nThe model builds its tokenizer: '
            'pass the vocabulary with --cfg-options model.tokenizer.vocab_file=PATH/vocab.txt') from None
    model.eval()
    return model


def config_overrides(model) -> Dict[str, object]:
    """Task and layer counts of a built MPLUG2 model."""
    from mplug2.models import MPLUG2Captioner, MPLUG2QA
    if isinstance(model, MPLUG2QA):
        task = 'qa'
    elif isinstance(model, MPLUG2Captioner):
        task = 'caption'
    else:
        raise SystemExit(f'error: --config must build MPLUG2QA or MPLUG2Captioner, got {type(model).__name__}')
    if model.universal_layers is None:
        raise SystemExit('error: the official checkpoints have universal layers; the config has none')
    num_uni = len(model.universal_layers.layers)
    counts = dict(task=task, num_universal_layers=num_uni)
    if model.text_encoder is not None:
        counts['num_text_layers'] = len(model.text_encoder.layers) + num_uni
    if model.fusion is not None:
        counts['num_fusion_layers'] = len(model.fusion.layers)
    return counts


def verify_loaded(model, converted: Dict[str, torch.Tensor], source: Dict[str, torch.Tensor],
                  mapping: Dict[str, str]) -> int:
    """Every model tensor equals its source tensor: same shape (no transposes), same values."""
    state = model.state_dict()
    bad = []
    for target, src_key in mapping.items():
        got, want = state[target], source[src_key]
        if tuple(got.shape) != tuple(want.shape) or not torch.equal(got, want.to(got.dtype)):
            bad.append(f'{target} <- {src_key}')
    if bad:
        raise SystemExit('error: loaded tensors differ from their sources: ' + ', '.join(bad[:20]))
    return len(mapping)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    overrides = dict(num_text_layers=args.num_text_layers, num_universal_layers=args.num_universal_layers,
                     num_fusion_layers_total=args.num_fusion_layers_total,
                     num_fusion_layers=args.num_fusion_layers)
    task = args.task
    model = None
    if args.config:
        model = build_model_from_config(args.config, args.cfg_options)
        from_config = config_overrides(model)
        config_task = from_config.pop('task')
        if task is not None and task != config_task:
            raise SystemExit(f'error: --task {task} but {args.config} builds a {config_task} model')
        task = config_task
        for name, value in from_config.items():
            if overrides[name] is not None and overrides[name] != value:
                raise SystemExit(f'error: --{name.replace("_", "-")} {overrides[name]} but the config has {value}')
            overrides[name] = value
    elif args.cfg_options:
        raise SystemExit('error: --cfg-options needs --config')
    task = task or 'qa'

    state_dict, info = read_official_checkpoint(args.src)
    expected = model.state_dict() if model is not None else None
    try:
        plan = plan_official_conversion(state_dict, task=task, ignore_keys=args.ignore_keys,
                                        expected=expected, **overrides)
    except OfficialCheckpointError as error:
        hint = ''
        if model is not None and task == 'caption' and model.text_encoder is not None:
            hint = ('\nhint: the official caption model never runs its text encoder and fusion module; '
                    'build the captioner with model.text_encoder=None model.fusion=None')
        raise SystemExit(f'error: {error}{hint}') from None
    converted = plan.convert(state_dict)

    print(f'read {args.src} ({info["format"]} format, {len(state_dict)} keys, epoch {info["epoch"]})')
    print(f'task: {task}; layer counts: {plan.layer_counts}')
    if plan.renamed:
        print(f'pre-training names normalised: {len(plan.renamed)} keys (removed "bert."/"fusion.")')
    print(f'mapped: {len(converted)} tensors, '
          f'{sum(t.numel() for t in {id(t): t for t in converted.values()}.values()):,} parameters')
    for rule, keys in plan.dropped.items():
        print(f'dropped {len(keys):5d}  {rule}: {DROP_RULES[rule]}')

    if model is not None:
        try:
            model.load_state_dict(converted, strict=True)
        except RuntimeError as error:  # missing / unexpected keys, size mismatches
            raise SystemExit(f'error: strict loading into the model of {args.config} failed:\n{error}') from None
        count = verify_loaded(model, converted, state_dict, plan.mapping)
        print(f'loaded into {type(model).__name__} from {args.config} (strict): {count} tensors identical '
              'to their sources')

    meta = dict(
        converted_from='official mPLUG-2 (X-PLUG/mPLUG-2)',
        source=os.path.abspath(args.src),
        source_format=info['format'],
        source_top_level_keys=info['top_level_keys'],
        source_epoch=info['epoch'],
        source_config=info['config'],
        task=task,
        layer_counts=plan.layer_counts,
        num_mapped=len(converted),
        dropped={rule: len(keys) for rule, keys in plan.dropped.items()},
        config=os.path.abspath(args.config) if args.config else None,
    )
    out_dir = os.path.dirname(os.path.abspath(args.dst))
    os.makedirs(out_dir, exist_ok=True)
    torch.save({'state_dict': converted, 'meta': meta}, args.dst)
    print(f'saved {args.dst}')
    return dict(plan=plan, meta=meta)


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
