"""Convert the official mPLUG-2 checkpoints (X-PLUG/mPLUG-2) to this project's layout.

The official video QA / captioning models keep their weights under
``visual_encoder``, ``text_encoder``, ``fusion_encoder``, ``text_decoder`` and
``visn_emb_norm`` (plus ``visn_fc`` / ``visn_layer_norm`` when the vision width
differs from the text width). Every tensor we keep is a pure rename; nothing is
transposed, split or cast:

=====================================================  =====================================
official key                                           ours
=====================================================  =====================================
``visual_encoder.visual.X``                            ``vision_encoder.X``
``visn_fc.*`` / ``visn_layer_norm.*``                  ``visual_projection.0.*`` / ``.1.*``
``visn_emb_norm.*``                                    ``universal_layers.visual_norm.*``
``text_encoder.encoder.layer.{N-S}.latents``           ``universal_layers.latents``
``text_encoder.encoder.layer.{N-S+i}.*``               ``universal_layers.layers.{i}.*``
``text_encoder.embeddings.*``                          ``text_encoder.embeddings.*`` (QA)
``text_encoder.encoder.layer.{i}.*``, i < N-S          ``text_encoder.layers.{i}.*`` (QA)
``fusion_encoder.encoder.layer.{start+j}.*``           ``fusion.layers.{j}.*`` (QA)
``text_decoder.bert.embeddings.*``                     ``text_decoder.embeddings.*``
``text_decoder.bert.encoder.layer.{i}.*``              ``text_decoder.layers.{i}.*``
``text_decoder.cls.predictions.*``                     ``text_decoder.cls.predictions.*``
=====================================================  =====================================

with N the number of text-encoder layers, S the number of universal layers (the
last S text layers) and ``start = num_fusion_layers_total - num_fusion_layers``.

Keys the model never uses are dropped by a named rule (see :data:`DROP_RULES`)
and reported; any other key is an error, and so is a target key that receives
nothing. Pre-training names (``text_encoder.bert.*``, ``fusion_encoder.fusion.*``)
are normalised first, the way the official fine-tuning loader does: in keys that
contain ``bert`` or ``fusion`` but not ``decode``, the substrings ``bert.`` and
``fusion.`` are deleted.
"""
from __future__ import annotations

import argparse
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch

__all__ = [
    'DROP_RULES', 'OfficialCheckpointError', 'ConversionPlan', 'plan_official_conversion',
    'convert_official_state_dict', 'read_official_checkpoint', 'expected_target_keys',
]


class OfficialCheckpointError(ValueError):
    """The official state dict does not map cleanly onto the model layout."""


#: Rule name -> why the keys it matches are dropped.
DROP_RULES: Dict[str, str] = OrderedDict([
    ('momentum_copies', 'momentum (EMA) copies `*_m.` used only by the no-op distillation'),
    ('mlm_heads', 'pre-training MLM heads `text_encoder.cls.*` / `fusion_encoder.cls.*`'),
    ('position_ids', '`position_ids` buffers: position ids are computed on the fly'),
    ('clip_text_tower', "CLIP's text tower kept inside `visual_encoder` but never run"),
    ('clip_visual_proj', '`visual_encoder.visual.proj`: the encoder output is taken before it'),
    ('unused_vision_ffn', '`intermediate_vision` / `output_vision`: created but never used'),
    ('unused_latents', 'latents outside the first universal layer (e.g. decoder layer latents)'),
    ('duplicate_decoder_bias', '`cls.predictions.decoder.bias` is the same tensor as `cls.predictions.bias`'),
    ('fusion_embeddings', '`fusion_encoder.embeddings`: fusion is always fed encoder states'),
    ('fusion_below_start', 'QA: fusion layers below `num_fusion_layers_total - num_fusion_layers` never run'),
    ('caption_unused_text_encoder', 'caption task: text embeddings and text layers 0..N-S-1 never run'),
    ('caption_unused_fusion', 'caption task: the fusion encoder layers never run'),
    ('ignored_by_user', 'keys matched by a user-given ignore pattern'),
])

TASKS = ('qa', 'caption')

