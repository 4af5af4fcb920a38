"""Synthetic sentence-pair classification in the GLUE RTE format (the text demo's data).

The first sentence states a scene, the second makes a claim about it; the label says whether
the claim holds (``entailment``) or not (``not_entailment``)::

    the red circle is moving left    the circle is red                 entailment
    the red circle is moving left    the circle is moving up           not_entailment
    the blue star is moving down     it is a blue box                  not_entailment
    the blue star is moving down     the blue star is moving down      entailment

Neither sentence alone decides the label: every scene comes with one true and one false
claim of each of the four kinds (colour, direction, colour and shape, everything), and every
claim is true of some scenes and false of others; a model has to compare the two sentences
(chance: 50%). The pairs are all distinct and the splits share none (8 colours x 6 shapes x
4 directions = 192 scenes, 1,536 pairs: by default 1,152 train, 192 dev, 192 test).

Files, as GLUE's ``RTE/``: ``train.tsv`` and ``dev.tsv`` (``index, sentence1, sentence2,
label``), ``test.tsv`` without the label column. Every word is a single word piece of the
uncased BERT vocabulary. Write them with::

    python -m mplug2.datasets.synthetic_text.classification --out-dir data/synthetic_rte
"""
import argparse
import itertools
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ['generate_pair_classification', 'COLORS', 'SHAPES', 'DIRECTIONS']

COLORS = ('red', 'green', 'blue', 'yellow', 'black', 'white', 'orange', 'purple')
SHAPES = ('circle', 'square', 'triangle', 'ball', 'star', 'box')
DIRECTIONS = ('left', 'right', 'up', 'down')
LABELS = ('entailment', 'not_entailment')

Scene = Tuple[str, str, str]  # colour, shape, direction


def _claims(scene: Scene, colors, shapes, directions, rng: random.Random) -> List[Tuple[str, int]]:
    """One true and one false claim of each kind about ``scene``: ``(sentence, label)``."""
    color, shape, direction = scene

    def other(values, value):
        return rng.choice([v for v in values if v != value])

    def other_pair(first_values, second_values, first, second):
        return rng.choice([(a, b) for a in first_values for b in second_values
                           if (a, b) != (first, second)])

    wrong_scene = rng.choice([s for s in itertools.product(colors, shapes, directions) if s != scene])
    wrong_color, wrong_shape = other_pair(colors, shapes, color, shape)
    return [
        (f'the {shape} is {color}', 0),
        (f'the {shape} is {other(colors, color)}', 1),
        (f'the {shape} is moving {direction}', 0),
        (f'the {shape} is moving {other(directions, direction)}', 1),
        (f'it is a {color} {shape}', 0),
        (f'it is a {wrong_color} {wrong_shape}', 1),
        (f'the {color} {shape} is moving {direction}', 0),
        ('the {} {} is moving {}'.format(*wrong_scene), 1),
    ]


def _write(path: str, rows: Sequence[Tuple[str, str, int]], labelled: bool) -> None:
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write('index\tsentence1\tsentence2' + ('\tlabel\n' if labelled else '\n'))
        for index, (first, second, label) in enumerate(rows):
            f.write(f'{index}\t{first}\t{second}' + (f'\t{LABELS[label]}\n' if labelled else '\n'))


def generate_pair_classification(out_dir: str,
                                 num_dev: int = 192,
                                 num_test: int = 192,
                                 num_train: Optional[int] = None,
                                 seed: int = 0,
                                 colors: Sequence[str] = COLORS,
                                 shapes: Sequence[str] = SHAPES,
                                 directions: Sequence[str] = DIRECTIONS) -> Dict[str, int]:
    """Write ``train.tsv``, ``dev.tsv`` and ``test.tsv`` (RTE format) to ``out_dir``.

    Args:
        out_dir: the output folder (created).
        num_dev, num_test: pairs of the dev and test splits.
        num_train: pairs of the training split; None: all the others.
        seed: the random seed (the files are a function of the arguments).
        colors, shapes, directions: the words of the scenes (at least two of each).

    Returns:
        The number of rows per split, and ``entailment`` / ``not_entailment`` counts of the
        training split.
    """
    if min(len(colors), len(shapes), len(directions)) < 2:
        raise ValueError('at least two colours, shapes and directions are needed')
    rng = random.Random(seed)
    pairs = []
    for scene in itertools.product(colors, shapes, directions):
        first = 'the {} {} is moving {}'.format(*scene)
        pairs += [(first, claim, label)
                  for claim, label in _claims(scene, colors, shapes, directions, rng)]
    rng.shuffle(pairs)
    if num_dev + num_test >= len(pairs):
        raise ValueError(f'only {len(pairs)} distinct pairs: num_dev + num_test = '
                         f'{num_dev + num_test} leaves none for training')
    dev, test = pairs[:num_dev], pairs[num_dev:num_dev + num_test]
    train = pairs[num_dev + num_test:]
    if num_train is not None:
        if num_train > len(train):
            raise ValueError(f'num_train={num_train}: only {len(train)} pairs are left for training')
        train = train[:num_train]
    os.makedirs(out_dir, exist_ok=True)
    _write(osp.join(out_dir, 'train.tsv'), train, labelled=True)
    _write(osp.join(out_dir, 'dev.tsv'), dev, labelled=True)
    _write(osp.join(out_dir, 'test.tsv'), test, labelled=False)
    return dict(train=len(train), dev=len(dev), test=len(test),
                entailment=sum(1 for *_, label in train if label == 0),
                not_entailment=sum(1 for *_, label in train if label == 1))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', default='data/synthetic_rte')
    parser.add_argument('--num-dev', type=int, default=192)
    parser.add_argument('--num-test', type=int, default=192)
    parser.add_argument('--num-train', type=int, default=None)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    counts = generate_pair_classification(args.out_dir, args.num_dev, args.num_test,
                                          args.num_train, args.seed)
    print(f'wrote {args.out_dir}/train.tsv, dev.tsv, test.tsv: {counts}')


if __name__ == '__main__':
    main()
