"""tools/train.py, tools/test.py and tools/dist_train.sh on a toy config, as a user runs them."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from mplug2.utils.checkpoint import load_checkpoint_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'tests', 'data', 'configs', 'toy_regression.py')


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHON'] = sys.executable
    env.pop('CUDA_VISIBLE_DEVICES', None)
    return env


def _run(args, timeout=300, returncode=0, env=None):
    result = subprocess.run(args, cwd=ROOT, env=env or _env(), capture_output=True, text=True, timeout=timeout)
    if returncode is not None:
        assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _scalars(work_dir):
    runs = [d for d in os.listdir(work_dir) if os.path.isfile(os.path.join(work_dir, d, 'vis_data', 'scalars.json'))]
    assert len(runs) == 1, runs
    with open(os.path.join(work_dir, runs[0], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope='module')
def single_process_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('single')
    _run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir)])
    return work_dir


def test_train_writes_checkpoints_and_logs(single_process_run):
    assert {'iter_4.pth', 'iter_8.pth'} <= set(os.listdir(single_process_run))
    losses = [entry['loss'] for entry in _scalars(single_process_run) if 'loss' in entry]
    assert len(losses) == 8
    assert losses[-1] < losses[0] / 2  # it learns


def test_two_cpu_processes_match_one_process(single_process_run, tmp_path):
    """dist_train.sh CONFIG 2 on CPU (gloo): same global batch => same trajectory and weights."""
    work_dir = tmp_path / 'two'
    env = _env()
    env['PORT'] = str(29500 + os.getpid() % 1000)
    result = subprocess.run(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work_dir),
                             '--cfg-options', 'train_dataloader.batch_size=2'],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    single = [entry['loss'] for entry in _scalars(single_process_run) if 'loss' in entry]
    double = [entry['global_mse'] for entry in _scalars(work_dir) if 'global_mse' in entry]
    assert len(double) == len(single) == 8
    assert double == pytest.approx(single, rel=1e-5)
    # rank 0's own loss is over half of the global batch only: it differs, the global one doesn't.
    rank0 = [entry['loss'] for entry in _scalars(work_dir) if 'loss' in entry]
    assert rank0 != pytest.approx(single, rel=1e-3)
    one = load_checkpoint_file(single_process_run / 'iter_8.pth')['state_dict']
    two = load_checkpoint_file(work_dir / 'iter_8.pth')['state_dict']
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6)


def test_resume_from_the_command_line(single_process_run, tmp_path):
    work_dir = tmp_path / 'resumed'
    result = _run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir),
                   '--resume', str(single_process_run / 'iter_4.pth')])
    assert 'resumed epoch: 0, iter: 4' in (result.stdout + result.stderr)
    one = load_checkpoint_file(single_process_run / 'iter_8.pth')['state_dict']
    resumed = load_checkpoint_file(work_dir / 'iter_8.pth')['state_dict']
    for name in one:
        torch.testing.assert_close(resumed[name], one[name], rtol=0, atol=0)


def test_test_tool_evaluates_and_dumps(single_process_run, tmp_path):
    out = tmp_path / 'results.pkl'
    result = _run([sys.executable, 'tools/test.py', CONFIG, str(single_process_run / 'iter_8.pth'),
                   '--work-dir', str(tmp_path / 'test'), '--out', str(out)])
    assert 'mse:' in (result.stdout + result.stderr)
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 16


def _gloo_threads():
    names = []
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/comm') as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return [name for name in names if name.startswith(('pt_gloo', 'gloo_'))]


@pytest.mark.skipif(not os.path.isdir('/proc/self/task'), reason='counts threads through /proc')
def test_finish_distributed_stops_the_gloo_threads(tmp_path):
    """What tools/train.py and tools/test.py do after a run: the gloo worker threads must be gone
    before the interpreter exits (else one can abort a successful run: see compat.finish_distributed)."""
    import gc

    import torch.distributed as dist
    import torch.distributed.nn  # noqa: F401  imported before the group, as in the tools
    from torch.nn.parallel import DistributedDataParallel

    from mplug2.compat import finish_distributed

    if dist.is_initialized():
        pytest.skip('a process group is already initialised in this process')
    assert finish_distributed() is False  # no group: nothing to do
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        class Holder:  # the Runner sits in reference cycles that only the garbage collector frees
            pass

        holder = Holder()
        holder.me = holder
        holder.model = DistributedDataParallel(torch.nn.Linear(4, 1))
        holder.model(torch.ones(2, 4)).sum().backward()
        total = torch.ones(1)
        dist.all_reduce(total)
        del holder, total
        assert _gloo_threads()
        assert finish_distributed() is True
        assert not dist.is_initialized()
        assert _gloo_threads() == []
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        gc.collect()


# ----------------------------------------------------------------------------- checkpoints given to the tools
def test_test_tool_refuses_a_remote_crafted_checkpoint(tmp_path):
    """``tools/test.py CONFIG URL``: the served checkpoint is read weights-only, refused, not run."""
    from tests.test_engine.test_checkpoint import make_served_checkpoints, serve_directory
    marker = tmp_path / 'pwned'
    make_served_checkpoints(tmp_path / 'served', marker)
    env = _env()
    env.update(TORCH_HOME=str(tmp_path / 'torch_home'), no_proxy='127.0.0.1')
    with serve_directory(tmp_path / 'served') as url:
        result = _run([sys.executable, 'tools/test.py', CONFIG, f'{url}/evil.pth',
                       '--work-dir', str(tmp_path / 'test')], returncode=None, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'UnsafeCheckpointError' in output and f'{url}/evil.pth' in output and 'posix.system' in output
    assert not marker.exists()


def test_test_tool_loads_strictly(single_process_run, tmp_path):
    """A checkpoint that does not fit the config stops the test with the key names; --non-strict loads it."""
    state = load_checkpoint_file(single_process_run / 'iter_8.pth')['state_dict']
    state.pop('mlp.2.bias')
    state['head.weight'] = torch.zeros(1)
    state['mlp.0.weight'] = torch.zeros(4, 8)
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    args = [sys.executable, 'tools/test.py', CONFIG, str(path), '--work-dir', str(tmp_path / 'test')]
    result = _run(args, returncode=None)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "missing key(s): ['mlp.2.bias']" in output and "unexpected key(s): ['head.weight']" in output
    assert 'mlp.0.weight: checkpoint (4, 8), module (16, 8)' in output and '--non-strict' in output
    assert 'mse:' not in output
    result = _run(args + ['--non-strict'])
    assert 'mse:' in (result.stdout + result.stderr)


def _load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'mplug2_{name}_tool', os.path.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_test_tool_names_a_missing_checkpoint(tmp_path, monkeypatch, capsys):
    missing = tmp_path / 'nope.pth'
    monkeypatch.setattr(sys, 'argv', ['test.py', CONFIG, str(missing)])
    with pytest.raises(SystemExit) as info:
        _load_tool('test').parse_args()
    assert info.value.code == 2
    assert f'checkpoint not found: {missing}' in capsys.readouterr().err


def test_resume_with_nothing_to_resume_says_so(tmp_path):
    """``--resume`` (latest) in an empty work dir: a warning in the log, then a fresh start."""
    work_dir = tmp_path / 'empty'
    result = _run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir), '--resume'])
    output = result.stdout + result.stderr
    message = f'--resume: nothing to resume in {work_dir} (no last_checkpoint there): starting from scratch'
    assert message in output and 'latest checkpoint None' not in output
    logs = [os.path.join(root, name) for root, _, names in os.walk(work_dir) for name in names
            if name.endswith('.log')]
    assert len(logs) == 1
    with open(logs[0]) as f:
        assert message in f.read()
    assert 'iter_8.pth' in os.listdir(work_dir)


def test_resume_from_a_missing_file_is_an_error(tmp_path, monkeypatch, capsys):
    missing = tmp_path / 'missing.pth'
    monkeypatch.setattr(sys, 'argv', ['train.py', CONFIG, '--resume', str(missing)])
    with pytest.raises(SystemExit) as info:
        _load_tool('train').parse_args()
    assert info.value.code == 2
    assert f'--resume: checkpoint not found: {missing}' in capsys.readouterr().err
