"""Layer-wise learning-rate decay for the mPLUG-2 vision encoder.

Fine-tuning recipe of BEiT / ViTDet: a block closer to the input keeps more of
its pre-trained weights by learning more slowly. With ``L`` encoder blocks and a
decay rate ``r``, parameters get a *layer id* and an lr scale
``r ** (L + 1 - layer_id)``:

=======================================================  ========  ==============
parameters                                               layer id  lr scale
=======================================================  ========  ==============
embeddings: ``conv1``, ``class_embedding``,              0         ``r ** (L+1)``
``positional_embedding``, ``ln_pre``
block ``i``: ``transformer.resblocks.{i}.*``             i + 1     ``r ** (L-i)``
everything else: ``ln_post``, universal layers, necks,   L + 1     1
heads
=======================================================  ========  ==============

Weight decay is switched off for biases and norm weights (every parameter with
fewer than two dimensions) and for the position and class embeddings.
"""
import re
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS

from mplug2.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['LayerDecayOptimWrapperConstructor', 'get_layer_id']

#: First name component of the embedding parameters of the encoder.
EMBEDDING_NAMES = ('conv1', 'class_embedding', 'positional_embedding',
                   'ln_pre')
_BLOCK_PATTERN = re.compile(r'^transformer\.resblocks\.(\d+)\.')


def get_layer_id(name: str, num_layers: int,
                 encoder_prefix: str = 'backbone.') -> int:
    """Layer id of the parameter ``name`` (see the module docstring).

    Args:
        name: Parameter name in the whole model, e.g.
            ``'backbone.transformer.resblocks.3.attn.in_proj_weight'``.
        num_layers: Number of encoder blocks ``L``.
        encoder_prefix: Where the encoder sits in the model: ``'backbone.'``
            in host models, ``'vision_encoder.'`` in mPLUG-2's own models.
    """
    if not name.startswith(encoder_prefix):
        return num_layers + 1
    name = name[len(encoder_prefix):]
    if name.split('.')[0] in EMBEDDING_NAMES:
        return 0
    match = _BLOCK_PATTERN.match(name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Optimiser wrapper with layer-wise lr decay over the mPLUG-2 encoder.

    Use in any host config (mmdet, mmpretrain, mmaction2)::

        optim_wrapper = dict(
            type='OptimWrapper',
            constructor='mplug2.LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.1),
            paramwise_cfg=dict(layer_decay_rate=0.7))

    ``paramwise_cfg`` keys:

    * ``layer_decay_rate`` (float, default 1.0): decay ``r``.
    * ``num_layers`` (int, optional): encoder blocks ``L``; by default counted
      from the parameter names under ``encoder_prefix``.
    * ``encoder_prefix`` (str, default ``'backbone.'``).
    * ``no_decay_names`` (sequence of str, default
      ``('positional_embedding', 'class_embedding')``): last name components
      without weight decay, besides all parameters with ``ndim < 2``.

    Every resulting parameter group carries its ``lr_scale`` and
    ``layer_id``; frozen parameters (``requires_grad=False``) are left out.
    """

    _KNOWN_KEYS = {
        'layer_decay_rate', 'num_layers', 'encoder_prefix', 'no_decay_names'
    }

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg=None)
        self.paramwise_cfg = dict(paramwise_cfg or {})
        unknown = set(self.paramwise_cfg) - self._KNOWN_KEYS
        if unknown:
            raise KeyError(f'unknown paramwise_cfg keys {sorted(unknown)}; '
                           f'{type(self).__name__} accepts '
                           f'{sorted(self._KNOWN_KEYS)}')
        self.layer_decay_rate = float(
            self.paramwise_cfg.get('layer_decay_rate', 1.0))
        self.encoder_prefix = self.paramwise_cfg.get('encoder_prefix',
                                                     'backbone.')
        self.no_decay_names = tuple(
            self.paramwise_cfg.get('no_decay_names',
                                   ('positional_embedding', 'class_embedding')))

    def _count_layers(self, names: Sequence[str]) -> int:
        ids = set()
        for name in names:
            if name.startswith(self.encoder_prefix):
                match = _BLOCK_PATTERN.match(name[len(self.encoder_prefix):])
                if match:
                    ids.add(int(match.group(1)))
        if not ids:
            raise ValueError(
                'found no encoder blocks (transformer.resblocks.*) under '
                f'{self.encoder_prefix!r}; set paramwise_cfg.encoder_prefix '
                'or num_layers')
        return max(ids) + 1

    def param_groups(self, model: nn.Module) -> List[Dict]:
        """Parameter groups with per-layer ``lr`` and ``weight_decay``."""
        base_lr = self.optimizer_cfg['lr']
        base_wd = self.optimizer_cfg.get('weight_decay', 0.0)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        num_layers = self.paramwise_cfg.get('num_layers') or self._count_layers(
            [n for n, _ in named])

        groups: Dict[str, Dict] = {}
        for name, param in named:
            layer_id = get_layer_id(name, num_layers, self.encoder_prefix)
            no_decay = (param.ndim < 2
                        or name.split('.')[-1] in self.no_decay_names)
            key = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if key not in groups:
                scale = self.layer_decay_rate**(num_layers + 1 - layer_id)
                groups[key] = dict(
                    params=[], param_names=[], layer_id=layer_id,
                    lr_scale=scale, lr=base_lr * scale,
                    weight_decay=0.0 if no_decay else base_wd)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)

        ordered = sorted(groups.values(),
                         key=lambda g: (g['layer_id'], g['weight_decay']))
        for group in ordered:
            print_log(
                f'layer {group["layer_id"]}: lr_scale={group["lr_scale"]:.4g} '
                f'weight_decay={group["weight_decay"]} '
                f'({len(group["params"])} tensors)',
                logger='current')
        return ordered

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):  # distributed wrappers
            model = model.module
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg['params'] = self.param_groups(model)
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(
            optim_wrapper_cfg, default_args=dict(optimizer=optimizer))