# Official presets (configs/config_bert*.json): hidden size -> `fusion_layers`.
_RELEASE_FUSION_LAYERS = {1024: 6, 768: 3}

_BERT_SELF = [f'attention.self.{name}.{p}' for name in ('query', 'key', 'value') for p in ('weight', 'bias')]
_BERT_LAYER = (_BERT_SELF + [f'attention.output.{m}.{p}' for m in ('dense', 'LayerNorm') for p in ('weight', 'bias')]
               + [f'intermediate.dense.{p}' for p in ('weight', 'bias')]
               + [f'output.{m}.{p}' for m in ('dense', 'LayerNorm') for p in ('weight', 'bias')])
_BERT_CROSS = [key.replace('attention.', 'crossattention.', 1) for key in _BERT_LAYER[:10]]
_BERT_EMBEDDINGS = ['word_embeddings.weight', 'position_embeddings.weight', 'token_type_embeddings.weight',
                    'LayerNorm.weight', 'LayerNorm.bias']
_LM_HEAD = ['cls.predictions.bias', 'cls.predictions.transform.dense.weight', 'cls.predictions.transform.dense.bias',
            'cls.predictions.transform.LayerNorm.weight', 'cls.predictions.transform.LayerNorm.bias',
            'cls.predictions.decoder.weight']
_LT = [f'{m}.{p}' for m in ('ln', 'down_proj', 'conv', 'up_proj') for p in ('weight', 'bias')]
_VISION_BLOCK = (['attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight', 'attn.out_proj.bias']
                 + [f'{m}.{p}' for m in ('ln_1', 'ln_2', 'mlp.c_fc', 'mlp.c_proj') for p in ('weight', 'bias')]
                 + [f'lmhra{i}.{k}' for i in (1, 2) for k in _LT])
_VISION_TOP = ['conv1.weight', 'class_embedding', 'positional_embedding', 'ln_pre.weight', 'ln_pre.bias',
               'ln_post.weight', 'ln_post.bias']
_CLIP_TEXT_TOWER = ('positional_embedding', 'token_embedding.', 'transformer.', 'ln_final.', 'text_projection',
                    'logit_scale')

_TEXT_LAYER = re.compile(r'^text_encoder\.encoder\.layer\.(\d+)\.(.+)$')
_FUSION_LAYER = re.compile(r'^fusion_encoder\.encoder\.layer\.(\d+)\.(.+)$')
_DECODER_LAYER = re.compile(r'^text_decoder\.bert\.encoder\.layer\.(\d+)\.(.+)$')
_VISION_BLOCK_RE = re.compile(r'^visual_encoder\.visual\.transformer\.resblocks\.(\d+)\.')
_MOMENTUM = re.compile(r'^[A-Za-z0-9_]+_m\.')


@dataclass
class ConversionPlan:
    """What :func:`plan_official_conversion` decided for every key.

    Attributes:
        mapping: target key (ours) -> source key (as in the input state dict).
        dropped: rule name -> source keys dropped by it (rules with no keys are omitted).
        renamed: source key -> normalised key, for pre-training names.
        layer_counts: the layer counts used (derived from the keys or given).
        task: ``'qa'`` or ``'caption'``.
    """
    mapping: Dict[str, str] = field(default_factory=OrderedDict)
    dropped: Dict[str, List[str]] = field(default_factory=OrderedDict)
    renamed: Dict[str, str] = field(default_factory=OrderedDict)
    layer_counts: Dict[str, Optional[int]] = field(default_factory=dict)
    task: str = 'qa'


