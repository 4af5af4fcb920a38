"""Momentum (EMA) copies of named sub-modules: the momentum encoders of ALBEF / mPLUG.

:class:`MomentumCopies` holds a frozen copy of each named module of its owner and
updates it with ``copy = m * copy + (1 - m) * online``. The copies and the update
counter ``steps`` are ordinary parameters and buffers, so they are saved, loaded and
moved like any other state. While ``steps`` is 0 the update copies the online weights
instead of averaging them: the first EMA step of copies that start equal to their online
modules (the official ``copy_params`` then ``_momentum_update``). Loading a state dict
that has no state of these copies (e.g. a QA or pre-trained checkpoint without momentum
encoders) sets ``steps`` to 0, so the next update starts the copies from the loaded
online weights.
"""
import copy
from typing import Dict, Iterator, Mapping, Optional, Tuple

import torch
from torch import nn

__all__ = ['MomentumCopies']


class MomentumCopies(nn.Module):
    """EMA copies of ``modules`` (name -> online module; None entries are skipped).

    Args:
        modules: the online modules, by name; their copies are ``self[name]`` and their
            state-dict keys ``copies.<name>.*``.
        momentum: the EMA coefficient m (ALBEF / mPLUG: 0.995).
    """

    def __init__(self, modules: Mapping[str, Optional[nn.Module]], momentum: float) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f'momentum must be in [0, 1], got {momentum}')
        self.momentum = float(momentum)
        self.copies = nn.ModuleDict({
            name: copy.deepcopy(module).requires_grad_(False)
            for name, module in modules.items() if module is not None})
        # 0: the next update copies the online weights (see the module docstring).
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + 'steps' not in state_dict:  # no momentum state: restart from the online weights
            self.steps.zero_()

    def __getitem__(self, name: str) -> nn.Module:
        return self.copies[name]

    def __contains__(self, name: str) -> bool:
        return name in self.copies

    def names(self) -> Tuple[str, ...]:
        return tuple(self.copies.keys())

    def pairs(self, online: Mapping[str, nn.Module]) -> Iterator[Tuple[nn.Parameter, nn.Parameter]]:
        """(online, copy) parameter pairs of every copied module, in module order."""
        for name, module_m in self.copies.items():
            yield from zip(online[name].parameters(), module_m.parameters())

    @torch.no_grad()
    def update(self, online: Mapping[str, nn.Module]) -> None:
        """One EMA step from the ``online`` modules (name -> module, e.g. the owner's
        children): ``copy = m * copy + (1 - m) * online``, or a plain copy while
        ``steps`` is 0. Buffers are copied."""
        pairs = list(self.pairs(online))
        params, params_m = [p for p, _ in pairs], [p_m for _, p_m in pairs]
        if int(self.steps) == 0:
            torch._foreach_copy_(params_m, params)
        elif params_m:
            torch._foreach_mul_(params_m, self.momentum)
            torch._foreach_add_(params_m, params, alpha=1 - self.momentum)
        for name, module_m in self.copies.items():
            for buffer_m, buffer in zip(module_m.buffers(), online[name].buffers()):
                buffer_m.copy_(buffer)
        self.steps += 1

    @torch.no_grad()
    def reset(self, online: Mapping[str, nn.Module]) -> None:
        """Copy the online weights now and restart the EMA (``steps`` = 1)."""
        self.steps.zero_()
        self.update(online)

    def extra_repr(self) -> str:
        return f'momentum={self.momentum}, modules={list(self.copies)}'


def online_modules(owner: nn.Module, names) -> Dict[str, nn.Module]:
    """``{name: getattr(owner, name)}`` for the names whose module is not None."""
    return {name: getattr(owner, name) for name in names if getattr(owner, name, None) is not None}
