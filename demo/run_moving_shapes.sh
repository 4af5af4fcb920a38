#!/usr/bin/env bash
# The main job: generate the moving-shapes videos, train the tiny mPLUG-2 video QA model on CPU, test it,
# and print the accuracy per question type (colour, shape, direction).
#   bash demo/run_moving_shapes.sh        (after bash tools/install.sh)
#
# Reduced runs (tests, quick checks) through the environment; with none of these set, the commands are
# exactly the main job's:
#   MPLUG2_DEMO_DATA         another data folder (passed to the config as the data root and vocab file)
#   MPLUG2_DEMO_WORK_DIR     another work dir
#   MPLUG2_DEMO_NUM_TRAIN    training videos generated (600)
#   MPLUG2_DEMO_NUM_TEST     test videos generated (120)
#   MPLUG2_DEMO_CFG_OPTIONS  space-separated key=value config overrides for training and testing,
#                            e.g. "train_cfg.max_epochs=1 train_dataloader.batch_size=4"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${MPLUG2_DEMO_DATA:-data/moving_shapes}
WORK=${MPLUG2_DEMO_WORK_DIR:-work_dirs/demo_moving_shapes_videoqa}
CONFIG=configs/demo/mplug2-tiny_moving-shapes_videoqa.py
CFG_OPTIONS=()
if [[ -n "${MPLUG2_DEMO_DATA:-}" ]]; then
  for loader in train_dataloader val_dataloader test_dataloader; do
    CFG_OPTIONS+=("$loader.dataset.data_root=$DATA")
  done
  CFG_OPTIONS+=("model.tokenizer.vocab_file=$DATA/vocab.txt")
fi
read -r -a EXTRA_OPTIONS <<< "${MPLUG2_DEMO_CFG_OPTIONS:-}"
CFG_OPTIONS+=(${EXTRA_OPTIONS[@]+"${EXTRA_OPTIONS[@]}"})

"$PY" tools/dataset_converters/generate_moving_shapes.py --out-dir "$DATA" \
  --num-train "${MPLUG2_DEMO_NUM_TRAIN:-600}" --num-test "${MPLUG2_DEMO_NUM_TEST:-120}" \
  --frames 4 --size 32 --seed 0
"$PY" tools/misc/copy_bert_vocab.py "$DATA/vocab.txt"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK" ${CFG_OPTIONS[@]+--cfg-options "${CFG_OPTIONS[@]}"}
"$PY" tools/test.py "$CONFIG" "$(cat "$WORK/last_checkpoint")" --work-dir "$WORK/test" --out "$WORK/test/predictions.pkl" \
  ${CFG_OPTIONS[@]+--cfg-options "${CFG_OPTIONS[@]}"}
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