# --------------------------------------------------------------------------- #
# key normalisation and layer counts
# --------------------------------------------------------------------------- #
def _normalise_keys(state_dict: Mapping[str, Any]) -> Tuple[Dict[str, str], Dict[str, str]]:
    """normalised key -> source key, and the pre-training renames (source -> normalised)."""
    keys = list(state_dict)
    strip_module = bool(keys) and all(key.startswith('module.') for key in keys)
    normalised: Dict[str, str] = OrderedDict()
    renamed: Dict[str, str] = OrderedDict()
    for source in keys:
        if not isinstance(source, str):
            raise OfficialCheckpointError(f'state dict key {source!r} is not a string')
        key = source[len('module.'):] if strip_module else source
        # The official fine-tuning loader's rule for pre-training checkpoints.
        if ('bert' in key or 'fusion' in key) and 'decode' not in key:
            new_key = key.replace('fusion.', '').replace('bert.', '')
            if new_key != key:
                renamed[source] = new_key
                key = new_key
        if key in normalised:
            raise OfficialCheckpointError(
                f'keys {normalised[key]!r} and {source!r} both map to {key!r} after removing the '
                'pre-training "bert."/"fusion." names')
        normalised[key] = source
    return normalised, renamed


def _layer_indices(keys: Iterable[str], pattern: re.Pattern, suffix: Optional[str] = None) -> List[int]:
    found = set()
    for key in keys:
        match = pattern.match(key)
        if match and (suffix is None or match.group(2).startswith(suffix)):
            found.add(int(match.group(1)))
    return sorted(found)


def _hidden_size(state_dict: Mapping[str, Any], normalised: Mapping[str, str]) -> Optional[int]:
    for key in ('text_encoder.encoder.layer.0.attention.self.query.weight',
                'text_decoder.bert.encoder.layer.0.attention.self.query.weight'):
        if key in normalised:
            return int(state_dict[normalised[key]].shape[0])
    return None


def _layer_counts(state_dict, normalised, task, num_text_layers, num_universal_layers,
                  num_fusion_layers_total, num_fusion_layers) -> Dict[str, Optional[int]]:
    keys = [key for key in normalised if not _MOMENTUM.match(key)]
    text = _layer_indices(keys, _TEXT_LAYER)
    if num_text_layers is None:
        if not text:
            raise OfficialCheckpointError('no `text_encoder.encoder.layer.*` keys: cannot derive '
                                          'num_text_layers (is this an mPLUG-2 checkpoint?)')
        num_text_layers = text[-1] + 1
    if num_universal_layers is None:
        latents = _layer_indices(keys, _TEXT_LAYER, 'latents')
        cross = _layer_indices(keys, _TEXT_LAYER, 'crossattention.')
        if len(latents) == 1:
            num_universal_layers = num_text_layers - latents[0]
        elif cross:
            num_universal_layers = num_text_layers - cross[0]
        else:
            raise OfficialCheckpointError('cannot derive num_universal_layers: no text-encoder layer '
                                          'has latents or cross-attention; pass it explicitly')
    if not 1 <= num_universal_layers <= num_text_layers:
        raise OfficialCheckpointError(
            f'num_universal_layers={num_universal_layers} must be in [1, num_text_layers={num_text_layers}]')
    fusion = _layer_indices(keys, _FUSION_LAYER)
    if num_fusion_layers_total is None:
        num_fusion_layers_total = fusion[-1] + 1 if fusion else 0
    if num_fusion_layers is None and task == 'qa':
        hidden = _hidden_size(state_dict, normalised)
        if hidden not in _RELEASE_FUSION_LAYERS:
            raise OfficialCheckpointError(
                f'cannot derive num_fusion_layers (all {num_fusion_layers_total} fusion layers are stored; '
                f'the release runs the last 6 for hidden size 1024 and 3 for 768, got {hidden}): pass it')
        num_fusion_layers = _RELEASE_FUSION_LAYERS[hidden]
    if task == 'qa' and not 1 <= num_fusion_layers <= num_fusion_layers_total:
        raise OfficialCheckpointError(
            f'num_fusion_layers={num_fusion_layers} must be in [1, num_fusion_layers_total='
            f'{num_fusion_layers_total}]')
    decoder = _layer_indices(keys, _DECODER_LAYER)
    vision = sorted({int(m.group(1)) for m in map(_VISION_BLOCK_RE.match, keys) if m})
    return dict(num_text_layers=num_text_layers, num_universal_layers=num_universal_layers,
                num_fusion_layers_total=num_fusion_layers_total, num_fusion_layers=num_fusion_layers,
                num_decoder_layers=decoder[-1] + 1 if decoder else 0,
                num_vision_blocks=vision[-1] + 1 if vision else 0)


