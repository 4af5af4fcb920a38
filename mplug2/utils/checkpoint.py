"""Weights-only checkpoint loading with an explicit allowlist.

Checkpoints are untrusted input: unpickling a crafted file can run arbitrary code.
``torch.load(weights_only=True)`` only rebuilds tensors and plain containers; mmengine's
own checkpoints additionally hold a few types in ``meta``/``message_hub``
(``HistoryBuffer`` with numpy arrays and scalars, ``ConfigDict``). This module names
exactly those types and nothing else, and turns a refusal into an error that names the
file and what it asked for. Weights-only loading is never turned off.

``mplug2.compat`` installs :func:`load_checkpoint_file` as mmengine's local-file loader,
so ``load_from``, ``resume`` and ``init_cfg=dict(type='Pretrained')`` use it.
"""
from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import torch

__all__ = ['UnsafeCheckpointError', 'load_checkpoint_file', 'checkpoint_safe_globals']


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs a Python object that is not on the allowlist."""


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` a checkpoint may call.

    mmengine pickles ``HistoryBuffer._statistics_methods`` (its ``min``/``max``/``mean``/
    ``current`` statistics) as ``getattr(HistoryBuffer, 'min')``. Allowing the real
    ``builtins.getattr`` would let a pickle reach any attribute of any allowed object,
    so this stand-in resolves registered statistics of ``HistoryBuffer`` and refuses the rest.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and not name.startswith('_') and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(f'checkpoint asked for getattr({obj!r}, {name!r}), which is not allowed')


def checkpoint_safe_globals() -> list:
    """The allowlist: what mmengine (<= 0.10.7) and numpy (1.x/2.x) put in a checkpoint."""
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer

    # numpy moved ``core`` to ``_core`` in 2.0; pickles name whichever wrote them.
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: list = [
        HistoryBuffer,
        ConfigDict,
        np.ndarray,
        np.dtype,
        multiarray._reconstruct,
        multiarray.scalar,
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
        (_history_buffer_getattr, 'builtins.getattr'),
    ]
    # numpy >= 1.25 pickles dtypes through their classes (numpy.dtypes.Float64DType...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return allowed


def load_checkpoint_file(filename: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load`` a local checkpoint, weights-only, with :func:`checkpoint_safe_globals`.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file needs an object outside the allowlist; the message
            names the file and the object. Nothing from the file is executed.
    """
    filename = os.fspath(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if isinstance(error, UnsafeCheckpointError):
            raise UnsafeCheckpointError(f'Refusing to load checkpoint {filename!r}: {error}') from None
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # legacy (non-zip) format: the torch message names the global
            unsafe = []
        allowed = {_qualified_name(obj) for obj in checkpoint_safe_globals()}
        refused = [name for name in unsafe if name not in allowed]
        what = ', '.join(refused) if refused else _unpickler_reason(str(error))
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {filename!r}: it needs {what}, which is not on '
            "mplug2's allowlist of checkpoint types (mplug2.utils.checkpoint). Checkpoints are "
            'loaded weights-only because unpickling can run code. If the file comes from a '
            'source you trust, re-save its tensors as a plain state dict.') from None


def _unpickler_reason(message: str) -> str:
    """The part of torch's weights-only error that says what was refused."""
    _, marker, reason = message.partition('WeightsUnpickler error:')
    if marker:
        reason = reason.strip().split('\n\n')[0].strip()
        if reason:
            return reason
    return message.strip().splitlines()[0]


def _qualified_name(obj: Any) -> str:
    if isinstance(obj, tuple):
        return obj[1]
    return f'{obj.__module__}.{obj.__qualname__}'
