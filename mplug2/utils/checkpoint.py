"""Weights-only checkpoint loading with an explicit allowlist, from a file or any mmengine scheme.

Checkpoints are untrusted input: unpickling a crafted file can run arbitrary code.
``torch.load(weights_only=True)`` only rebuilds tensors and plain containers; mmengine's
own checkpoints additionally hold a few types in ``meta``/``message_hub``
(``HistoryBuffer`` with numpy arrays and scalars, ``ConfigDict``). This module names
exactly those types and nothing else, and turns a refusal into an error that names the
checkpoint and what it asked for. Weights-only loading is never turned off.

Remote checkpoints are no exception. :func:`load_checkpoint_file` accepts every scheme
mmengine's ``CheckpointLoader`` accepts (``http(s)://``, ``torchvision://``/``modelzoo://``,
``open-mmlab://``/``openmmlab://``, ``mmcls://``, ``pavi://``, ``s3://``/``petrel://``):
a remote file is first brought to a local file (for URLs the torch hub cache,
``torch.hub.get_dir()/checkpoints``, as ``torch.hub.load_state_dict_from_url`` does) and
then read by the same weights-only loader, every time, so a crafted file placed in the
cache is refused too.

``mplug2.compat`` installs these loaders as mmengine's scheme loaders (:data:`SCHEME_LOADERS`
and :func:`load_from_local`), so ``load_from``, ``resume`` and ``init_cfg=dict(type='Pretrained')``
use them; ``PretrainedMPLUG2`` calls :func:`load_checkpoint_file` itself.
:func:`load_model_checkpoint` loads a checkpoint into a model, strictly by default
(``tools/test.py``, ``mplug2.apis.init_model``).
"""
from __future__ import annotations

import logging
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any, Callable, Optional, Sequence, Tuple
from urllib.parse import urlparse

import numpy as np
import torch

__all__ = ['UnsafeCheckpointError', 'load_checkpoint_file', 'checkpoint_safe_globals',
           'load_model_checkpoint', 'load_mplug2_state_dict', 'is_remote_checkpoint',
           'SCHEME_LOADERS', 'load_from_local',
           'load_from_http']


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
    """``torch.load`` a checkpoint, weights-only, with :func:`checkpoint_safe_globals`.

    ``filename`` is a local path or a path in any scheme mmengine accepts (see the module
    docstring); remote files are downloaded first and then read like local ones.

    Raises:
        FileNotFoundError: a local file does not exist.
        UnsafeCheckpointError: the file needs an object outside the allowlist; the message
            names the checkpoint (the URL for a remote one) and the object. Nothing from the
            file is executed.
    """
    filename = os.fspath(filename)
    loader = _scheme_loader(filename)
    if loader is not None:
        return loader(filename, map_location)
    return _load_local_file(filename, map_location)


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-file scheme (``''``): a path, ``~`` expanded, never a remote scheme."""
    return _load_local_file(os.path.expanduser(filename), map_location)


def _load_local_file(filename: str, map_location: Any = None, source: Optional[str] = None) -> Any:
    """The one place that unpickles: weights-only with the allowlist. ``source`` names the
    checkpoint in messages when it is not ``filename`` (a URL and its cached copy)."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    what_file = source if source is not None else repr(filename)
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if isinstance(error, UnsafeCheckpointError):
            raise UnsafeCheckpointError(f'Refusing to load checkpoint {what_file}: {error}') from None
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # legacy (non-zip) format: the torch message names the global
            unsafe = []
        allowed = {_qualified_name(obj) for obj in checkpoint_safe_globals()}
        refused = [name for name in unsafe if name not in allowed]
        what = ', '.join(refused) if refused else _unpickler_reason(str(error))
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {what_file}: it needs {what}, which is not on '
            "mplug2's allowlist of checkpoint types (mplug2.utils.checkpoint). Checkpoints are "
            'loaded weights-only because unpickling can run code. If the file comes from a '
            'source you trust, re-save its tensors as a plain state dict.') from None


# ---------------------------------------------------------------------------
# Remote checkpoints: the schemes of mmengine's CheckpointLoader (mmengine 0.10.7), each
# bringing the file to a local one and reading it with ``_load_local_file``.
# ---------------------------------------------------------------------------
def _hub_checkpoint_dir(model_dir: Optional[str] = None) -> str:
    return model_dir if model_dir is not None else os.path.join(torch.hub.get_dir(), 'checkpoints')


def _cached_file(url: str, model_dir: Optional[str] = None) -> str:
    """Where ``torch.hub.load_state_dict_from_url`` keeps ``url`` (the same file, so the
    cache is shared with torch and mmengine)."""
    name = os.path.basename(urlparse(url).path)
    if not name:
        import hashlib
        name = 'checkpoint-' + hashlib.sha256(url.encode()).hexdigest()[:16] + '.pth'
    return os.path.join(_hub_checkpoint_dir(model_dir), name)