# --------------------------------------------------------------------------- #
# per-key rules
# --------------------------------------------------------------------------- #
def _is_vision_ffn(rest: str) -> bool:
    return rest.startswith(('intermediate_vision.', 'output_vision.'))


def _classify(key: str, task: str, counts: Mapping[str, Optional[int]]) -> Tuple[str, str]:
    """``('map', target)``, ``('drop', rule)`` or ``('error', reason)`` for a normalised key."""
    if _MOMENTUM.match(key):
        return 'drop', 'momentum_copies'
    if key.startswith(('text_encoder.cls.', 'fusion_encoder.cls.')):
        return 'drop', 'mlm_heads'
    if key.endswith('.position_ids') or key == 'position_ids':
        return 'drop', 'position_ids'

    # ---- vision
    if key.startswith('visual_encoder.'):
        rest = key[len('visual_encoder.'):]
        if rest == 'visual.proj':
            return 'drop', 'clip_visual_proj'
        if rest.startswith('visual.'):
            return 'map', 'vision_encoder.' + rest[len('visual.'):]
        if rest in _CLIP_TEXT_TOWER or rest.startswith(tuple(p for p in _CLIP_TEXT_TOWER if p.endswith('.'))):
            return 'drop', 'clip_text_tower'
        return 'error', 'unknown visual_encoder key'
    if key.startswith('visn_fc.'):
        return 'map', 'visual_projection.0.' + key[len('visn_fc.'):]
    if key.startswith('visn_layer_norm.'):
        return 'map', 'visual_projection.1.' + key[len('visn_layer_norm.'):]
    if key.startswith('visn_emb_norm.'):
        return 'map', 'universal_layers.visual_norm.' + key[len('visn_emb_norm.'):]

    # ---- text encoder and universal layers
    num_text, num_uni = counts['num_text_layers'], counts['num_universal_layers']
    first_uni = num_text - num_uni
    if key.startswith('text_encoder.embeddings.'):
        if task == 'caption':
            return 'drop', 'caption_unused_text_encoder'
        return 'map', key
    match = _TEXT_LAYER.match(key)
    if match:
        index, rest = int(match.group(1)), match.group(2)
        if _is_vision_ffn(rest):
            return 'drop', 'unused_vision_ffn'
        if rest == 'latents':
            return ('map', 'universal_layers.latents') if index == first_uni else ('drop', 'unused_latents')
        if index >= num_text:
            return 'error', f'text layer {index} >= num_text_layers={num_text}'
        if index >= first_uni:
            return 'map', f'universal_layers.layers.{index - first_uni}.{rest}'
        if task == 'caption':
            return 'drop', 'caption_unused_text_encoder'
        return 'map', f'text_encoder.layers.{index}.{rest}'

    # ---- fusion
    if key.startswith('fusion_encoder.embeddings.'):
        return 'drop', 'fusion_embeddings'
    match = _FUSION_LAYER.match(key)
    if match:
        index, rest = int(match.group(1)), match.group(2)
        if _is_vision_ffn(rest):
            return 'drop', 'unused_vision_ffn'
        if rest == 'latents':
            return 'drop', 'unused_latents'
        total = counts['num_fusion_layers_total']
        if index >= total:
            return 'error', f'fusion layer {index} >= num_fusion_layers_total={total}'
        if task == 'caption':
            return 'drop', 'caption_unused_fusion'
        start = total - counts['num_fusion_layers']
        if index < start:
            return 'drop', 'fusion_below_start'
        return 'map', f'fusion.layers.{index - start}.{rest}'

    # ---- decoder
    if key.startswith('text_decoder.bert.embeddings.'):
        return 'map', 'text_decoder.embeddings.' + key[len('text_decoder.bert.embeddings.'):]
    match = _DECODER_LAYER.match(key)
    if match:
        index, rest = int(match.group(1)), match.group(2)
        if _is_vision_ffn(rest):
            return 'drop', 'unused_vision_ffn'
        if rest == 'latents':
            return 'drop', 'unused_latents'
        return 'map', f'text_decoder.layers.{index}.{rest}'
    if key == 'text_decoder.cls.predictions.decoder.bias':
        return 'drop', 'duplicate_decoder_bias'
    if key.startswith('text_decoder.cls.predictions.'):
        return 'map', key
    return 'error', 'no rule for this key'


