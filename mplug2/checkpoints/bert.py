"""Initialising mPLUG-2's BERT modules from a transformers BERT checkpoint.

mPLUG-2 initialises its whole text side from one pre-trained BERT
(``bert-large-uncased`` in the release) before multi-modal pre-training. Each
module says which weights it takes (its ``bert_weight_map(layer_start)``, see
:class:`~mplug2.models.text.bert.BertStack`); :func:`load_pretrained_bert`
(and ``init_cfg=dict(type='PretrainedBERT', checkpoint=DIR, layer_start=...)``)
applies it:

==========================  ===============================================
module                      taken from the BERT checkpoint
==========================  ===============================================
``BertTextEncoder``         embeddings + layers ``[start, start + N - S)``
``UniversalLayers``         layers ``[start, start + S)`` (SA + FFN); their
                            cross-attention and latent queries stay random
                            unless the checkpoint has them (official: 22, 23)
``FusionModule``            layers ``[start, start + F)``; cross-attention
                            random unless present (official: 18..23)
``TextDecoder``             embeddings + layers ``[start, start + M)`` + the
                            ``cls.predictions`` head when the checkpoint has
                            one (BertForPreTraining / BertLMHeadModel)
==========================  ===============================================

``start`` is ``layer_start``; a negative value counts from the end of the
checkpoint (``-2``: its last two layers).

A checkpoint is a transformers directory: ``config.json`` plus
``model.safetensors`` (or a sharded ``model.safetensors.index.json``) or
``pytorch_model.bin`` (read with ``weights_only=True``). Keys may carry the
``bert.`` prefix (BertForPreTraining, BertLMHeadModel) or not (BertModel); old
TF-converted names ``LayerNorm.gamma``/``beta`` are accepted.

Key mapping (prefix renames only; the layer-internal names are the same):

    embeddings.*                    -> embeddings.*
    encoder.layer.{start + i}.*     -> layers.{i}.*
    encoder.layer.{start}.latents   -> latents              (universal layers, if present)
    cls.predictions.*               -> cls.predictions.*    (decoder; decoder.weight is tied)

Loading is strict: a tensor with the wrong shape raises an error naming both
keys; with ``strict=True`` a weight that BERT should provide but the checkpoint
lacks raises. Cross-attention weights, latent queries and the LM head may be
absent (a text-only BertModel has none of them): they keep their random init
and are listed in the report. Checkpoint keys inside the selected layers that
the module has no place for are reported as unexpected.
"""
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import nn

__all__ = [
    'BertCheckpoint', 'BertLoadReport', 'bert_arch_from_pretrained', 'load_bert_weights',
    'load_pretrained_bert',
]

CONFIG_NAME = 'config.json'
SAFETENSORS_NAME = 'model.safetensors'
SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json'
PYTORCH_NAME = 'pytorch_model.bin'

# Fields of transformers' BertConfig that our BertConfig understands.
_ARCH_FIELDS = ('hidden_size', 'num_attention_heads', 'intermediate_size', 'vocab_size',
                'max_position_embeddings', 'type_vocab_size', 'layer_norm_eps',
                'hidden_dropout_prob', 'attention_probs_dropout_prob', 'pad_token_id',
                'initializer_range')


def _normalise_key(key: str) -> str:
    """Drop the ``bert.`` prefix and rename TF-style LayerNorm gamma/beta."""
    if key.startswith('bert.'):
        key = key[len('bert.'):]
    key = re.sub(r'LayerNorm\.gamma$', 'LayerNorm.weight', key)
    key = re.sub(r'LayerNorm\.beta$', 'LayerNorm.bias', key)
    return key


