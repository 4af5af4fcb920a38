"""Checkpoints are untrusted input: weights-only loading with an allowlist, from files and from
every remote scheme (a loopback http server here), exact resume, strict loading."""
import contextlib
import copy
import functools
import http.server
import os
import pickle
import threading
import zipfile

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner, load_checkpoint

import mplug2  # noqa: F401
from mplug2.utils.checkpoint import UnsafeCheckpointError, load_checkpoint_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY_CONFIG = os.path.join(ROOT, 'tests', 'data', 'configs', 'toy_regression.py')


class _RunsCode:
    """Unpickling this calls ``os.system``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _GetattrEscape:
    """Unpickling this calls ``getattr(HistoryBuffer, '__init__')``: an allowed name, a forbidden use."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'payload': _RunsCode(str(marker))}, path)
    return path, marker


def test_malicious_checkpoint_is_refused(malicious_checkpoint):
    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert str(path) in message and 'posix.system' in message
    assert not marker.exists()


def test_malicious_checkpoint_is_refused_through_mmengine(malicious_checkpoint):
    """``load_from``/``init_cfg=Pretrained`` go through mmengine's loader, which compat replaced."""
    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))
    assert not marker.exists()


def test_getattr_is_restricted(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrEscape()}, path)
    with pytest.raises(UnsafeCheckpointError, match='__init__'):
        load_checkpoint_file(path)


def test_legacy_format_is_refused(tmp_path):
    path = tmp_path / 'legacy.pth'
    marker = tmp_path / 'pwned'
    torch.save({'payload': _RunsCode(str(marker))}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match=r"Refusing to load checkpoint '.*legacy\.pth'"):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_plain_pickle_is_not_unpickled_unsafely(tmp_path):
    path = tmp_path / 'plain.pkl'
    marker = tmp_path / 'pwned'
    with open(path, 'wb') as f:
        pickle.dump(_RunsCode(str(marker)), f)
    with pytest.raises(pickle.UnpicklingError,
                       match=r"Refusing to load checkpoint '.*plain\.pkl'.*not on mplug2's allowlist"):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'nope\.pth can not be found'):
        load_checkpoint_file(tmp_path / 'nope.pth')


def _build_runner(work_dir, **overrides):
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(overrides)
    return Runner.from_cfg(cfg)


def _optimizer_state(runner):
    state = runner.optim_wrapper.state_dict()['state']
    return {key: {name: value.clone() for name, value in entry.items() if torch.is_tensor(value)}
            for key, entry in state.items()}


def test_own_checkpoint_loads_and_resumes_exactly(tmp_path):
    # Uninterrupted: 8 iterations, checkpoints at 4 and 8.
    full = _build_runner(tmp_path / 'full')
    full.train()
    full_params = copy.deepcopy(full.model.state_dict())
    full_optim = _optimizer_state(full)

    # The checkpoint holds mmengine's own types (HistoryBuffer, numpy, ...) and loads weights-only.
    ckpt = load_checkpoint_file(tmp_path / 'full' / 'iter_4.pth')
    assert ckpt['meta']['iter'] == 4
    assert 'train/loss' in ckpt['message_hub']['log_scalars']

    # Resume from iteration 4 in a fresh runner and finish.
    resumed = _build_runner(tmp_path / 'resumed', resume=True, load_from=str(tmp_path / 'full' / 'iter_4.pth'))
    resumed.train()
    assert resumed.iter == 8
    for name, value in full_params.items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0)
    resumed_optim = _optimizer_state(resumed)
    assert resumed_optim.keys() == full_optim.keys()
    for key in full_optim:
        for name, value in full_optim[key].items():
            torch.testing.assert_close(resumed_optim[key][name], value, rtol=0, atol=0)
    # The scheduler continued from where it stopped, too.
    assert resumed.optim_wrapper.get_lr()['lr'] == pytest.approx(full.optim_wrapper.get_lr()['lr'])


def test_resume_restores_iteration_and_optimizer(tmp_path):
    first = _build_runner(tmp_path / 'a', train_cfg=dict(type='IterBasedTrainLoop', max_iters=4))
    first.train()
    saved_optim = _optimizer_state(first)

    again = _build_runner(tmp_path / 'b', resume=True, load_from=str(tmp_path / 'a' / 'iter_4.pth'))
    again.load_or_resume()
    assert again.iter == 4
    restored = _optimizer_state(again)
    for key in saved_optim:
        for name, value in saved_optim[key].items():
            torch.testing.assert_close(restored[key][name], value, rtol=0, atol=0)