def expected_target_keys(task: str, counts: Mapping[str, Optional[int]], visual_projection: bool) -> List[str]:
    """The keys of our model's state dict for the given layer counts (the converter's completeness check)."""
    keys = ['vision_encoder.' + k for k in _VISION_TOP]
    for block in range(counts['num_vision_blocks']):
        keys += [f'vision_encoder.transformer.resblocks.{block}.{k}' for k in _VISION_BLOCK]
    if visual_projection:
        keys += [f'visual_projection.{i}.{p}' for i in (0, 1) for p in ('weight', 'bias')]
    keys += ['universal_layers.latents', 'universal_layers.visual_norm.weight', 'universal_layers.visual_norm.bias']
    for i in range(counts['num_universal_layers']):
        keys += [f'universal_layers.layers.{i}.{k}' for k in _BERT_LAYER + _BERT_CROSS]
    if task == 'qa':
        keys += ['text_encoder.embeddings.' + k for k in _BERT_EMBEDDINGS]
        for i in range(counts['num_text_layers'] - counts['num_universal_layers']):
            keys += [f'text_encoder.layers.{i}.{k}' for k in _BERT_LAYER]
        for j in range(counts['num_fusion_layers']):
            keys += [f'fusion.layers.{j}.{k}' for k in _BERT_LAYER + _BERT_CROSS]
    keys += ['text_decoder.embeddings.' + k for k in _BERT_EMBEDDINGS]
    for i in range(counts['num_decoder_layers']):
        keys += [f'text_decoder.layers.{i}.{k}' for k in _BERT_LAYER + _BERT_CROSS]
    keys += ['text_decoder.' + k for k in _LM_HEAD]
    return keys


def _format_keys(keys: Sequence[str], limit: int = 20) -> str:
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f' ... (+{len(keys) - limit} more)' if len(keys) > limit else '')