class BertCheckpoint:
    """A transformers BERT checkpoint, opened lazily.

    Args:
        path: the checkpoint directory, or a weights file inside it.

    Tensors are read on demand (safetensors) or memory-mapped (``.bin``), so
    that initialising several modules from bert-large does not hold several
    copies of it in memory.
    """

    def __init__(self, path: str):
        path = os.path.expanduser(str(path))
        directory = path if os.path.isdir(path) else os.path.dirname(path)
        config_path = os.path.join(directory, CONFIG_NAME)
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f'no {CONFIG_NAME} in BERT checkpoint directory {directory}')
        with open(config_path, encoding='utf-8') as f:
            self.config = json.load(f)
        self.path = path

        if os.path.isdir(path):
            weight_files = self._find_weight_files(directory)
        else:
            weight_files = [path]

        self._tensors: Dict[str, Tuple[str, str]] = {}  # key -> (file, key in file)
        self._bin_state: Dict[str, Dict[str, torch.Tensor]] = {}
        for weight_file in weight_files:
            if weight_file.endswith('.safetensors'):
                from safetensors import safe_open
                with safe_open(weight_file, framework='pt', device='cpu') as f:
                    file_keys = list(f.keys())
            else:
                state = self._load_bin(weight_file)
                self._bin_state[weight_file] = state
                file_keys = list(state.keys())
            for file_key in file_keys:
                key = _normalise_key(file_key)
                if key in self._tensors:
                    raise ValueError(
                        f'checkpoint {path} has {key!r} twice (with and without "bert.")')
                self._tensors[key] = (weight_file, file_key)

    @staticmethod
    def _find_weight_files(directory: str) -> List[str]:
        safetensors_file = os.path.join(directory, SAFETENSORS_NAME)
        index_file = os.path.join(directory, SAFETENSORS_INDEX_NAME)
        bin_file = os.path.join(directory, PYTORCH_NAME)
        if os.path.isfile(safetensors_file):
            return [safetensors_file]
        if os.path.isfile(index_file):
            with open(index_file, encoding='utf-8') as f:
                shards = sorted(set(json.load(f)['weight_map'].values()))
            return [os.path.join(directory, shard) for shard in shards]
        if os.path.isfile(bin_file):
            return [bin_file]
        raise FileNotFoundError(
            f'no {SAFETENSORS_NAME}, {SAFETENSORS_INDEX_NAME} or {PYTORCH_NAME} in {directory}')

    @staticmethod
    def _load_bin(weight_file: str) -> Dict[str, torch.Tensor]:
        # weights_only=True always: a checkpoint is untrusted input.
        try:
            return torch.load(weight_file, map_location='cpu', weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            return torch.load(weight_file, map_location='cpu', weights_only=True)

    @property
    def num_hidden_layers(self) -> int:
        return int(self.config['num_hidden_layers'])

    def keys(self) -> List[str]:
        return list(self._tensors)

    def __contains__(self, key: str) -> bool:
        return key in self._tensors

    def get(self, key: str) -> torch.Tensor:
        weight_file, file_key = self._tensors[key]
        if weight_file in self._bin_state:
            return self._bin_state[weight_file][file_key]
        from safetensors import safe_open
        with safe_open(weight_file, framework='pt', device='cpu') as f:
            return f.get_tensor(file_key)


def bert_arch_from_pretrained(path_or_checkpoint: Union[str, BertCheckpoint]) -> dict:
    """The ``arch`` dict (BertConfig fields) of a transformers BERT checkpoint.

    Raises if the checkpoint uses an activation or position embedding that
    these modules do not implement.
    """
    checkpoint = _as_checkpoint(path_or_checkpoint)
    config = checkpoint.config
    if config.get('hidden_act', 'gelu') != 'gelu':
        raise ValueError(f'only erf GELU BERT checkpoints are supported, got hidden_act='
                         f'{config.get("hidden_act")!r}')
    if config.get('position_embedding_type', 'absolute') != 'absolute':
        raise ValueError('only absolute position embeddings are supported')
    return {name: config[name] for name in _ARCH_FIELDS if name in config}


@dataclass
class BertLoadReport:
    """What a BERT initialisation did, by module key (checkpoint key for ``unexpected``)."""
    loaded: List[str] = field(default_factory=list)
    random_init: List[str] = field(default_factory=list)  # allowed to be absent (CA, latents, head)
    missing: List[str] = field(default_factory=list)  # should have come from BERT but absent
    not_from_bert: List[str] = field(default_factory=list)  # no BERT counterpart (e.g. visual_norm)
    unexpected: List[str] = field(default_factory=list)  # in the selected layers, no slot here


def _as_checkpoint(path_or_checkpoint) -> BertCheckpoint:
    if isinstance(path_or_checkpoint, BertCheckpoint):
        return path_or_checkpoint
    return BertCheckpoint(path_or_checkpoint)


def _is_optional(module_key: str) -> bool:
    """Weights that a text-only BERT checkpoint does not have: they stay random."""
    return ('crossattention.' in module_key or module_key == 'latents'
            or module_key.startswith('cls.'))


@torch.no_grad()
def load_bert_weights(
    module: nn.Module,
    checkpoint: BertCheckpoint,
    sources: Sequence[Tuple[str, str]],
    skip_module_keys: Sequence[str] = (),
    alias_checkpoint_keys: Sequence[str] = (),
    strict: bool = True,
) -> BertLoadReport:
    """Copy checkpoint tensors into ``module`` following prefix renames.

    Args:
        module: the module to fill.
        checkpoint: the opened BERT checkpoint.
        sources: ``(module_prefix, checkpoint_prefix)`` pairs; a module key
            ``module_prefix + rest`` is read from ``checkpoint_prefix + rest``.
            A prefix without a trailing dot matches one key exactly.
        skip_module_keys: module keys filled by something else (tied weights).
        alias_checkpoint_keys: checkpoint keys that duplicate another key
            (tied weights); they are neither loaded nor reported.
        strict: raise if a non-optional weight is absent from the checkpoint.
    """
    report = BertLoadReport()
    state = module.state_dict()
    consumed = set(alias_checkpoint_keys)

    for module_key, target in state.items():
        if module_key in skip_module_keys:
            continue
        checkpoint_key = None
        for module_prefix, checkpoint_prefix in sources:
            if module_prefix.endswith('.') and module_key.startswith(module_prefix):
                checkpoint_key = checkpoint_prefix + module_key[len(module_prefix):]
                break
            if module_key == module_prefix:
                checkpoint_key = checkpoint_prefix
                break
        if checkpoint_key is None:
            report.not_from_bert.append(module_key)
            continue
        if checkpoint_key not in checkpoint:
            if _is_optional(module_key):
                report.random_init.append(module_key)
            else:
                report.missing.append(module_key)
            continue
        tensor = checkpoint.get(checkpoint_key)
        if tuple(tensor.shape) != tuple(target.shape):
            raise ValueError(
                f'shape mismatch: checkpoint {checkpoint_key!r} has shape {tuple(tensor.shape)} '
                f'but {type(module).__name__}.{module_key} has shape {tuple(target.shape)}')
        target.copy_(tensor.to(dtype=target.dtype, device=target.device))
        consumed.add(checkpoint_key)
        report.loaded.append(module_key)

    source_prefixes = [prefix for _, prefix in sources]
    for checkpoint_key in checkpoint.keys():
        if checkpoint_key in consumed or checkpoint_key.endswith('position_ids'):
            continue
        for prefix in source_prefixes:
            if ((prefix.endswith('.') and checkpoint_key.startswith(prefix))
                    or checkpoint_key == prefix):
                report.unexpected.append(checkpoint_key)
                break

    if report.missing and strict:
        raise KeyError(f'{type(module).__name__}: weights missing from BERT checkpoint '
                       f'{checkpoint.path}: {report.missing}')
    return report


def _log_report(module: nn.Module, checkpoint: BertCheckpoint, report: BertLoadReport,
                description: str) -> None:
    name = type(module).__name__
    lines = [f'{name}: loaded {len(report.loaded)} tensors from {checkpoint.path} ({description}).']
    if report.random_init:
        lines.append(f'  not in the checkpoint, left at random init: {report.random_init}')
    if report.not_from_bert:
        lines.append(f'  no BERT counterpart, left at random init: {report.not_from_bert}')
    if report.missing:
        lines.append(f'  MISSING from the checkpoint: {report.missing}')
    if report.unexpected:
        lines.append(f'  UNEXPECTED checkpoint keys in the selected layers: {report.unexpected}')
    print_log('\n'.join(lines), logger='current')


def _describe(sources: Sequence[Tuple[str, str]], layers: range) -> str:
    parts = ['embeddings'] if ('embeddings.', 'embeddings.') in sources else []
    parts.append(f'layers {layers.start}..{layers.stop - 1}')
    if ('cls.predictions.', 'cls.predictions.') in sources:
        parts.append('LM head')
    return ' + '.join(parts)


def load_pretrained_bert(module: nn.Module, pretrained, layer_start: Optional[int] = None,
                         strict: bool = True) -> BertLoadReport:
    """Fill one of the BERT-layer modules from a transformers BERT checkpoint.

    Args:
        module: a ``BertTextEncoder``, ``UniversalLayers``, ``FusionModule`` or
            ``TextDecoder`` (anything with ``bert_weight_map(layer_start)``).
        pretrained: the checkpoint directory (or weights file), or an opened
            :class:`BertCheckpoint`.
        layer_start: the BERT layer that becomes the module's first layer;
            negative values count from the end of the checkpoint. None: the module's
            ``default_bert_layer_start`` (the text encoder and the decoder take the first
            layers, the universal layers and the fusion module the last ones).
        strict: raise if a non-optional weight is absent from the checkpoint.

    Raises:
        ValueError: the module needs layers the checkpoint does not have, or a
            tensor has another shape (the error names both keys).
        KeyError: with ``strict``, weights missing from the checkpoint.
    """
    if not callable(getattr(module, 'bert_weight_map', None)):
        raise TypeError(
            f'{type(module).__name__} does not say where its weights are in a BERT checkpoint '
            '(no bert_weight_map); BERT weights go into BertTextEncoder, UniversalLayers, '
            'FusionModule or TextDecoder')
    checkpoint = _as_checkpoint(pretrained)
    available = checkpoint.num_hidden_layers
    if layer_start is None:
        layer_start = module.default_bert_layer_start
    start = layer_start + available if layer_start < 0 else layer_start
    weight_map = module.bert_weight_map(start)
    layers = weight_map.layers
    if layers.start < 0 or layers.stop > available:
        raise ValueError(
            f'{type(module).__name__} needs BERT layers [{layers.start}, {layers.stop}) but '
            f'{checkpoint.path} has {available} layers')
    report = load_bert_weights(module, checkpoint, weight_map.sources,
                               skip_module_keys=weight_map.skip_module_keys,
                               alias_checkpoint_keys=weight_map.alias_checkpoint_keys,
                               strict=strict)
    _log_report(module, checkpoint, report, _describe(weight_map.sources, layers))
    return report