# ----------------------------------------------------------------------------- remote checkpoints
class _QuietHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_directory(directory, lifetime=120.0):
    """Serve ``directory`` on a loopback port, in a thread; stops on exit or after ``lifetime`` s."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.1), daemon=True)
    thread.start()
    stopper = threading.Timer(lifetime, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def make_served_checkpoints(directory, marker):
    """``evil.pth`` runs ``touch marker`` when unpickled; ``good.pth`` is a ToyRegressor state dict."""
    from tests.data.toy_model import ToyRegressor
    os.makedirs(directory, exist_ok=True)
    torch.save({'state_dict': {'mlp.0.weight': torch.zeros(16, 8)}, 'payload': _RunsCode(str(marker))},
               os.path.join(directory, 'evil.pth'))
    good = {name: value + 1 for name, value in ToyRegressor().state_dict().items()}
    torch.save({'state_dict': good, 'meta': {}}, os.path.join(directory, 'good.pth'))
    return good


@pytest.fixture
def http_checkpoints(tmp_path, monkeypatch):
    """A loopback server of a crafted and a benign checkpoint; the torch hub cache in tmp_path."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    assert torch.hub.get_dir().startswith(str(tmp_path)), 'torch.hub.set_dir() was called earlier'
    marker = tmp_path / 'pwned'
    good = make_served_checkpoints(tmp_path / 'served', marker)
    with serve_directory(tmp_path / 'served') as url:
        yield url, marker, good


def _toy_model(**kwargs):
    from tests.data.toy_model import ToyRegressor
    return ToyRegressor(**kwargs)


def _init_cfg_pretrained(url, work_dir):
    _toy_model(init_cfg=dict(type='Pretrained', checkpoint=url)).init_weights()


def _pretrained_mplug2(url, work_dir):
    from mplug2.checkpoints.initializers import PretrainedMPLUG2
    PretrainedMPLUG2(url)(_toy_model())


def _runner_load_from(url, work_dir):
    _build_runner(work_dir, load_from=url).load_or_resume()


def _runner_resume(url, work_dir):
    _build_runner(work_dir, resume=True, load_from=url).load_or_resume()


ENTRY_POINTS = dict(init_cfg_pretrained=_init_cfg_pretrained, pretrained_mplug2=_pretrained_mplug2,
                    load_from=_runner_load_from, resume=_runner_resume,
                    mmengine_load_checkpoint=lambda url, work_dir: load_checkpoint(_toy_model(), url))


@pytest.mark.parametrize('entry', sorted(ENTRY_POINTS))
def test_remote_crafted_checkpoint_is_refused(http_checkpoints, tmp_path, entry):
    url, marker, _ = http_checkpoints
    with pytest.raises(UnsafeCheckpointError) as info:
        ENTRY_POINTS[entry](f'{url}/evil.pth', tmp_path / 'work')
    assert f'{url}/evil.pth' in str(info.value) and 'posix.system' in str(info.value)
    assert not marker.exists()


def test_remote_benign_checkpoint_loads(http_checkpoints, tmp_path):
    url, marker, good = http_checkpoints
    runner = _build_runner(tmp_path / 'work', load_from=f'{url}/good.pth')
    runner.load_or_resume()
    for name, value in good.items():
        torch.testing.assert_close(runner.model.state_dict()[name], value, rtol=0, atol=0)
    model = _toy_model(init_cfg=dict(type='Pretrained', checkpoint=f'{url}/good.pth'))
    model.init_weights()
    torch.testing.assert_close(model.state_dict()['mlp.0.weight'], good['mlp.0.weight'], rtol=0, atol=0)
    from mplug2.checkpoints.initializers import PretrainedMPLUG2
    model = _toy_model()
    PretrainedMPLUG2(f'{url}/good.pth')(model)
    torch.testing.assert_close(model.state_dict()['mlp.2.bias'], good['mlp.2.bias'], rtol=0, atol=0)
    assert os.path.isfile(os.path.join(torch.hub.get_dir(), 'checkpoints', 'good.pth'))  # cached once


def test_resume_from_url_with_mmengine_types(http_checkpoints, tmp_path):
    """An mmengine checkpoint (HistoryBuffer, numpy...) over http: same allowlist as a local file."""
    url, _, _ = http_checkpoints
    first = _build_runner(tmp_path / 'a', train_cfg=dict(type='IterBasedTrainLoop', max_iters=4))
    first.train()
    os.replace(tmp_path / 'a' / 'iter_4.pth', tmp_path / 'served' / 'iter_4.pth')
    again = _build_runner(tmp_path / 'b', resume=True, load_from=f'{url}/iter_4.pth')
    again.load_or_resume()
    assert again.iter == 4


def test_crafted_file_in_the_download_cache_is_refused(http_checkpoints):
    """The server has a benign good.pth, the cache a crafted one under that name: refused, not run."""
    url, marker, _ = http_checkpoints
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', 'good.pth')
    os.makedirs(os.path.dirname(cached))
    torch.save({'payload': _RunsCode(str(marker))}, cached)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint(_toy_model(), f'{url}/good.pth')
    assert f'{url}/good.pth' in str(info.value) and cached in str(info.value)
    assert not marker.exists()