# --------------------------------------------------------------------------- #
# public API
# --------------------------------------------------------------------------- #
def plan_official_conversion(state_dict: Mapping[str, Any],
                             *,
                             num_text_layers: Optional[int] = None,
                             num_universal_layers: Optional[int] = None,
                             num_fusion_layers_total: Optional[int] = None,
                             num_fusion_layers: Optional[int] = None,
                             task: str = 'qa',
                             ignore_keys: Sequence[str] = (),
                             expected: Optional[Mapping[str, Any]] = None) -> ConversionPlan:
    """Decide, for every key, its target or the rule that drops it (see the module docstring).

    Args:
        state_dict: the official state dict (``checkpoint['model']``).
        num_text_layers: N, text-encoder layers incl. the universal ones (default: from the keys).
        num_universal_layers: S (default: from where ``latents`` live).
        num_fusion_layers_total: fusion layers stored (default: from the keys).
        num_fusion_layers: fusion layers run, the last ones (default: the release's 6 for
            hidden size 1024, 3 for 768; other sizes must pass it). Unused for ``'caption'``.
        task: ``'qa'`` (``MPLUG2QA``) or ``'caption'`` (``MPLUG2Captioner`` without text
            encoder and fusion).
        ignore_keys: regular expressions (``re.search`` on the source key) of extra keys to
            drop knowingly (rule ``ignored_by_user``), e.g. unknown pre-training heads.
        expected: the target model's ``state_dict()`` (or key -> shape); when given, the
            targets must be exactly its keys and the shapes must agree.

    Raises:
        OfficialCheckpointError: keys no rule covers, target keys that receive nothing,
            shape mismatches, a tied decoder weight or duplicate bias that differ.
    """
    if task not in TASKS:
        raise OfficialCheckpointError(f'task must be one of {TASKS}, got {task!r}')
    normalised, renamed = _normalise_keys(state_dict)
    counts = _layer_counts(state_dict, normalised, task, num_text_layers, num_universal_layers,
                           num_fusion_layers_total, num_fusion_layers)
    ignore = [re.compile(pattern) for pattern in ignore_keys]

    plan = ConversionPlan(renamed=renamed, layer_counts=counts, task=task)
    dropped: Dict[str, List[str]] = {rule: [] for rule in DROP_RULES}
    errors: List[str] = []
    for key, source in normalised.items():
        action, value = _classify(key, task, counts)
        if action == 'error' and any(p.search(source) for p in ignore):
            action, value = 'drop', 'ignored_by_user'
        if action == 'drop':
            dropped[value].append(source)
        elif action == 'error':
            errors.append(f'{source} ({value})')
        else:
            if not isinstance(state_dict[source], torch.Tensor):
                errors.append(f'{source} (not a tensor: {type(state_dict[source]).__name__})')
            elif value in plan.mapping:
                errors.append(f'{source} (target {value} already filled by {plan.mapping[value]})')
            else:
                plan.mapping[value] = source
    if errors:
        raise OfficialCheckpointError(
            f'{len(errors)} key(s) of the official checkpoint match no conversion rule: '
            f'{_format_keys(errors)}. Pass ignore_keys (CLI: --ignore-keys REGEX) to drop them knowingly.')

    _check_decoder_ties(state_dict, plan, normalised)

    visual_projection = 'visn_fc.weight' in normalised
    wanted = set(expected_target_keys(task, counts, visual_projection))
    if expected is not None:
        wanted = set(expected)
    unexpected = [f'{plan.mapping[t]} -> {t}' for t in plan.mapping if t not in wanted]
    missing = sorted(wanted - set(plan.mapping))
    problems = []
    if missing:
        problems.append(f'{len(missing)} target key(s) receive nothing: {_format_keys(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} key(s) map to targets the model does not have: '
                        f'{_format_keys(unexpected)}')
    if expected is not None:
        for target, source in plan.mapping.items():
            want = expected.get(target)
            want_shape = tuple(want.shape) if hasattr(want, 'shape') else (tuple(want) if want is not None else None)
            got = tuple(state_dict[source].shape)
            if want_shape is not None and want_shape != got:
                problems.append(f'shape of {source} {got} != {target} {want_shape}')
    if problems:
        raise OfficialCheckpointError(
            f'official checkpoint does not fit the {task} layout (layer counts {counts}): ' + '; '.join(problems))
    plan.dropped = OrderedDict((rule, sorted(keys)) for rule, keys in dropped.items() if keys)
    return plan


