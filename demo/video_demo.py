"""Answer a question about a video, or caption it, with a trained mPLUG-2 model.

    python demo/video_demo.py VIDEO CONFIG CHECKPOINT --question "what is the man doing?"
    python demo/video_demo.py VIDEO CONFIG CHECKPOINT            # captioning model

A video QA config (``type='MPLUG2QA'``) needs ``--question``; a captioning config
(``type='MPLUG2Captioner'``) takes none. The answer or caption is printed on stdout.
"""
import argparse
import os
import sys

import mplug2  # noqa: F401  (compatibility layer first)
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from mplug2.apis import answer_question, caption_video, init_model
from mplug2.models import MPLUG2QA
from mplug2.registry import MODELS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='mPLUG-2 video question answering / captioning demo')
    parser.add_argument('video', help='video file (mp4, avi, webm, gif ...)')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--question', help='question about the video (video QA models)')
    parser.add_argument('--device', default='cpu', help="device, e.g. 'cpu' or 'cuda:0'")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, e.g. model.generation.num_beams=3')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for kind, path in (('video', args.video), ('config', args.config), ('checkpoint', args.checkpoint)):
        if not os.path.isfile(path):
            print(f'error: {kind} file not found: {path}', file=sys.stderr)
            return 1
    # Check the task before building the model (which can take a while for large models).
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'mplug2'):
        model_type = MODELS.get(cfg.model.type) if isinstance(cfg.model.type, str) else cfg.model.type
    is_qa = isinstance(model_type, type) and issubclass(model_type, MPLUG2QA)
    if is_qa and not args.question:
        print(f'error: {args.config} builds a video QA model ({cfg.model.type}): pass --question',
              file=sys.stderr)
        return 2
    if not is_qa and args.question:
        print(f'error: {args.config} builds a {cfg.model.type}, which takes no question; use a '
              'video QA config (type=MPLUG2QA) to answer questions', file=sys.stderr)
        return 2
    model = init_model(cfg, args.checkpoint, device=args.device)
    if is_qa:
        print(answer_question(model, args.video, args.question))
    else:
        print(caption_video(model, args.video))
    return 0


if __name__ == '__main__':
    sys.exit(main())
