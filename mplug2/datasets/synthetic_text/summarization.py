"""Synthetic headline generation: the summarization demo's data, in the Gigaword layout.

Every pair is one news-like sentence and its headline::

    on monday , officials in oslo said that boeing had closed four plants in lima ,
    according to a statement from sony .
    ->  boeing closes plants in lima

The headline needs **selection**, not copying: the company that acted (not the one quoted),
the city where it acted (not where it was reported), the object, and the verb turned from the
past into the present tense (``closed`` -> ``closes``); the number, the day and the reporting
clause are dropped. Four sentence templates put the fact at different places, always after a
reporting or context clause, so the first words of the source (the copy-the-input baseline)
share almost nothing with the headline. As in Gigaword, rare words are ``UNK``: with
probability ``unk_rate`` a company is written ``UNK`` in the source and the headline.

Every word is a single word piece of the uncased BERT vocabulary (the demo trains with it).

Files written (line-aligned plain text, the Rush et al. / UniLM Gigaword layout that
``SummarizationDataset`` reads)::

    OUT/train.src.txt  train.tgt.txt  dev.src.txt  dev.tgt.txt  test.src.txt  test.tgt.txt

Command line::

    python -m mplug2.datasets.synthetic_text.summarization --out-dir data/synthetic_summarization
"""
import argparse
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Tuple

__all__ = ['generate_synthetic_summarization', 'synthetic_summary_pair', 'SYNTHETIC_SUMMARY_WORDS']

COMPANIES = ('toyota', 'siemens', 'nokia', 'boeing', 'airbus', 'sony', 'intel', 'honda', 'shell',
             'ford', 'fiat', 'volvo', 'philips', 'samsung', 'nissan')
CITIES = ('paris', 'london', 'tokyo', 'berlin', 'madrid', 'rome', 'cairo', 'delhi', 'lima', 'oslo',
          'seoul', 'dublin', 'vienna', 'prague', 'moscow', 'sydney')
# (past tense as in the source, present tense as in the headline)
ACTIONS = (('opened', 'opens'), ('closed', 'closes'), ('sold', 'sells'), ('bought', 'buys'),
           ('built', 'builds'), ('expanded', 'expands'), ('hired', 'hires'), ('cut', 'cuts'))
OBJECTS = ('factories', 'offices', 'stores', 'plants', 'branches', 'shops', 'mines', 'hotels',
           'warehouses')
DAYS = ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')
NUMBERS = ('two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten')
UNK = 'UNK'

#: Source templates: the fact ({org} {past} {num} {obj} in {city}) after a context clause, with a
#: second company ({org2}) and a second city ({city2}) as distractors.
TEMPLATES = (
    'on {day} , officials in {city2} said that {org} had {past} {num} {obj} in {city} , '
    'according to a statement from {org2} .',
    'speaking to reporters in {city2} on {day} , a spokesman for {org2} said rival {org} '
    '{past} {num} {obj} in {city} last year .',
    'after months of talks with unions in {city2} , {org} {past} {num} {obj} in {city} on '
    '{day} , the company said .',
    'analysts in {city2} said on {day} that {org2} shares fell after {org} {past} {num} {obj} '
    'in {city} .',
)
HEADLINE = '{org} {present} {obj} in {city}'

#: Every word the generator writes (the template words, the slot fillers and ``UNK``).
SYNTHETIC_SUMMARY_WORDS = tuple(sorted(
    {word for template in TEMPLATES for word in template.split() if not word.startswith('{')}
    | set(COMPANIES) | set(CITIES) | {w for pair in ACTIONS for w in pair} | set(OBJECTS)
    | set(DAYS) | set(NUMBERS) | {UNK}))


def synthetic_summary_pair(rng: random.Random, unk_rate: float = 0.05) -> Tuple[str, str]:
    """One ``(source, headline)`` pair drawn with ``rng``."""
    org, org2 = rng.sample(COMPANIES, 2)
    if rng.random() < unk_rate:
        org = UNK
    city, city2 = rng.sample(CITIES, 2)
    past, present = rng.choice(ACTIONS)
    slots: Dict[str, str] = dict(org=org, org2=org2, city=city, city2=city2, past=past,
                                 present=present, obj=rng.choice(OBJECTS), day=rng.choice(DAYS),
                                 num=rng.choice(NUMBERS))
    return rng.choice(TEMPLATES).format(**slots), HEADLINE.format(**slots)


def generate_synthetic_summarization(out_dir: str,
                                     num_train: int = 3000,
                                     num_dev: int = 100,
                                     num_test: int = 200,
                                     seed: int = 0,
                                     unk_rate: float = 0.05) -> Dict[str, Tuple[str, str]]:
    """Write ``{split}.src.txt`` / ``{split}.tgt.txt`` for train, dev and test to ``out_dir``.

    The splits are disjoint: a pair drawn again (same source) is redrawn, so no test source is
    a training source. Returns ``{split: (source file, target file)}``.
    """
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    seen = set()
    files = {}
    for split, count in (('train', num_train), ('dev', num_dev), ('test', num_test)):
        pairs: List[Tuple[str, str]] = []
        while len(pairs) < count:
            source, headline = synthetic_summary_pair(rng, unk_rate)
            if source in seen:
                continue
            seen.add(source)
            pairs.append((source, headline))
        src, tgt = osp.join(out_dir, f'{split}.src.txt'), osp.join(out_dir, f'{split}.tgt.txt')
        for path, column in ((src, 0), (tgt, 1)):
            with open(path, 'w', encoding='utf-8') as f:
                f.writelines(pair[column] + '\n' for pair in pairs)
        files[split] = (src, tgt)
    return files


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', default='data/synthetic_summarization')
    parser.add_argument('--num-train', type=int, default=3000)
    parser.add_argument('--num-dev', type=int, default=100)
    parser.add_argument('--num-test', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--unk-rate', type=float, default=0.05)
    args = parser.parse_args(argv)
    files = generate_synthetic_summarization(args.out_dir, args.num_train, args.num_dev,
                                             args.num_test, args.seed, args.unk_rate)
    for split, (src, tgt) in files.items():
        print(f'{split}: {src} {tgt}')


if __name__ == '__main__':
    main()