def test_remote_legacy_zip_is_refused(http_checkpoints, tmp_path):
    """torch.hub extracts a zip of one pre-1.6 file; its content is read weights-only too."""
    url, marker, _ = http_checkpoints
    legacy = tmp_path / 'inner.pth'
    torch.save({'payload': _RunsCode(str(marker))}, legacy, _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(tmp_path / 'served' / 'legacy.zip', 'w') as archive:
        archive.write(legacy, 'inner.pth')
    with pytest.raises(UnsafeCheckpointError, match='legacy.zip'):
        load_checkpoint_file(f'{url}/legacy.zip')
    assert not marker.exists()


@pytest.mark.parametrize('scheme, table', [('open-mmlab://', 'get_external_models'),
                                           ('openmmlab://', 'get_external_models'),
                                           ('torchvision://', 'get_torchvision_models'),
                                           ('modelzoo://', 'get_torchvision_models'),
                                           ('mmcls://', 'get_mmcls_models')])
def test_model_zoo_schemes_are_weights_only(http_checkpoints, monkeypatch, scheme, table):
    """The model-zoo schemes resolve a name to a URL (mmengine's tables) and load it like a URL."""
    import mmengine.runner.checkpoint as mmengine_checkpoint
    url, marker, _ = http_checkpoints
    monkeypatch.setattr(mmengine_checkpoint, table, lambda: {'crafted': f'{url}/evil.pth'})
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        load_checkpoint(_toy_model(), f'{scheme}crafted')
    assert not marker.exists()


def test_open_mmlab_local_table_entry_is_weights_only(tmp_path, monkeypatch, malicious_checkpoint):
    """An ``open-mmlab://`` name may map to a file under the mmengine home: read weights-only."""
    import mmengine.runner.checkpoint as mmengine_checkpoint
    path, marker = malicious_checkpoint
    monkeypatch.setattr(mmengine_checkpoint, 'get_external_models', lambda: {'local': path.name})
    monkeypatch.setattr(mmengine_checkpoint, '_get_mmengine_home', lambda: str(path.parent))
    with pytest.raises(UnsafeCheckpointError, match='open-mmlab://local'):
        load_checkpoint(_toy_model(), 'open-mmlab://local')
    assert not marker.exists()


# ----------------------------------------------------------------------------- strict loading
@pytest.fixture
def tiny_models(tiny_vocab):
    from mplug2.registry import MODELS
    from tests.conftest import tiny_mplug2
    torch.manual_seed(0)
    qa = MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab))
    retriever = MODELS.build(tiny_mplug2('MPLUG2Retriever', tiny_vocab, text_decoder=None,
                                         itc_head=dict(type='ITCHead', queue_size=0)))
    return qa, retriever


def test_checkpoint_of_another_task_fails_strict_loading(tiny_models, tmp_path):
    """A QA checkpoint under a retrieval model: the ITC/ITM heads would stay random."""
    from mplug2.utils.checkpoint import load_model_checkpoint
    qa, retriever = tiny_models
    path = tmp_path / 'qa.pth'
    torch.save({'state_dict': qa.state_dict(), 'meta': {}}, path)
    with pytest.raises(RuntimeError) as info:
        load_model_checkpoint(retriever, path)
    message = str(info.value)
    assert str(path) in message and 'missing key(s)' in message and 'unexpected key(s)' in message
    assert 'itc_head.' in message and 'text_decoder.' in message
    # The explicit opt-out loads what fits (fine-tuning from another task's weights).
    load_model_checkpoint(retriever, path, strict=False)
    for name, value in qa.state_dict().items():
        if name.startswith('vision_encoder.'):
            torch.testing.assert_close(retriever.state_dict()[name], value, rtol=0, atol=0)


def test_checkpoint_of_another_width_fails_strict_loading(tiny_vocab, tmp_path):
    from mplug2.registry import MODELS
    from mplug2.utils.checkpoint import load_model_checkpoint
    from tests.conftest import tiny_mplug2
    wide = dict(type='DualVisionEncoder', arch=dict(width=48, layers=2, heads=2, patch_size=4), img_size=16)
    path = tmp_path / 'wide.pth'
    torch.save({'state_dict': MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab, vision_encoder=wide)).state_dict()},
               path)
    with pytest.raises(RuntimeError, match=r'another shape: \[.vision_encoder\.'):
        load_model_checkpoint(MODELS.build(tiny_mplug2('MPLUG2QA', tiny_vocab)), path)


def test_model_checkpoint_strips_ddp_prefix_and_unwraps(tmp_path):
    from mplug2.utils.checkpoint import load_model_checkpoint
    model = _toy_model()
    state = {f'module.{name}': value + 2 for name, value in model.state_dict().items()}
    checkpoint = load_model_checkpoint(model, {'state_dict': state, 'meta': {'iter': 3}})
    assert checkpoint['meta']['iter'] == 3
    torch.testing.assert_close(model.state_dict()['mlp.0.bias'], state['module.mlp.0.bias'], rtol=0, atol=0)
