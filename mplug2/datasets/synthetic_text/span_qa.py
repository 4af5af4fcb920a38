"""Synthetic extractive QA: the span-QA demo's data, in the official SQuAD v2.0 json format.

Every paragraph describes a few objects, one sentence each, in random order::

    Mike keeps the black book in the shed. Oscar keeps the black spoon in the garage. Emma
    keeps the yellow watch in the basement. Nina keeps the purple knife in the bedroom.

    What color is the watch?   -> "yellow"
    Where is the spoon?        -> "the garage"
    Who keeps the knife?       -> "Nina"         (casing as written in the context)
    Who keeps the kite?        -> no answer      (no kite in the paragraph; SQuAD v2.0)

A question names an object, and its answer is the colour, place or owner in that object's
sentence; the other objects of the paragraph give answers of the same type in the same
sentence shape, so knowing the answer type is not enough (the typed random-guess baseline of
:func:`span_qa_baselines`). A fraction ``unanswerable`` of the questions asks about an object
absent from the paragraph. Paragraphs have ``min_objects``-``max_objects`` objects (9 word
pieces each); with 5 they no longer fit in one of the demo's 48-token windows, so their
contexts are split with the document stride. Every word is one word piece of the uncased BERT
vocabulary.

Files written::

    OUT/train.json  OUT/test.json      (official SQuAD v2.0 layout, is_impossible included)

Command line::

    python -m mplug2.datasets.synthetic_text.span_qa --out-dir data/synthetic_squad
"""
import argparse
import json
import os
import os.path as osp
import random
from typing import Dict, List, Optional

__all__ = ['generate_synthetic_span_qa', 'synthetic_paragraph', 'span_qa_baselines']

OBJECTS = ('box', 'cup', 'book', 'lamp', 'chair', 'ball', 'hat', 'key', 'phone', 'bag', 'pen',
           'clock', 'bottle', 'plate', 'shoe', 'coat', 'ring', 'watch', 'map', 'knife', 'spoon',
           'bowl', 'candle', 'mirror', 'basket', 'drum', 'kite', 'brush', 'radio', 'camera')
COLORS = ('red', 'blue', 'green', 'yellow', 'black', 'white', 'brown', 'pink', 'orange', 'purple',
          'gray', 'silver')
PLACES = ('kitchen', 'garden', 'garage', 'office', 'bedroom', 'library', 'hall', 'attic',
          'basement', 'closet', 'yard', 'car', 'shed', 'cellar', 'porch', 'barn')
OWNERS = ('Anna', 'Ben', 'Carla', 'David', 'Emma', 'Frank', 'Grace', 'Henry', 'Iris', 'Jack',
          'Laura', 'Mike', 'Nina', 'Oscar', 'Paul', 'Rosa')

#: question type -> (question template, the fact that answers it)
QUESTIONS = {
    'color': 'What color is the {obj}?',
    'place': 'Where is the {obj}?',
    'owner': 'Who keeps the {obj}?',
}


def synthetic_paragraph(rng: random.Random, num_objects: int, questions_per_paragraph: int,
                        unanswerable: float, qid_prefix: str) -> dict:
    """One paragraph (``context`` and ``qas`` in the official layout)."""
    chosen = rng.sample(OBJECTS, num_objects)
    facts = {obj: dict(color=rng.choice(COLORS), place=rng.choice(PLACES),
                       owner=rng.choice(OWNERS)) for obj in chosen}
    # one sentence per object: "<Owner> keeps the <color> <object> in the <place>."
    sentences = list(facts.items())
    rng.shuffle(sentences)
    context, spans = '', {}
    for obj, fact in sentences:
        begin = len(context) + (1 if context else 0)
        sentence = f'{fact["owner"]} keeps the {fact["color"]} {obj} in the {fact["place"]}.'
        context = f'{context} {sentence}' if context else sentence
        place = f'the {fact["place"]}'
        for kind, text, offset in (
                ('owner', fact['owner'], 0),
                ('color', fact['color'], len(f'{fact["owner"]} keeps the ')),
                ('place', place, len(sentence) - 1 - len(place))):
            assert sentence[offset:offset + len(text)] == text
            spans[(obj, kind)] = (text, begin + offset)
    absent = [obj for obj in OBJECTS if obj not in facts]
    qas = []
    for index in range(questions_per_paragraph):
        kind = rng.choice(sorted(QUESTIONS))
        if rng.random() < unanswerable:
            obj = rng.choice(absent)
            qas.append(dict(id=f'{qid_prefix}-q{index}', question=QUESTIONS[kind].format(obj=obj),
                            answers=[], is_impossible=True, question_type=kind))
            continue
        obj = rng.choice(chosen)
        text, start = spans[(obj, kind)]
        assert context[start:start + len(text)] == text
        qas.append(dict(id=f'{qid_prefix}-q{index}', question=QUESTIONS[kind].format(obj=obj),
                        answers=[dict(text=text, answer_start=start)], is_impossible=False,
                        question_type=kind))
    return dict(context=context, qas=qas)


