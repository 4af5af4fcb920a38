"""Every workaround for the host libraries, in one place.

``mplug2/__init__.py`` imports this module before anything else. Each workaround says
why it exists, which versions it applies to, and carries a guard that makes it a
no-op once the upstream package is fixed. Patches of third-party modules are applied
right after those modules are imported (a post-import hook), so ``import mplug2``
stays cheap and never imports a host library it does not need.

| workaround                         | applies to                               |
|------------------------------------|------------------------------------------|
| pkg_resources for mmengine          | setuptools >= 67.5 (warning), >= 81 (gone) |
| numpy ``in1d`` / ``trapz``          | numpy >= 2.4 with mmpretrain/mmaction2 metrics |
| transformers names for mmpretrain   | transformers >= 4.52 with mmpretrain 1.2.0 |
| mmaction2 ``localizers.drn``        | mmaction2 1.2.0 distributions (upstream #2714) |
| mmengine checkpoint loading (all schemes) | mmengine <= 0.10.7 with torch >= 2.5  |
| distributed training without GPUs   | mmengine <= 0.10.7                         |
| process-group teardown before exit  | torch with gloo (all versions to date)     |
"""
from __future__ import annotations

import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from collections import defaultdict
from typing import Any, Callable

__all__ = ['after_import', 'prepare_distributed_on_cpu', 'dist_timeout', 'finish_distributed', 'APPLIED']

#: Names of the workarounds that were actually applied in this process (for reports and tests).
APPLIED: list[str] = []


