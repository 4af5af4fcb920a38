"""CLIP weights for the dual-vision encoder (mPLUG-2 Sec. 3.2).

mPLUG-2 starts its dual-vision encoder from a CLIP ViT. Two formats are read:

* **OpenAI** ``.pt`` files: TorchScript archives (``torch.jit.save``) as
  released by OpenAI, or plain state dicts saved with ``torch.save``. Keys are
  ``visual.*`` (vision tower) plus the text tower, which is ignored.
* **Hugging Face** ``CLIPVisionModel`` / ``CLIPModel`` directories
  (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``). Keys are
  ``vision_model.*``; q/k/v projections are fused into ``in_proj``.

The 2-D patch kernel ``(D, 3, p, p)`` is inflated to the encoder's Conv3d
kernel ``(D, 3, 1, p, p)`` (``unsqueeze(2)``: exact, since the kernel spans one
frame). The position table is copied (the official code leaves it at zero, a
bug not reproduced here) and resized when the resolutions differ. The LT
modules have no CLIP counterpart and keep their identity initialisation; every
other encoder parameter must be filled.

The functions take state dicts and the encoder's patch grid; only
:func:`load_clip_weights` touches a module (a
:class:`~mplug2.models.backbones.DualVisionEncoder` or one of its host-library
adapters). ``init_cfg=dict(type='PretrainedCLIP', checkpoint=PATH)``
(:class:`~mplug2.checkpoints.initializers.PretrainedCLIP`) calls it.
"""
import json
import math
import os
import re
import zipfile
from typing import Dict, Mapping, Tuple

import torch
from torch import Tensor, nn

from mplug2.models.backbones.dual_vision_encoder import resize_pos_embed

__all__ = [
    'convert_openai_clip', 'convert_hf_clip', 'load_clip_state_dict', 'fit_clip_state_dict',
    'load_clip_weights'
]

# Vision keys of an OpenAI CLIP checkpoint without the ``visual.`` prefix; they
# already carry our names. ``visual.proj`` (the output projection) is ignored.
_OPENAI_VISUAL_KEY = re.compile(
    r'class_embedding|positional_embedding|conv1\.weight'
    r'|ln_(pre|post)\.(weight|bias)'
    r'|transformer\.resblocks\.\d+\.(attn\.in_proj_(weight|bias)'
    r'|(attn\.out_proj|ln_1|ln_2|mlp\.c_fc|mlp\.c_proj)\.(weight|bias))')
# Text tower and CLIP-head keys of an OpenAI checkpoint, ignored.
_OPENAI_IGNORED = re.compile(
    r'visual\.proj|positional_embedding|token_embedding\.weight'
    r'|transformer\..*|ln_final\.(weight|bias)|text_projection|logit_scale'
    r'|input_resolution|context_length|vocab_size')

# Hugging Face ``vision_model.*`` keys (prefix stripped) -> encoder keys.
_HF_RENAMES = [
    (r'embeddings\.class_embedding', 'class_embedding'),
    (r'embeddings\.patch_embedding\.weight', 'conv1.weight'),
    (r'embeddings\.position_embedding\.weight', 'positional_embedding'),
    (r'pre_layrnorm\.(weight|bias)', r'ln_pre.\1'),  # sic: HF spelling
    (r'post_layernorm\.(weight|bias)', r'ln_post.\1'),
    (r'encoder\.layers\.(\d+)\.self_attn\.out_proj\.(weight|bias)',
     r'transformer.resblocks.\1.attn.out_proj.\2'),
    (r'encoder\.layers\.(\d+)\.layer_norm([12])\.(weight|bias)',
     r'transformer.resblocks.\1.ln_\2.\3'),
    (r'encoder\.layers\.(\d+)\.mlp\.fc1\.(weight|bias)',
     r'transformer.resblocks.\1.mlp.c_fc.\2'),
    (r'encoder\.layers\.(\d+)\.mlp\.fc2\.(weight|bias)',
     r'transformer.resblocks.\1.mlp.c_proj.\2'),
]
_HF_QKV = re.compile(
    r'encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)')
