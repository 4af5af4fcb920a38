"""The compatibility layer: each workaround is active where needed and does what it says."""
import importlib
import subprocess
import sys

import numpy as np
import pytest

import mplug2
from mplug2 import compat


def test_numpy_removed_functions_restored():
    assert np.in1d([[1, 5], [2, 7]], [2, 5]).tolist() == [False, True, True, False]
    assert np.in1d([1, 2], [2], invert=True).tolist() == [True, False]
    assert np.trapz([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]) == pytest.approx(2.0)


def test_transformers_names_for_mmpretrain():
    from transformers import generation, modeling_utils, pytorch_utils
    assert modeling_utils.GenerationMixin is generation.GenerationMixin
    assert modeling_utils.apply_chunking_to_forward is pytorch_utils.apply_chunking_to_forward
    assert modeling_utils.find_pruneable_heads_and_indices is pytorch_utils.find_pruneable_heads_and_indices
    assert modeling_utils.prune_linear_layer is pytorch_utils.prune_linear_layer


def test_host_model_packages_import():
    # In a fresh interpreter, so that imports made earlier in this session cannot hide a failure.
    code = 'import mplug2, mmpretrain.models, mmaction.models, mmdet.models; print("ok")'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_missing_drn_placeholder_explains_itself():
    importlib.import_module('mmaction.models')
    from mmaction.models.localizers import DRN
    with pytest.raises(ImportError, match='2714'):
        DRN()


def test_host_libraries_without_compat_fail():
    """The workarounds are needed: without mplug2, the host imports break (guards for upgrades)."""
    code = 'import mmaction.models'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    if result.returncode == 0:
        pytest.skip('mmaction2 imports without the workaround: upstream fixed it, the guard is a no-op')
    assert 'drn' in result.stderr or 'transformers' in result.stderr or 'TypeError' in result.stderr


def test_after_import_hook_runs_once_on_import(tmp_path, monkeypatch):
    (tmp_path / 'mplug2_hook_probe.py').write_text('value = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    compat.after_import('mplug2_hook_probe', lambda module: seen.append(module.value))
    import mplug2_hook_probe  # noqa: F401
    assert seen == [1]
    compat.after_import('mplug2_hook_probe', lambda module: seen.append(module.value + 1))
    assert seen == [1, 2]  # already imported: runs at once


def test_package_lookup_without_pkg_resources():
    """The replacements used when setuptools no longer ships pkg_resources."""
    import mmdet
    assert compat._is_installed('mmdet')
    assert not compat._is_installed('surely_not_a_package_xyz')
    assert compat._get_installed_path('mmdet') == mmdet.__path__[0]
    # distribution name differs from the module name
    import mmaction
    assert compat._get_installed_path('mmaction2') == mmaction.__path__[0]


def test_host_config_bases_resolve():
    """``mmdet::`` bases resolve (mmengine looks the package up through pkg_resources)."""
    import os
    import tempfile

    from mmengine.config import Config
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'cfg.py')
        with open(path, 'w') as f:
            f.write("_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'\n")
        cfg = Config.fromfile(path)
    assert cfg.model.type == 'CascadeRCNN'
    assert cfg.model.roi_head.type == 'CascadeRoIHead'


def test_cpu_distributed_preparation_is_noop_without_launcher():
    from mmengine.config import Config
    cfg = Config(dict(model=dict(type='X')))
    assert compat.prepare_distributed_on_cpu(cfg, 'none') is False
    assert 'model_wrapper_cfg' not in cfg


def test_applied_workarounds_are_reported():
    importlib.import_module('mmaction.models')
    assert 'mmaction2-drn' in compat.APPLIED
    assert any(name.startswith('transformers-modeling_utils') for name in compat.APPLIED)
    assert 'mmengine-safe-checkpoint-loader' in compat.APPLIED
    assert isinstance(mplug2.__version__, str)


