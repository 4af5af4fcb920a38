#!/usr/bin/env bash
# The main job: generate the moving-shapes videos, train the tiny mPLUG-2 video QA model on CPU, test it,
# and print the accuracy per question type (colour, shape, direction).
#   bash demo/run_moving_shapes.sh        (after bash tools/install.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=data/moving_shapes
WORK=work_dirs/demo_moving_shapes_videoqa
CONFIG=configs/demo/mplug2-tiny_moving-shapes_videoqa.py

"$PY" tools/dataset_converters/generate_moving_shapes.py --out-dir "$DATA" --num-train 600 --num-test 120 \
  --frames 4 --size 32 --seed 0
"$PY" tools/misc/copy_bert_vocab.py "$DATA/vocab.txt"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK"
"$PY" tools/test.py "$CONFIG" "$(cat "$WORK/last_checkpoint")" --work-dir "$WORK/test" --out "$WORK/test/predictions.pkl"
"$PY" - "$WORK/test/predictions.pkl" <<'PYEOF'
import pickle, sys
from collections import defaultdict
with open(sys.argv[1], 'rb') as f:
    predictions = pickle.load(f)
right, total = defaultdict(int), defaultdict(int)
for sample in predictions:
    kind = sample.get('question_type', 'all')
    answer = sample['gt_answer'] if isinstance(sample['gt_answer'], str) else sample['gt_answer'][0]
    total[kind] += 1
    right[kind] += sample['pred_answer'] == answer
print('\nmoving-shapes video QA, test accuracy (chance: colour 25%, shape 33%, direction 25%)')
for kind in sorted(total):
    print(f'  {kind:<10} {100 * right[kind] / total[kind]:6.1f}%  ({right[kind]}/{total[kind]})')
print(f'  {"overall":<10} {100 * sum(right.values()) / sum(total.values()):6.1f}%')
PYEOF