def _same_tensor_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``torch.equal``; shapes only for tensors without data (meta device)."""
    if a.is_meta or b.is_meta:
        return a.shape == b.shape
    return a.shape == b.shape and torch.equal(a, b)


def _check_decoder_ties(state_dict, plan: ConversionPlan, normalised: Mapping[str, str]) -> None:
    """The LM head weight is tied to the word embeddings, ``decoder.bias`` duplicates ``bias``."""
    word = plan.mapping.get('text_decoder.embeddings.word_embeddings.weight')
    head = plan.mapping.get('text_decoder.cls.predictions.decoder.weight')
    if word is not None and head is None:
        # Tied weights saved once: the head reads the word embeddings.
        plan.mapping['text_decoder.cls.predictions.decoder.weight'] = word
    elif word is not None and not _same_tensor_values(state_dict[word], state_dict[head]):
        raise OfficialCheckpointError(
            f'{head} differs from {word}; the model ties them, so one of them would be lost')
    dup = normalised.get('text_decoder.cls.predictions.decoder.bias')
    bias = plan.mapping.get('text_decoder.cls.predictions.bias')
    if dup is not None:
        if bias is None:
            plan.mapping['text_decoder.cls.predictions.bias'] = dup
        elif not _same_tensor_values(state_dict[dup], state_dict[bias]):
            raise OfficialCheckpointError(f'{dup} differs from {bias}; refusing to drop it as a duplicate')


def convert_official_state_dict(state_dict: Mapping[str, Any],
                                *,
                                num_text_layers: Optional[int] = None,
                                num_universal_layers: Optional[int] = None,
                                num_fusion_layers_total: Optional[int] = None,
                                num_fusion_layers: Optional[int] = None,
                                task: str = 'qa',
                                ignore_keys: Sequence[str] = (),
                                expected: Optional[Mapping[str, Any]] = None
                                ) -> Tuple[Dict[str, torch.Tensor], Dict[str, List[str]]]:
    """Convert an official mPLUG-2 state dict to our key layout.

    Arguments as :func:`plan_official_conversion`.

    Returns:
        ``(converted, dropped)``: ``converted`` maps our keys to the *same* tensor objects
        as the input (no copy, transpose or cast); ``dropped`` maps each rule name of
        :data:`DROP_RULES` that matched to the sorted source keys it dropped.
    """
    plan = plan_official_conversion(
        state_dict, num_text_layers=num_text_layers, num_universal_layers=num_universal_layers,
        num_fusion_layers_total=num_fusion_layers_total, num_fusion_layers=num_fusion_layers,
        task=task, ignore_keys=ignore_keys, expected=expected)
    converted = OrderedDict((target, state_dict[source]) for target, source in plan.mapping.items())
    return converted, plan.dropped


# --------------------------------------------------------------------------- #
# reading official files
# --------------------------------------------------------------------------- #
#: Types the official files may hold besides tensors and plain containers: the training
#: script's arguments (``argparse.Namespace``), stored in ``config``/``args`` entries. A
#: Namespace is rebuilt as an empty object whose ``__dict__`` is updated with already
#: unpickled (allowlisted) values: no code runs.
OFFICIAL_EXTRA_SAFE_GLOBALS = [argparse.Namespace]


def _plain(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` with only plain Python types (for the converted file's meta)."""
    if depth > 8:
        return repr(value)
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return repr(value)


def _is_state_dict(value: Any) -> bool:
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


def read_official_checkpoint(path: str | os.PathLike, map_location: Any = 'cpu'
                             ) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Read an official mPLUG-2 checkpoint file, weights-only.

    Accepts the fine-tuned format ``{'model': sd, 'optimizer', 'lr_scheduler', 'config',
    'epoch'}``, the DeepSpeed format ``{'module': sd, ...}``, ``{'state_dict': sd}`` and
    raw state dicts. Loading goes through :func:`mplug2.utils.checkpoint.load_checkpoint_file`
    (weights-only with its allowlist) plus :data:`OFFICIAL_EXTRA_SAFE_GLOBALS`; anything
    else in the file is refused with an error naming it.

    Returns:
        ``(state_dict, info)``: ``info`` has ``format`` (``'model'``, ``'module'``,
        ``'state_dict'`` or ``'raw'``), ``top_level_keys``, ``epoch`` and ``config`` (the
        official training config as plain Python data, or None).
    """
    from mplug2.utils.checkpoint import load_checkpoint_file
    with torch.serialization.safe_globals(OFFICIAL_EXTRA_SAFE_GLOBALS):
        checkpoint = load_checkpoint_file(path, map_location=map_location)
    if not isinstance(checkpoint, Mapping):
        raise OfficialCheckpointError(f'{os.fspath(path)!r} holds a {type(checkpoint).__name__}, not a dict')
    info: Dict[str, Any] = dict(top_level_keys=sorted(map(str, checkpoint)), epoch=None, config=None)
    for name in ('model', 'module', 'state_dict'):
        if name in checkpoint and _is_state_dict(checkpoint[name]):
            state_dict = dict(checkpoint[name])
            info['format'] = name
            break
    else:
        if not _is_state_dict(checkpoint):
            raise OfficialCheckpointError(
                f'{os.fspath(path)!r} is neither a state dict nor a dict with a "model", "module" or '
                f'"state_dict" state dict; top-level keys: {info["top_level_keys"]}')
        state_dict = dict(checkpoint)
        info['format'] = 'raw'
    if info['format'] != 'raw':
        epoch = checkpoint.get('epoch')
        info['epoch'] = _plain(epoch)
        config = checkpoint.get('config', checkpoint.get('args'))
        info['config'] = _plain(config) if config is not None else None
    return state_dict, info