def _download(url: str, cached: str, progress: bool) -> None:
    if os.path.exists(cached):
        return
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    from mmengine.logging import print_log
    print_log(f'Downloading {url} to {cached}', logger='current')
    torch.hub.download_url_to_file(url, cached, None, progress=progress)


def _is_legacy_zip(filename: str) -> bool:
    """A zip holding one pre-1.6 ``torch.save`` file (torch.hub extracts those); checkpoints
    in the current format are zips of several entries."""
    if not zipfile.is_zipfile(filename):
        return False
    with zipfile.ZipFile(filename) as archive:
        members = archive.infolist()
    return len(members) == 1 and not members[0].is_dir()


def load_from_http(filename: str, map_location: Any = None, model_dir: Optional[str] = None,
                   progress: Optional[bool] = None) -> Any:
    """An ``http(s)://`` checkpoint: download it once into the torch hub cache (rank 0 first,
    as mmengine does), then load the cached file weights-only, every time.

    In a distributed run rank 0 downloads and tells the other ranks whether it succeeded,
    so a failed download fails every rank instead of leaving them at a barrier.
    """
    from mmengine.dist import broadcast_object_list, get_dist_info
    if progress is None:
        progress = os.isatty(0)
    cached = _cached_file(filename, model_dir)
    rank, world_size = get_dist_info()
    failure: Optional[BaseException] = None
    if rank == 0:
        try:
            _download(filename, cached, progress)
        except Exception as error:  # noqa: BLE001  re-raised below, after the other ranks know
            failure = error
    if world_size > 1:
        status = [None if failure is None else f'{type(failure).__name__}: {failure}']
        broadcast_object_list(status, src=0)
        if rank != 0 and status[0] is not None:
            raise RuntimeError(f'rank 0 could not download checkpoint {filename!r}: {status[0]}')
    if failure is not None:
        raise failure
    if rank != 0:
        _download(filename, cached, progress)  # a cache of its own (another node): no-op when shared
    source = f'{filename!r} (cached as {cached!r}; delete that file to download it again)'
    if _is_legacy_zip(cached):
        with zipfile.ZipFile(cached) as archive:
            member = archive.infolist()[0]
            extracted = archive.extract(member, os.path.dirname(cached))  # extract() sanitises the name
        return _load_local_file(extracted, map_location, source=source)
    return _load_local_file(cached, map_location, source=source)


def load_from_torchvision(filename: str, map_location: Any = None) -> Any:
    """``torchvision://NAME`` (``modelzoo://NAME``, deprecated): the URL of NAME in torchvision's
    model zoo, through :func:`load_from_http`."""
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import get_torchvision_models
    if filename.startswith('modelzoo://'):
        print_log('The URL scheme of "modelzoo://" is deprecated, please use "torchvision://" instead',
                  logger='current', level=logging.WARNING)
        name = filename[len('modelzoo://'):]
    else:
        name = filename[len('torchvision://'):]
    return load_from_http(_model_url(get_torchvision_models(), name, filename), map_location=map_location)


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: a URL (through :func:`load_from_http`) or a
    file under the mmengine home, from mmengine's model tables."""
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import (_get_mmengine_home, get_deprecated_model_names,
                                            get_external_models)
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    name = filename[len(prefix):]
    deprecated = get_deprecated_model_names()
    if name in deprecated:
        print_log(f'{prefix}{name} is deprecated in favor of {prefix}{deprecated[name]}',
                  logger='current', level=logging.WARNING)
        name = deprecated[name]
    url = _model_url(get_external_models(), name, filename)
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    return _load_local_file(os.path.join(_get_mmengine_home(), url), map_location, source=repr(filename))


def load_from_mmcls(filename: str, map_location: Any = None) -> Any:
    """``mmcls://NAME``: the URL of NAME in mmengine's mmcls table, keys converted as mmengine does."""
    from mmengine.runner.checkpoint import _process_mmcls_checkpoint, get_mmcls_models
    url = _model_url(get_mmcls_models(), filename[len('mmcls://'):], filename)
    return _process_mmcls_checkpoint(load_from_http(url, map_location=map_location))


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    """``pavi://PATH``: downloaded with ``pavi.modelcloud`` into a temporary directory."""
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.') from None
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp_dir:
        downloaded = os.path.join(tmp_dir, os.path.basename(model.name) or 'checkpoint.pth')
        model.download(downloaded)
        return _load_local_file(downloaded, map_location, source=repr(filename))


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """``s3://`` / ``petrel://`` (optionally ``NAME:s3://``): the bytes from mmengine's file
    backend, written to a temporary file."""
    from mmengine.fileio import get_file_backend
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    with tempfile.TemporaryDirectory() as tmp_dir:
        local = os.path.join(tmp_dir, 'checkpoint.pth')
        with open(local, 'wb') as f:
            f.write(data)
        return _load_local_file(local, map_location, source=repr(filename))