def _version_tuple(version: str) -> tuple[int, ...]:
    """'2.13.0+cu130' -> (2, 13, 0); enough for the guards below."""
    parts = []
    for piece in version.split('+')[0].split('.'):
        digits = ''.join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _installed_version(dist: str) -> tuple[int, ...] | None:
    try:
        return _version_tuple(importlib.metadata.version(dist))
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------
# Post-import hooks: run a patch right after a module finishes executing.
# ---------------------------------------------------------------------------
class _HookedLoader(importlib.abc.Loader):
    """Delegates to the real loader, then runs the callbacks on the new module."""

    def __init__(self, loader: importlib.abc.Loader, callbacks: list[Callable[[Any], None]]):
        self._loader = loader
        self._callbacks = callbacks

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        for callback in self._callbacks:
            callback(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """A meta-path finder that wraps the loader of modules that have hooks."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Callable[[Any], None]]] = defaultdict(list)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.hooks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _HookedLoader(spec.loader, self.hooks.pop(fullname))
        return spec


_POST_IMPORT = _PostImportFinder()
sys.meta_path.insert(0, _POST_IMPORT)


def after_import(module_name: str, callback: Callable[[Any], None]) -> None:
    """Run ``callback(module)`` once ``module_name`` is imported (now if it already is)."""
    module = sys.modules.get(module_name)
    if module is not None:
        callback(module)
    else:
        _POST_IMPORT.hooks[module_name].append(callback)


# ---------------------------------------------------------------------------
# 1. pkg_resources (setuptools) for mmengine.
# mmengine 0.10.7 imports ``pkg_resources`` to resolve ``pkg::`` config bases
# (``mmdet::cascade_rcnn/...``). setuptools >= 67.5 warns on that import and
# setuptools >= 81 removed the module. requirements/build.txt pins setuptools<81;
# where pkg_resources is present we silence its deprecation warning, where it is
# gone we give mmengine importlib.metadata-based replacements.
# Guard: only the functions of mmengine that import pkg_resources are replaced,
# and only when pkg_resources cannot be imported.
# ---------------------------------------------------------------------------
def _is_installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def _get_installed_path(package: str) -> str:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise
        return os.path.dirname(spec.origin)
    top_level = (dist.read_text('top_level.txt') or package).split()[0]
    spec = importlib.util.find_spec(top_level)
    if spec is None or spec.origin is None:
        raise importlib.metadata.PackageNotFoundError(package)
    return os.path.dirname(spec.origin)


def _patch_mmengine_package_utils(module) -> None:
    try:
        # mmengine re-executes pkg_resources (importlib.reload) on every lookup: filter its warning for good.
        warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)
        import pkg_resources  # noqa: F401
        return
    except ImportError:
        pass
    for name in ('mmengine.utils.package_utils', 'mmengine.utils', 'mmengine.config.config', 'mmengine.hub.hub'):
        target = sys.modules.get(name)
        if target is None:
            continue
        if hasattr(target, 'is_installed'):
            target.is_installed = _is_installed
        if hasattr(target, 'get_installed_path'):
            target.get_installed_path = _get_installed_path
    APPLIED.append('mmengine-pkg_resources')


# ``mmengine.config.config`` binds the functions at import, after package_utils; patch at its import.
after_import('mmengine.config.config', _patch_mmengine_package_utils)


# ---------------------------------------------------------------------------
# 2. numpy >= 2.4 removed ``np.in1d`` and ``np.trapz``.
# mmpretrain 1.2.0 ``RetrievalRecall`` and mmaction2 1.2.0 ``multimodal_metric`` call
# ``np.in1d``; mmaction2's proposal metrics call ``np.trapz``. Guard: only when missing.
# ---------------------------------------------------------------------------
def _patch_numpy(np) -> None:
    if not hasattr(np, 'in1d'):
        def in1d(ar1, ar2, assume_unique=False, invert=False):
            """Removed in numpy 2.4: ``isin`` on the flattened input."""
            return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)

        np.in1d = in1d
        APPLIED.append('numpy-in1d')
    if not hasattr(np, 'trapz') and hasattr(np, 'trapezoid'):
        np.trapz = np.trapezoid
        APPLIED.append('numpy-trapz')


after_import('numpy', _patch_numpy)


# ---------------------------------------------------------------------------
# 3. transformers names that mmpretrain 1.2.0 imports from ``transformers.modeling_utils``.
# transformers 4.52 stopped re-exporting ``GenerationMixin``/``GenerationConfig`` there
# (OFA), 4.56 removed ``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices``
# and ``prune_linear_layer`` (BLIP, RAM). Without them ``import mmpretrain.models``
# fails with a TypeError at class definition, which also breaks mmdet and mmaction2.
# Guard: each name is only added when missing.
# ---------------------------------------------------------------------------
def _patch_transformers_modeling_utils(module) -> None:
    from transformers import generation, pytorch_utils
    restored = []
    for name, source in (('GenerationMixin', generation), ('GenerationConfig', generation),
                         ('apply_chunking_to_forward', pytorch_utils),
                         ('find_pruneable_heads_and_indices', pytorch_utils),
                         ('prune_linear_layer', pytorch_utils)):
        if not hasattr(module, name) and hasattr(source, name):
            setattr(module, name, getattr(source, name))
            restored.append(name)
    if restored:
        APPLIED.append('transformers-modeling_utils:' + ','.join(restored))


after_import('transformers.modeling_utils', _patch_transformers_modeling_utils)


# ---------------------------------------------------------------------------
# 4. mmaction2 1.2.0 distributions lack ``mmaction/models/localizers/drn/``
# (open-mmlab/mmaction2#2714) although ``localizers/__init__.py`` imports it, so
# ``import mmaction.models`` fails. We provide the missing package with a ``DRN`` that
# explains itself when built. Guard: the finder sits at the end of ``sys.meta_path``
# and only answers when no real finder found the package.
# ---------------------------------------------------------------------------
_DRN_PACKAGE = 'mmaction.models.localizers.drn'


class _MissingDRN:
    """Stands in for mmaction2's DRN localizer, which its 1.2.0 distribution does not ship."""

    def __init__(self, *args, **kwargs):
        raise ImportError('mmaction2 1.2.0 is distributed without mmaction/models/localizers/drn '
                          '(open-mmlab/mmaction2#2714): the DRN localizer is unavailable. '
                          'Install mmaction2 from source to use it.')


class _MissingDRNLoader(importlib.abc.Loader):

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        module.DRN = _MissingDRN
        if module.__name__ == _DRN_PACKAGE:
            module.__path__ = []
        APPLIED.append('mmaction2-drn')


class _MissingDRNFinder(importlib.abc.MetaPathFinder):

    def find_spec(self, fullname, path, target=None):
        if fullname not in (_DRN_PACKAGE, _DRN_PACKAGE + '.drn'):
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _MissingDRNLoader(), is_package=fullname == _DRN_PACKAGE)