# Text tower, CLIP heads and non-persistent buffers of HF checkpoints, ignored.
_HF_IGNORED = re.compile(
    r'text_model\..*|visual_projection\..*|text_projection\..*|logit_scale'
    r'|vision_model\.embeddings\.position_ids')


def _inflate_patch_kernel(weight: Tensor) -> Tensor:
    """2-D patch kernel ``(D, 3, p, p)`` -> Conv3d kernel ``(D, 3, 1, p, p)``."""
    return weight.unsqueeze(2) if weight.dim() == 4 else weight


def convert_openai_clip(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Map an OpenAI CLIP state dict to the dual-vision encoder's keys.

    Raises:
        KeyError: for a key that is neither a known vision key nor part of the
            ignored text tower / projection.
    """
    converted = {}
    for key, value in state_dict.items():
        name = key[len('visual.'):] if key.startswith('visual.') else None
        if name is not None and _OPENAI_VISUAL_KEY.fullmatch(name):
            converted[name] = value
        elif not _OPENAI_IGNORED.fullmatch(key):
            raise KeyError(f'unexpected key {key!r} in OpenAI CLIP checkpoint')
    if 'conv1.weight' in converted:
        converted['conv1.weight'] = _inflate_patch_kernel(converted['conv1.weight'])
    return converted


def convert_hf_clip(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Map a Hugging Face ``CLIPVisionModel``/``CLIPModel`` state dict.

    ``q_proj``/``k_proj``/``v_proj`` are concatenated (in that order) into
    ``attn.in_proj_weight`` ``(3D, D)`` and ``attn.in_proj_bias`` ``(3D,)``.

    Raises:
        KeyError: for an unknown key or an incomplete q/k/v triplet.
    """
    converted = {}
    qkv: Dict[str, Dict[str, Tensor]] = {}
    for key, value in state_dict.items():
        if _HF_IGNORED.fullmatch(key):
            continue
        name = key[len('vision_model.'):] if key.startswith('vision_model.') else ''
        match = _HF_QKV.fullmatch(name)
        if match:
            layer, proj, kind = match.groups()
            fused = f'transformer.resblocks.{layer}.attn.in_proj_{kind}'
            qkv.setdefault(fused, {})[proj] = value
            continue
        for pattern, target in _HF_RENAMES:
            if re.fullmatch(pattern, name):
                converted[re.sub(pattern, target, name)] = value
                break
        else:
            raise KeyError(f'unexpected key {key!r} in Hugging Face CLIP checkpoint')
    for fused, parts in qkv.items():
        if set(parts) != {'q', 'k', 'v'}:
            raise KeyError(f'{fused}: found only {sorted(parts)} of q/k/v')
        converted[fused] = torch.cat([parts['q'], parts['k'], parts['v']])
    if 'conv1.weight' in converted:
        converted['conv1.weight'] = _inflate_patch_kernel(converted['conv1.weight'])
    return converted


def _is_torchscript_archive(path: str) -> bool:
    """TorchScript zips hold ``constants.pkl``; ``torch.save`` zips do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split('/', 1)[-1] == 'constants.pkl'
                   for name in archive.namelist())


def _read_openai(path: str) -> Dict[str, Tensor]:
    if _is_torchscript_archive(path):
        return torch.jit.load(path, map_location='cpu').state_dict()
    return torch.load(path, map_location='cpu', weights_only=True)


def _read_hf(directory: str) -> Dict[str, Tensor]:
    """Read a HF CLIP directory after checking its activation and LN eps.

    Values missing from ``config.json`` take the ``CLIPVisionConfig`` defaults
    (``quick_gelu``, 1e-5), since ``save_pretrained`` omits default values.
    """
    with open(os.path.join(directory, 'config.json')) as file:
        config = json.load(file)
    vision_config = config.get('vision_config', config)
    activation = vision_config.get('hidden_act', 'quick_gelu')
    if activation != 'quick_gelu':
        raise ValueError(f'{directory}: hidden_act={activation!r}; the encoder '
                         "uses CLIP's quick_gelu")
    eps = vision_config.get('layer_norm_eps', 1e-5)
    if eps != 1e-5:
        raise ValueError(f'{directory}: layer_norm_eps={eps}; the encoder uses 1e-5')
    safetensors_file = os.path.join(directory, 'model.safetensors')
    bin_file = os.path.join(directory, 'pytorch_model.bin')
    if os.path.isfile(safetensors_file):
        from safetensors.torch import load_file
        return load_file(safetensors_file, device='cpu')
    if os.path.isfile(bin_file):
        return torch.load(bin_file, map_location='cpu', weights_only=True)
    raise FileNotFoundError(f'{directory}: no model.safetensors or '
                            'pytorch_model.bin (sharded checkpoints are not supported)')


def load_clip_state_dict(path: str) -> Dict[str, Tensor]:
    """Read CLIP vision weights in the dual-vision encoder's naming.

    ``path`` is a Hugging Face directory or an OpenAI ``.pt`` file (TorchScript
    archive or ``torch.save`` state dict). The position table keeps the
    checkpoint's resolution.
    """
    if os.path.isdir(path):
        return convert_hf_clip(_read_hf(path))
    return convert_openai_clip(_read_openai(path))


def fit_clip_state_dict(state_dict: Dict[str, Tensor],
                        target: Mapping[str, Tensor],
                        grid_size: Tuple[int, int],
                        interpolate_mode: str = 'bicubic',
                        source: str = 'CLIP checkpoint') -> Dict[str, Tensor]:
    """Check CLIP weights in encoder naming against the encoder and fit its position table.

    Args:
        state_dict: the output of :func:`load_clip_state_dict` (not modified).
        target: the encoder's ``state_dict()`` (keys and shapes).
        grid_size: the encoder's patch grid ``(h, w)``; the position table is
            resized to it with ``interpolate_mode`` when needed.
        source: names the checkpoint in error messages.

    Returns:
        A new dict, loadable with ``encoder.load_state_dict(..., strict=False)``
        (only the LT modules are left out).

    Raises:
        KeyError: for checkpoint keys the encoder lacks, or encoder parameters
            (other than LT modules) the checkpoint lacks; both are named.
        ValueError: for shape mismatches (e.g. another width or patch size).
    """
    state_dict = dict(state_dict)
    unexpected = sorted(set(state_dict) - set(target))
    if unexpected:
        raise KeyError(f'{source}: CLIP keys with no encoder counterpart '
                       f'(encoder naming): {unexpected}')
    missing = sorted(key for key in set(target) - set(state_dict)
                     if '.lmhra' not in key)
    if missing:
        raise KeyError(f'{source}: encoder parameters missing from the CLIP '
                       f'checkpoint: {missing}')

    pos_embed = state_dict['positional_embedding']
    side = math.isqrt(pos_embed.shape[0] - 1)
    if side * side != pos_embed.shape[0] - 1:
        raise ValueError(f'{source}: position table of {pos_embed.shape[0]} rows '
                         'is not CLS + a square patch grid')
    state_dict['positional_embedding'] = resize_pos_embed(
        pos_embed, (side, side), grid_size, interpolate_mode)

    for key, value in state_dict.items():
        if value.shape != target[key].shape:
            raise ValueError(f'{source}: {key} has shape {tuple(value.shape)}, '
                             f'the encoder expects {tuple(target[key].shape)}')
    return state_dict


def load_clip_weights(encoder: nn.Module, path: str) -> None:
    """Fill a dual-vision encoder with the CLIP vision weights stored at ``path``.

    The position table is resized to ``encoder.grid_size`` with
    ``encoder.interpolate_mode`` when needed; the LT modules are left
    untouched. Errors as :func:`fit_clip_state_dict`.
    """
    if not (hasattr(encoder, 'grid_size') and hasattr(encoder, 'interpolate_mode')):
        raise TypeError(f'CLIP weights go into a DualVisionEncoder (or an adapter of it), '
                        f'not a {type(encoder).__name__}')
    state_dict = fit_clip_state_dict(load_clip_state_dict(path), encoder.state_dict(),
                                     encoder.grid_size, encoder.interpolate_mode, source=path)
    encoder.load_state_dict(state_dict, strict=False)
