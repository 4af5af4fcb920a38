"""The ``init_cfg`` types that load pretrained weights into mPLUG-2's modules.

Registered in :data:`mplug2.registry.WEIGHT_INITIALIZERS` (write
``type='mplug2.PretrainedCLIP'`` etc. from a host-library config):

=====================================================  ==========================================
``init_cfg``                                           loads
=====================================================  ==========================================
``dict(type='PretrainedCLIP', checkpoint)``            CLIP vision weights (OpenAI ``.pt`` or
                                                       Hugging Face directory) into a
                                                       ``DualVisionEncoder`` or its adapters
``dict(type='PretrainedBERT', checkpoint,              a transformers BERT directory into
layer_start=None)``                                    ``BertTextEncoder``, ``UniversalLayers``,
                                                       ``FusionModule`` or ``TextDecoder``
``dict(type='PretrainedMPLUG2', checkpoint,            a checkpoint of this project (a state dict
prefix=None, strict=True)``                            or ``{'state_dict': ...}``), the keys under
                                                       ``prefix``, into any module
=====================================================  ==========================================

MMEngine's ``BaseModule.init_weights`` applies these (like every type but its own
``'Pretrained'``) *before* the children's ``init_weights``: give them to the module whose
weights they fill, not to a parent whose children initialise themselves afterwards. The
random initialisation happens once, in the constructors; ``init_weights`` only applies
``init_cfg``.
"""
from collections.abc import Mapping
from typing import Optional

from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from torch import nn

from mplug2.registry import WEIGHT_INITIALIZERS
from mplug2.utils.checkpoint import load_checkpoint_file, load_mplug2_state_dict
from .bert import load_pretrained_bert
from .clip import load_clip_weights

__all__ = ['PretrainedCLIP', 'PretrainedBERT', 'PretrainedMPLUG2']


def _record(module: nn.Module, info: str) -> None:
    """Note the initialisation in MMEngine's per-parameter init log (as ``PretrainedInit``)."""
    if hasattr(module, '_params_init_info'):
        update_init_info(module, init_info=info)


@WEIGHT_INITIALIZERS.register_module()
class PretrainedCLIP:
    """CLIP vision weights into a dual-vision encoder (:func:`mplug2.checkpoints.clip.load_clip_weights`).

    Args:
        checkpoint: an OpenAI CLIP ``.pt`` (TorchScript archive or ``torch.save`` state dict)
            or a Hugging Face ``CLIPVisionModel`` / ``CLIPModel`` directory.
    """

    def __init__(self, checkpoint: str):
        self.checkpoint = checkpoint

    def __call__(self, module: nn.Module) -> None:
        print_log(f'{type(module).__name__}: CLIP weights from {self.checkpoint}', logger='current')
        load_clip_weights(module, self.checkpoint)
        _record(module, f'PretrainedCLIP: load from {self.checkpoint}')


@WEIGHT_INITIALIZERS.register_module()
class PretrainedBERT:
    """A transformers BERT checkpoint into one of the BERT-layer modules, following the
    module's own ``bert_weight_map`` (:func:`mplug2.checkpoints.bert.load_pretrained_bert`).

    Args:
        checkpoint: a transformers BERT directory (``config.json`` + weights).
        layer_start: the BERT layer that becomes the module's first layer; negative values
            count from the end (``-2``: the last two layers). None: the module's default, the
            first layers for the text encoder and the decoder, the last ones for the universal
            layers and the fusion module (the official layout).
    """

    def __init__(self, checkpoint: str, layer_start: Optional[int] = None):
        self.checkpoint = checkpoint
        self.layer_start = layer_start

    def __call__(self, module: nn.Module) -> None:
        load_pretrained_bert(module, self.checkpoint, self.layer_start)
        _record(module, f'PretrainedBERT: load from {self.checkpoint} (layer_start={self.layer_start})')


@WEIGHT_INITIALIZERS.register_module()
class PretrainedMPLUG2:
    """A checkpoint in this project's layout into a module (:func:`load_mplug2_state_dict`).

    Args:
        checkpoint: a state dict, or ``{'state_dict': ...}`` as MMEngine saves, read
            weights-only through :func:`mplug2.utils.checkpoint.load_checkpoint_file`.
        prefix: load the keys that start with it, without it (e.g. ``'text_encoder.'`` to fill
            a ``BertTextEncoder`` from a whole-model checkpoint); None: every key.
        strict: the module's keys and the selected keys must be the same and have the same
            shapes; the error names the missing, unexpected and mismatched keys. With
            ``strict=False`` the matching tensors are loaded and the rest is logged.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None, strict: bool = True):
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.strict = strict

    def __call__(self, module: nn.Module) -> None:
        checkpoint = load_checkpoint_file(self.checkpoint, map_location='cpu')
        if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get('state_dict'), Mapping):
            checkpoint = checkpoint['state_dict']
        if not isinstance(checkpoint, Mapping):
            raise TypeError(f'{self.checkpoint} holds a {type(checkpoint).__name__}, not a state dict')
        state_dict = dict(checkpoint)
        source = self.checkpoint
        if self.prefix:
            state_dict = {key[len(self.prefix):]: value for key, value in state_dict.items()
                          if key.startswith(self.prefix)}
            if not state_dict:
                raise KeyError(f'{self.checkpoint} has no keys under prefix {self.prefix!r}')
            source = f'{self.checkpoint} (keys under {self.prefix!r})'
        load_mplug2_state_dict(module, state_dict, strict=self.strict, source=source)
        _record(module, f'PretrainedMPLUG2: load from {source}')