def test_every_mmengine_checkpoint_scheme_is_weights_only():
    """Every scheme mmengine's CheckpointLoader accepts (local, http(s), torchvision, open-mmlab,
    mmcls, pavi, s3/petrel) is served by a loader of mplug2.utils.checkpoint."""
    import mmengine.runner.checkpoint as mmengine_checkpoint

    from mplug2.utils import checkpoint as safe
    schemes = mmengine_checkpoint.CheckpointLoader._schemes
    assert {'', 'http://', 'https://', 'torchvision://', 'modelzoo://', 'open-mmlab://', 'openmmlab://',
            'mmcls://', 'pavi://'} <= set(schemes)
    for prefix, loader in schemes.items():
        assert loader.__module__ == safe.__name__, (prefix, loader)
    for name in ('load_from_local', 'load_from_http', 'load_from_torchvision', 'load_from_openmmlab',
                 'load_from_mmcls', 'load_from_pavi', 'load_from_ceph'):
        assert getattr(mmengine_checkpoint, name).__module__ == safe.__name__, name


def test_checkpoint_scheme_registered_later_is_refused(tmp_path):
    """A loader that mplug2 did not install (another package's scheme) is refused, not called."""
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

    from mplug2.utils.checkpoint import UnsafeCheckpointError
    called = []

    def load_from_unsafe(filename, map_location=None):
        called.append(filename)
        return torch.load(filename, weights_only=False)

    CheckpointLoader.register_scheme(prefixes='unsafe-test://', loader=load_from_unsafe)
    try:
        with pytest.raises(UnsafeCheckpointError, match=r"'unsafe-test://x.pth'.*load_from_unsafe"):
            load_checkpoint(torch.nn.Linear(1, 1), 'unsafe-test://x.pth')
    finally:
        CheckpointLoader._schemes.pop('unsafe-test://', None)
    assert called == []


# ----------------------------------------------------------------------------- process-group timeout
def _runtime_cfg(**options):
    import os

    from mmengine.config import Config
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = Config.fromfile(os.path.join(root, 'tests', 'data', 'configs', 'toy_regression.py'))
    cfg.merge_from_dict(options)
    return cfg


def test_default_runtime_sets_a_process_group_timeout():
    assert _runtime_cfg().env_cfg.dist_cfg.timeout == 600


@pytest.mark.parametrize('options, seconds', [({}, 600), ({'env_cfg.dist_cfg.timeout': 42}, 42)])
def test_timeout_reaches_init_process_group_on_cpu(monkeypatch, options, seconds):
    """tools/train.py and tools/test.py on CPU start the gloo group themselves, with the config's timeout."""
    import datetime

    import torch
    import torch.distributed as dist
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(dist, 'init_process_group', lambda **kwargs: calls.append(kwargs))
    cfg = _runtime_cfg(**options)
    assert compat.prepare_distributed_on_cpu(cfg, 'pytorch') is True
    assert calls == [dict(backend='gloo', timeout=datetime.timedelta(seconds=seconds))]


def test_timeout_reaches_init_process_group_with_gpus(monkeypatch):
    """With GPUs the Runner calls mmengine's init_dist(launcher, **env_cfg.dist_cfg): seconds -> timedelta."""
    import datetime

    import mmengine.dist.utils as dist_utils
    import torch
    calls = []
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(dist_utils.mp, 'get_start_method', lambda allow_none=False: 'fork')
    monkeypatch.setattr(torch.cuda, 'set_device', lambda device: None)
    monkeypatch.setattr(dist_utils.torch_dist, 'init_process_group', lambda **kwargs: calls.append(kwargs))
    for name in ('is_mlu_available', 'is_npu_available', 'is_musa_available'):
        monkeypatch.setattr(dist_utils, name, lambda: False)
    dist_utils.init_dist('pytorch', **_runtime_cfg().env_cfg.dist_cfg)
    assert calls == [dict(backend='nccl', timeout=datetime.timedelta(seconds=600))]


def test_timeout_must_be_seconds():
    from mmengine.config import Config
    assert compat.dist_timeout(Config(dict())) is None
    with pytest.raises(TypeError, match='seconds'):
        compat.dist_timeout(Config(dict(env_cfg=dict(dist_cfg=dict(timeout='10m')))))
