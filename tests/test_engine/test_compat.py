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
