"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--non-strict]``.

The checkpoint (a path or a URL, read weights-only: see ``mplug2.utils.checkpoint``) is loaded
strictly: every key of the model must be in it with the same shape and it must have no other
key, or the run stops with the missing, unexpected and mismatched keys (a checkpoint of another
task or width would otherwise be evaluated with random weights). ``--non-strict`` loads the
matching tensors anyway and logs the rest.
"""
import argparse
import os
import os.path as osp
from typing import Optional

import mplug2  # noqa: F401  (compatibility layer first)
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.runner import Runner

from mplug2.compat import finish_distributed, prepare_distributed_on_cpu
from mplug2.registry import RUNNERS
from mplug2.utils.checkpoint import is_remote_checkpoint, load_checkpoint_file, load_model_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (or URL)')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument('--out', help='dump the predictions to this pickle file (e.g. results.pkl)')
    parser.add_argument(
        '--non-strict', action='store_true',
        help='load the checkpoint even if keys are missing, unexpected or of another shape (they are '
             'logged and keep their initial values): the evaluation then runs partly random weights')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. key=value or a.b=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if not is_remote_checkpoint(args.checkpoint) and not osp.isfile(osp.expanduser(args.checkpoint)):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = osp.expanduser(args.checkpoint) if not is_remote_checkpoint(args.checkpoint) \
        else args.checkpoint
    prepare_distributed_on_cpu(cfg, args.launcher)
    run_test(cfg, args.out, strict=not args.non_strict)
    # After a successful run only: destroy the process group while the interpreter is alive,
    # or a gloo worker thread can abort the process at exit (see mplug2.compat.finish_distributed).
    finish_distributed()


def load_checkpoint_strictly(runner: Runner, strict: bool = True) -> None:
    """Make ``runner`` load ``load_from`` with :func:`mplug2.utils.checkpoint.load_model_checkpoint`.

    mmengine's ``Runner.load_checkpoint`` loads non-strictly (and raises only on rank 0 when
    asked to be strict). This keeps its place and its ``after_load_checkpoint`` hooks and
    replaces the loading: strict unless ``strict=False``, the same error on every rank.
    """
    def load_checkpoint(filename, map_location='cpu', strict=strict, revise_keys=((r'^module\.', ''),)):
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        try:
            load_model_checkpoint(runner.model, checkpoint, strict=strict, revise_keys=revise_keys,
                                  source=filename)
        except RuntimeError as error:
            raise RuntimeError(f'{error}\ntools/test.py loads checkpoints strictly; --non-strict loads '
                               'the matching tensors only (the rest keeps its initial values).') from None
        runner._has_loaded = True
        runner.logger.info(f'Load checkpoint from {filename}' + ('' if strict else ' (non-strict)'))
        return checkpoint

    runner.load_checkpoint = load_checkpoint


def run_test(cfg: Config, out: Optional[str], strict: bool = True) -> None:
    """Build the runner and test. Nothing refers to the runner once this returns."""
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    load_checkpoint_strictly(runner, strict)
    if out is not None:
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl file')
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
    runner.test()


if __name__ == '__main__':
    main()