sys.meta_path.append(_MissingDRNFinder())


# ---------------------------------------------------------------------------
# 5. mmengine checkpoint loading: weights-only, for every scheme.
# Local files: mmengine <= 0.10.7 calls ``torch.load`` without an allowlist; since torch 2.6
# that means weights-only loading, which refuses mmengine's own checkpoints (HistoryBuffer,
# numpy scalars, ConfigDict in ``meta``/``message_hub``), so ``load_from``/``resume`` fail.
# Turning weights-only loading off would let a crafted checkpoint run code.
# Remote files: mmengine's ``http(s)://`` loader (also behind ``torchvision://``,
# ``modelzoo://``, ``open-mmlab://`` and ``mmcls://``) calls
# ``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults to False in every
# torch version, and its ``pavi://``, ``s3://``/``petrel://`` and ``open-mmlab://`` (local
# table entry) loaders call ``torch.load`` without an allowlist: a checkpoint served over
# http ran its code through ``tools/test.py CONFIG URL``, ``--resume URL``, ``load_from=URL``
# and ``init_cfg=dict(type='Pretrained', checkpoint=URL)``.
# We register ``mplug2.utils.checkpoint``'s loaders for the local scheme and every remote one
# (``SCHEME_LOADERS``): the file is brought to a local one (URLs: the torch hub cache) and
# always read weights-only with the allowlist, with an error naming the checkpoint and the
# refused type. ``CheckpointLoader.load_checkpoint`` refuses, with a clear message, any
# loader that is not one of these (a scheme registered later, by another package).
# Guard: mmengine <= 0.10.7 (its loaders and scheme tables), torch >= 2.5
# (``torch.serialization.safe_globals``; this project pins 2.13).
# ---------------------------------------------------------------------------
def _patch_mmengine_checkpoint_loader(module) -> None:
    mmengine_version = _installed_version('mmengine')
    torch_version = _installed_version('torch')
    if mmengine_version is None or mmengine_version > (0, 10, 7):
        return
    if torch_version is None or torch_version < (2, 5):
        return
    from mplug2.utils import checkpoint as safe

    loader_class = module.CheckpointLoader
    safe_loaders = {safe.load_from_local}
    loader_class.register_scheme(prefixes='', loader=safe.load_from_local, force=True)
    module.load_from_local = safe.load_from_local
    for prefixes, loader in safe.SCHEME_LOADERS:
        loader_class.register_scheme(prefixes=list(prefixes), loader=loader, force=True)
        safe_loaders.add(loader)
        # Direct callers (``load_from_torchvision`` calls ``load_from_http``) use the module names.
        setattr(module, loader.__name__, loader)
    original = loader_class.load_checkpoint.__func__

    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        loader = cls._get_checkpoint_loader(filename)
        if loader not in safe_loaders:
            name = f'{getattr(loader, "__module__", "?")}.{getattr(loader, "__qualname__", loader)}'
            raise safe.UnsafeCheckpointError(
                f'Refusing to load checkpoint {filename!r}: mmengine would read it with {name}, a '
                'loader registered outside mplug2.compat that may not load weights-only. Register '
                'one built on mplug2.utils.checkpoint.load_checkpoint_file for that scheme, or '
                'pass a local copy of the file.')
        return original(cls, filename, map_location, logger)

    loader_class.load_checkpoint = classmethod(load_checkpoint)
    APPLIED.append('mmengine-safe-checkpoint-loader')


