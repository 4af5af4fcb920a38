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
nothing. The target keys are those of a built model: the caller's (``expected``),
else our modules built on the meta device in the sizes the official state dict
implies (:func:`build_target_layout`). Pre-training names (``text_encoder.bert.*``, ``fusion_encoder.fusion.*``)
are normalised first, the way the official fine-tuning loader does: in keys that
contain ``bert`` or ``fusion`` but not ``decode``, the substrings ``bert.`` and
``fusion.`` are deleted.
"""
from __future__ import annotations

import argparse
import math
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

__all__ = [
    'DROP_RULES', 'OfficialCheckpointError', 'ConversionPlan', 'plan_official_conversion',
    'convert_official_state_dict', 'read_official_checkpoint', 'build_target_layout',
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

    def convert(self, state_dict: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """Our state dict: each target key holds the *same* tensor object as its source key
        of ``state_dict`` (the official state dict this plan was made for)."""
        return OrderedDict((target, state_dict[source]) for target, source in self.mapping.items())


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


def build_target_layout(state_dict: Mapping[str, Any], task: str = 'qa', **layer_counts) -> nn.Module:
    """The modules of our ``task`` model, built on the meta device in the sizes the official
    state dict implies: their ``state_dict()`` is the conversion target when no target model
    is given.

    The same classes as the task model's (``DualVisionEncoder``, ``UniversalLayers``,
    ``BertTextEncoder``, ``FusionModule``, ``TextDecoder``, and the ``visual_projection`` of
    ``MPLUG2`` when ``visn_fc`` is stored), under the task model's attribute names, so the
    key layout follows the model code. Widths, layer and token counts are read from the
    tensor shapes; attention heads are not visible in a state dict and do not change it.

    Args:
        state_dict: the official state dict.
        task: ``'qa'`` or ``'caption'`` (no text encoder, no fusion module).
        **layer_counts: as :func:`plan_official_conversion` (default: from the keys).
    """
    if task not in TASKS:
        raise OfficialCheckpointError(f'task must be one of {TASKS}, got {task!r}')
    normalised, _ = _normalise_keys(state_dict)
    counts = _layer_counts(state_dict, normalised, task, layer_counts.get('num_text_layers'),
                           layer_counts.get('num_universal_layers'),
                           layer_counts.get('num_fusion_layers_total'), layer_counts.get('num_fusion_layers'))
    return _build_layout(state_dict, normalised, task, counts)


def _build_layout(state_dict, normalised: Mapping[str, str], task: str,
                  counts: Mapping[str, Optional[int]]) -> nn.Module:
    # The model classes are imported here: the conversion rules above need no model code.
    from mplug2.models.backbones.dual_vision_encoder import DualVisionEncoder
    from mplug2.models.decoders.text_decoder import TextDecoder
    from mplug2.models.fusion.fusion_module import FusionModule
    from mplug2.models.necks.universal_layers import UniversalLayers
    from mplug2.models.text.text_encoder import BertTextEncoder

    def shape(*keys: str) -> Optional[Tuple[int, ...]]:
        """The shape of the first of ``keys`` (normalised names) the state dict has."""
        for key in keys:
            if key in normalised:
                return tuple(state_dict[normalised[key]].shape)
        return None

    def need(what: str, *keys: str) -> Tuple[int, ...]:
        found = shape(*keys)
        if found is None:
            raise OfficialCheckpointError(
                f'cannot tell the {what} from the keys (none of {_format_keys(keys, 3)} is stored); '
                "pass the target model's state dict (expected=..., CLI: --config)")
        return found

    def bert_arch(what: str, layer_prefixes: Sequence[str], embeddings: Optional[str] = None) -> dict:
        hidden = need(f'{what} width', *[p + 'attention.self.query.weight' for p in layer_prefixes])[0]
        arch = dict(hidden_size=hidden, num_attention_heads=1, intermediate_size=hidden)
        ffn = shape(*[p + 'intermediate.dense.weight' for p in layer_prefixes])
        if ffn is not None:
            arch['intermediate_size'] = ffn[0]
        if embeddings is not None:
            for name, field_name in (('word_embeddings', 'vocab_size'),
                                     ('position_embeddings', 'max_position_embeddings'),
                                     ('token_type_embeddings', 'type_vocab_size')):
                rows = shape(f'{embeddings}{name}.weight')
                if rows is not None:
                    arch[field_name] = rows[0]
        return arch

    def cross_width(layer_prefixes: Sequence[str]) -> Optional[int]:
        found = shape(*[p + 'crossattention.self.key.weight' for p in layer_prefixes])
        return None if found is None else found[1]

    layout = nn.Module()
    with torch.device('meta'):
        # ---- dual-vision encoder
        v = 'visual_encoder.visual.'
        conv = need('vision encoder width and patch size', v + 'conv1.weight')
        width, patch = conv[0], conv[-1]
        rows = need('vision encoder resolution', v + 'positional_embedding')[0]
        grid = math.isqrt(rows - 1)
        if grid * grid != rows - 1:
            raise OfficialCheckpointError(f'{v}positional_embedding has {rows} rows: not CLS + a square grid')
        blocks = counts['num_vision_blocks']
        lt = shape(*[f'{v}transformer.resblocks.{i}.lmhra{j}.down_proj.weight'
                     for i in range(blocks) for j in (1, 2)])
        # int(width * ratio) must give the stored bottleneck width exactly.
        ratio = 0.5 if lt is None else (lt[0] + 0.5) / width
        layout.vision_encoder = DualVisionEncoder(
            arch=dict(width=width, layers=blocks, heads=1, patch_size=patch), img_size=grid * patch,
            lt_bottleneck_ratio=ratio)

        # ---- visn_fc: MPLUG2.visual_projection, only when the widths differ
        projection = shape('visn_fc.weight')
        if projection is not None:
            text_width, vision_width = projection
            layout.visual_projection = nn.Sequential(
                nn.Linear(vision_width, text_width), nn.LayerNorm(text_width, eps=1e-12), nn.Dropout(0.1))

        # ---- universal layers: the last S text-encoder layers
        num_text, num_uni = counts['num_text_layers'], counts['num_universal_layers']
        first_uni = num_text - num_uni
        uni_prefixes = [f'text_encoder.encoder.layer.{i}.' for i in range(first_uni, num_text)]
        latents = shape(f'text_encoder.encoder.layer.{first_uni}.latents')
        layout.universal_layers = UniversalLayers(
            arch=bert_arch('universal layers', uni_prefixes), num_layers=num_uni,
            num_queries=1 if latents is None else latents[0])

        if task == 'qa':
            # ---- text encoder (layers below the universal ones) and fusion (the last F layers)
            text_prefixes = [f'text_encoder.encoder.layer.{i}.' for i in range(num_text)]
            layout.text_encoder = BertTextEncoder(
                arch=bert_arch('text encoder', text_prefixes, 'text_encoder.embeddings.'), num_layers=first_uni)
            total, run = counts['num_fusion_layers_total'], counts['num_fusion_layers']
            fusion_prefixes = [f'fusion_encoder.encoder.layer.{i}.' for i in range(total - run, total)]
            layout.fusion = FusionModule(
                arch=bert_arch('fusion module', fusion_prefixes), num_layers=run,
                encoder_width=cross_width(fusion_prefixes))

        # ---- shared text decoder
        decoder_prefixes = [f'text_decoder.bert.encoder.layer.{i}.' for i in range(counts['num_decoder_layers'])]
        decoder_arch = bert_arch('text decoder', decoder_prefixes, 'text_decoder.bert.embeddings.')
        if 'vocab_size' not in decoder_arch:
            vocab = shape('text_decoder.cls.predictions.bias')
            if vocab is not None:
                decoder_arch['vocab_size'] = vocab[0]
        layout.text_decoder = TextDecoder(
            arch=decoder_arch, num_layers=counts['num_decoder_layers'],
            encoder_width=cross_width(decoder_prefixes))
    return layout


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
        expected: the target model's ``state_dict()`` (or key -> shape), e.g. of the task
            model built from its config (on the meta device if only the layout is needed).
            Default: the state dict of :func:`build_target_layout` (our modules in the sizes
            the official state dict implies). The targets must be exactly its keys and the
            shapes must agree.

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

    if expected is None:
        expected = _build_layout(state_dict, normalised, task, counts).state_dict()
    wanted = set(expected)
    unexpected = [f'{plan.mapping[t]} -> {t}' for t in plan.mapping if t not in wanted]
    missing = sorted(wanted - set(plan.mapping))
    problems = []
    if missing:
        problems.append(f'{len(missing)} target key(s) receive nothing: {_format_keys(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} key(s) map to targets the model does not have: '
                        f'{_format_keys(unexpected)}')
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


def convert_official_state_dict(state_dict: Mapping[str, Any], **options
                                ) -> Tuple[Dict[str, torch.Tensor], Dict[str, List[str]]]:
    """Convert an official mPLUG-2 state dict to our key layout.

    ``options``: the keyword arguments of :func:`plan_official_conversion`.

    Returns:
        ``(converted, dropped)``: ``converted`` maps our keys to the *same* tensor objects
        as the input (no copy, transpose or cast); ``dropped`` maps each rule name of
        :data:`DROP_RULES` that matched to the sorted source keys it dropped.
    """
    plan = plan_official_conversion(state_dict, **options)
    return plan.convert(state_dict), plan.dropped


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