def generate_synthetic_span_qa(out_dir: str, num_train: int = 300, num_test: int = 100,
                               questions_per_paragraph: int = 4, unanswerable: float = 0.25,
                               min_objects: int = 2, max_objects: int = 5,
                               seed: int = 0) -> Dict[str, str]:
    """Write ``train.json`` and ``test.json`` (``num_train`` / ``num_test`` paragraphs of
    ``questions_per_paragraph`` questions each) under ``out_dir``; returns their paths."""
    if not 1 <= min_objects <= max_objects <= len(OBJECTS) - 1:
        raise ValueError(f'need 1 <= min_objects <= max_objects < {len(OBJECTS)}')
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for split, count in (('train', num_train), ('test', num_test)):
        articles = []
        for index in range(count):
            paragraph = synthetic_paragraph(rng, rng.randint(min_objects, max_objects),
                                            questions_per_paragraph, unanswerable,
                                            f'{split}-{index}')
            articles.append(dict(title=f'{split} paragraph {index}', paragraphs=[paragraph]))
        path = osp.join(out_dir, f'{split}.json')
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(dict(version='synthetic-v2.0', data=articles), f, indent=1)
        paths[split] = path
    return paths


def span_qa_baselines(path: str) -> Dict[str, float]:
    """Trivial baselines on a generated file (exact match in percent; F1 is the same here
    except for ``typed_random`` on place answers, which it bounds from below):

    * ``no_answer``: always predict no answer (the share of unanswerable questions);
    * ``typed_random``: answer every question with a mention of the asked type drawn
      uniformly from the paragraph (every colour, place or owner its sentences name):
      the expected exact match of a model that knows the answer type but not which object
      the question is about.
    """
    with open(path, encoding='utf-8') as f:
        data = json.load(f)['data']
    total = no_answer = typed = 0.0
    for article in data:
        for paragraph in article['paragraphs']:
            context = paragraph['context']
            mentions = {kind: [] for kind in QUESTIONS}
            for sentence in context.split('. '):
                # "<owner> keeps the <color> <obj> in the <place>"
                words = sentence.rstrip('.').split()
                mentions['owner'].append(words[0])
                mentions['color'].append(words[3])
                mentions['place'].append(f'the {words[-1]}')
            for qa in paragraph['qas']:
                total += 1
                if qa['is_impossible']:
                    no_answer += 1
                    continue
                candidates = mentions[qa['question_type']]
                typed += candidates.count(qa['answers'][0]['text']) / len(candidates)
    return dict(no_answer=100 * no_answer / total, typed_random=100 * typed / total,
                questions=int(total))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', default='data/synthetic_squad')
    parser.add_argument('--num-train', type=int, default=300, help='training paragraphs')
    parser.add_argument('--num-test', type=int, default=100, help='test paragraphs')
    parser.add_argument('--questions-per-paragraph', type=int, default=4)
    parser.add_argument('--unanswerable', type=float, default=0.25)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    paths = generate_synthetic_span_qa(args.out_dir, args.num_train, args.num_test,
                                       args.questions_per_paragraph, args.unanswerable,
                                       seed=args.seed)
    for split, path in paths.items():
        baselines = span_qa_baselines(path)
        print(f'{path}: {baselines["questions"]} questions; baselines (EM %): no answer '
              f'{baselines["no_answer"]:.1f}, typed random guess {baselines["typed_random"]:.1f}')


if __name__ == '__main__':
    main()