after_import('mmengine.runner.checkpoint', _patch_mmengine_checkpoint_loader)


# ---------------------------------------------------------------------------
# 6. Distributed training without GPUs (mmengine <= 0.10.7).
# ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` unconditionally and the Runner
# wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only
# machine. tools/train.py and tools/test.py call this before building the Runner: it
# starts the process group with gloo itself (the Runner then skips ``init_dist``) and
# asks for a device-less DDP wrapper. It passes ``env_cfg.dist_cfg.timeout`` (seconds, as
# mmengine's ``init_dist`` takes it on GPUs) to ``init_process_group``, so that a frozen rank
# fails the others after that time instead of torch's default 30 minutes.
# Guard: no-op when CUDA is available.
# ---------------------------------------------------------------------------
def dist_timeout(cfg):
    """``env_cfg.dist_cfg.timeout`` (seconds) as the ``timedelta`` torch wants; None if unset."""
    import datetime
    timeout = ((cfg.get('env_cfg') or {}).get('dist_cfg') or {}).get('timeout')
    if timeout is None or isinstance(timeout, datetime.timedelta):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise TypeError(f'env_cfg.dist_cfg.timeout must be a positive number of seconds, got {timeout!r}')
    return datetime.timedelta(seconds=timeout)


def prepare_distributed_on_cpu(cfg, launcher: str) -> bool:
    """Make a ``torchrun``-launched run work on CPU with gloo. Returns True if applied."""
    import torch
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher={launcher!r} needs GPUs with mmengine 0.10.7; '
                           'on a CPU-only machine use --launcher pytorch (tools/dist_train.sh).')
    import torch.distributed as dist
    if not dist.is_initialized():
        timeout = dist_timeout(cfg)
        dist.init_process_group(backend='gloo', **({} if timeout is None else dict(timeout=timeout)))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    APPLIED.append('cpu-distributed')
    return True


# ---------------------------------------------------------------------------
# 7. Tearing the process group down before the interpreter exits (torch, gloo).
# A gloo process group that is never destroyed lives until the interpreter is finalised,
# and one of its worker threads (``pt_gloo_runloop``) may still hold the last reference
# to a finished collective, such as the ``all_gather_object`` that ends each training
# epoch: dropping its tensors takes the GIL, a finalising interpreter ends a thread that
# asks for it, and ending it inside a noexcept destructor calls ``std::terminate``:
# ``terminate called without an active exception`` (SIGABRT), and torchrun fails a run
# that succeeded (pytorch/pytorch#190489; an atexit hook in torch was proposed and
# dropped, #179291). ``destroy_process_group`` alone does not stop those threads: gloo's
# ``shutdown`` does nothing, they end with the last reference to the group, and the
# Runner's DDP wrapper holds one until the garbage collector frees the Runner (it sits
# in reference cycles). So tools/train.py and tools/test.py call this once the run has
# succeeded: collect the garbage, then destroy the group, whose destructor (run without
# the GIL) joins its workers. (A module imported after the group was created can keep it
# in a default argument, e.g. ``torch.distributed.nn``; ``import mplug2`` plus mmengine's
# Runner import it earlier.) Not on failure: a teardown can wait for collectives the
# other ranks never join, and the process must exit so torchrun stops them.
# Guard: no-op unless a process group is initialised.
# ---------------------------------------------------------------------------
def finish_distributed() -> bool:
    """Destroy the default process group (and its gloo threads). Returns True if there was one."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return False
    gc.collect()  # frees a finished Runner and its DDP wrapper, which hold the group
    dist.destroy_process_group()
    APPLIED.append('destroy-process-group')
    return True
