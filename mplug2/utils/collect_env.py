"""Checks that the installed stack works, each with what to do when it does not."""
from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable

__all__ = ['Check', 'check_environment', 'EXPECTED_VERSIONS']

REINSTALL = 'run `bash tools/install.sh` (it installs and verifies the pinned stack)'

#: Versions this release is tested with (requirements/*.txt).
EXPECTED_VERSIONS = {
    'torch': '2.13.0',
    'torchvision': '0.28.0',
    'mmcv': '2.1.0',
    'mmengine': '0.10.7',
    'mmdet': '3.3.0',
    'mmpretrain': '1.2.0',
    'mmaction2': '1.2.0',
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ''
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _run(name: str, probe: Callable[[], str], fix: str, required: bool = True) -> Check:
    try:
        return Check(name, True, probe() or 'ok', required=required)
    except Exception as error:  # noqa: BLE001  (a check reports every failure)
        message = f'{type(error).__name__}: {error}'.splitlines()[0][:300]
        return Check(name, False, message, fix, required)


def _torch_pair() -> str:
    import torch
    import torchvision
    from torchvision.ops import nms
    keep = nms(torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.1]]), torch.tensor([1., .9]), 0.5)
    assert keep.tolist() == [0], keep
    cuda = f'CUDA {torch.version.cuda}, GPU available: {torch.cuda.is_available()}'
    return f'torch {torch.__version__}, torchvision {torchvision.__version__} ({cuda})'


def _mmcv_ops() -> str:
    import mmcv
    import torch
    from mmcv.ops import nms, roi_align
    boxes = torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.1]])
    _, keep = nms(boxes, torch.tensor([1., .9]), 0.5)
    assert keep.tolist() == [0], keep
    feats = torch.arange(16.).view(1, 1, 4, 4)
    out = roi_align(feats, torch.tensor([[0., 0., 0., 4., 4.]]), (2, 2), 1.0, 2, 'avg', True)
    assert out.shape == (1, 1, 2, 2)
    return f'mmcv {mmcv.__version__} with compiled ops (nms, roi_align)'


def _import(module: str) -> Callable[[], str]:
    def probe() -> str:
        importlib.import_module(module)
        return f'import {module}'
    return probe


def _pkg_resources() -> str:
    import pkg_resources  # noqa: F401
    return f'setuptools {_version("setuptools")}'


def _java() -> str:
    java = shutil.which('java')
    if java is None:
        raise RuntimeError('java not found')
    out = subprocess.run([java, '-version'], capture_output=True, text=True, timeout=30)
    return (out.stderr or out.stdout).splitlines()[0]


def _versions() -> str:
    wrong = [f'{dist} {_version(dist)} (expected {want})' for dist, want in EXPECTED_VERSIONS.items()
             if (_version(dist) or '').split('+')[0] != want]
    if wrong:
        raise RuntimeError('; '.join(wrong))
    return ', '.join(f'{dist} {want}' for dist, want in EXPECTED_VERSIONS.items())


def check_environment() -> list[Check]:
    """Run every check; the caller decides how to report."""
    import mplug2  # noqa: F401  (the compatibility layer must be active for the host imports)
    return [
        _run('pinned versions', _versions, REINSTALL),
        _run('torch + torchvision', _torch_pair,
             'torch and torchvision must be the matched registry pair (a CPU torch from a local '
             'wheel folder breaks torchvision.ops); ' + REINSTALL),
        _run('mmcv ops', _mmcv_ops,
             'mmcv 2.1.0 must be built from source with MMCV_WITH_OPS=1 (mmcv-lite lacks mmcv._ext); ' + REINSTALL),
        _run('pkg_resources', _pkg_resources, "mmengine needs it: pip install 'setuptools>=77,<81'"),
        _run('mmdet.models', _import('mmdet.models'), REINSTALL),
        _run('mmpretrain.models', _import('mmpretrain.models'),
             'needs transformers names restored by mplug2.compat; check the transformers version; ' + REINSTALL),
        _run('mmaction.models', _import('mmaction.models'),
             'needs timm and mplug2.compat (missing drn package); ' + REINSTALL),
        _run('transformers', _import('transformers'), REINSTALL),
        _run('video decoding (decord, av)', lambda: _import('decord')() + ', ' + _import('av')(), REINSTALL),
        _run('COCO tools (pycocotools, pycocoevalcap)',
             lambda: _import('pycocotools.coco')() + ', ' + _import('pycocoevalcap.cider.cider')(), REINSTALL),
        _run('java (caption metrics: METEOR, PTB tokenizer)', _java,
             'install a Java runtime (e.g. apt-get install default-jre-headless) for METEOR and the PTB tokenizer',
             required=False),
    ]
