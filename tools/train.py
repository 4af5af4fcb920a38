"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]``.

Distributed: ``tools/dist_train.sh CONFIG GPUS`` (torchrun). Without GPUs the processes use gloo.

``--resume CKPT`` resumes from CKPT (a missing local file is an error); ``--resume`` alone resumes
from the latest checkpoint of the work dir, and says so in the log when there is none and the
run starts from scratch (from the config's ``load_from``, if any). ``load_from`` in a config
(fine-tuning from other weights) loads non-strictly, as in mmengine: keys that do not fit are
listed in the log.
"""
import argparse
import os
import os.path as osp
from typing import Optional

import mplug2  # noqa: F401  (compatibility layer first)
from mmengine.config import Config, DictAction
from mmengine.runner import Runner, find_latest_checkpoint

from mplug2.compat import finish_distributed, prepare_distributed_on_cpu
from mplug2.registry import RUNNERS
from mplug2.utils.checkpoint import is_remote_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir if none is given')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr with the total batch size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. key=value or a.b=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.resume not in (None, 'auto') and not is_remote_checkpoint(args.resume) \
            and not osp.isfile(osp.expanduser(args.resume)):
        parser.error(f'--resume: checkpoint not found: {args.resume}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config, the way OpenMMLab tools do."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        if find_latest_checkpoint(cfg.work_dir) is not None:
            cfg.resume = True
            cfg.load_from = None
        else:  # nothing to resume: a fresh start, from the config's load_from if it has one
            cfg.resume = False
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr.base_batch_size` in the config')
        cfg.auto_scale_lr.enable = True
    return cfg


def resume_warning(cfg: Config, args: argparse.Namespace) -> Optional[str]:
    """The line to log when ``--resume`` (auto) found nothing to resume (after :func:`merge_args`)."""
    if args.resume != 'auto' or cfg.resume:
        return None
    start = f"the config's load_from={cfg.load_from}" if cfg.get('load_from') else 'scratch'
    return (f'--resume: nothing to resume in {cfg.work_dir} (no last_checkpoint there): '
            f'starting from {start}')


def train(cfg: Config, warning: Optional[str] = None) -> None:
    """Build the runner and train. Nothing refers to the runner once this returns."""
    # A config may name its own runner (``runner_type``); otherwise the MMEngine Runner.
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    if warning is not None:
        runner.logger.warning(warning)  # in the run's log file, not only on the console
    runner.train()


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    prepare_distributed_on_cpu(cfg, args.launcher)
    train(cfg, resume_warning(cfg, args))
    # After a successful run only: destroy the process group while the interpreter is alive,
    # or a gloo worker thread can abort the process at exit (see mplug2.compat.finish_distributed).
    finish_distributed()


if __name__ == '__main__':
    main()