def _model_url(table: Mapping, name: str, filename: str) -> str:
    if name not in table:
        raise KeyError(f'{filename!r}: {name!r} is not a known model name')
    return table[name]


#: mmengine's (0.10.7) remote schemes and their weights-only loaders, as
#: ``CheckpointLoader.register_scheme`` takes them (prefixes are regular expressions).
SCHEME_LOADERS: Tuple[Tuple[Tuple[str, ...], Callable[..., Any]], ...] = (
    (('http://', 'https://'), load_from_http),
    (('pavi://',), load_from_pavi),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_ceph),
    (('modelzoo://', 'torchvision://'), load_from_torchvision),
    (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
    (('mmcls://',), load_from_mmcls),
)


def _scheme_loader(filename: str) -> Optional[Callable[..., Any]]:
    """The loader of ``filename``'s scheme, matched as mmengine matches (longer prefixes
    first); None for a local path."""
    prefixes = sorted(((prefix, loader) for group, loader in SCHEME_LOADERS for prefix in group),
                      key=lambda item: item[0], reverse=True)
    for prefix, loader in prefixes:
        if re.match(prefix, filename) is not None:
            return loader
    return None


def is_remote_checkpoint(filename: str | os.PathLike) -> bool:
    """True if ``filename`` is in one of mmengine's remote schemes (a URL, ``torchvision://``...)."""
    return _scheme_loader(os.fspath(filename)) is not None


# ---------------------------------------------------------------------------
# A checkpoint into a model.
# ---------------------------------------------------------------------------
def load_model_checkpoint(model: torch.nn.Module, checkpoint: Any, strict: bool = True,
                          map_location: Any = 'cpu',
                          revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''),),
                          source: Optional[str] = None) -> Mapping:
    """Load a checkpoint's weights into ``model`` (a model wrapper is unwrapped), strictly by default.

    Args:
        checkpoint: a path or URL (read by :func:`load_checkpoint_file`), or a checkpoint
            already read: ``{'state_dict': ...}`` as MMEngine saves it, or a state dict.
        strict: the model's keys and the checkpoint's must be the same, with the same shapes;
            otherwise a ``RuntimeError`` names every missing, unexpected and mismatched key.
            ``strict=False`` loads the matching tensors, keeps the model's own values for the
            rest and logs what did not fit (for fine-tuning from another task's weights).
        revise_keys: ``(pattern, replacement)`` applied to every key, as mmengine's
            ``load_checkpoint`` (default: strip a DDP ``module.`` prefix).
        source: how messages name the checkpoint (default: the path).

    Returns:
        The checkpoint as read (with its ``meta``, if any).
    """
    from mmengine.model import is_model_wrapper

    if isinstance(checkpoint, (str, os.PathLike)):
        source = source or os.fspath(checkpoint)
        checkpoint = load_checkpoint_file(checkpoint, map_location=map_location)
    source = source or 'checkpoint'
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'{source} holds a {type(checkpoint).__name__}, not a state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise TypeError(f'{source}: its state_dict is a {type(state_dict).__name__}, not a mapping')
    for pattern, replacement in revise_keys:
        state_dict = {re.sub(pattern, replacement, key): value for key, value in state_dict.items()}
    not_tensors = sorted(key for key, value in state_dict.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise TypeError(f'{source}: the state dict has entries that are not tensors: {not_tensors}')
    while is_model_wrapper(model):
        model = model.module
    load_mplug2_state_dict(model, state_dict, strict=strict, source=source)
    return checkpoint


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


def load_mplug2_state_dict(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True,
                           source: str = 'state dict') -> None:
    """Load ``state_dict`` (this project's key layout) into ``module``.

    Raises:
        RuntimeError: with ``strict``, if keys are missing, unexpected or of another shape;
            the message names all of them and ``source``.
    """
    from mmengine.logging import print_log
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(f'{key}: checkpoint {tuple(state_dict[key].shape)}, module {tuple(own[key].shape)}'
                        for key in set(own) & set(state_dict)
                        if tuple(state_dict[key].shape) != tuple(own[key].shape))
    problems = [f'{len(keys)} {what}: {keys}' for what, keys in (
        ('missing key(s)', missing), ('unexpected key(s)', unexpected),
        ('key(s) with another shape', mismatched)) if keys]
    name = type(module).__name__
    if problems and strict:
        raise RuntimeError(f'{name}: {source} does not fit (strict): ' + '; '.join(problems))
    loadable = {key: value for key, value in state_dict.items()
                if key in own and tuple(value.shape) == tuple(own[key].shape)}
    module.load_state_dict(loadable, strict=False)
    lines = [f'{name}: loaded {len(loadable)} tensors from {source}.']
    lines += [f'  {problem}' for problem in problems]
    print_log('\n'.join(lines), logger='current')
