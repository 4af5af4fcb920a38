#!/usr/bin/env bash
# One-command set-up of mplug2 and its OpenMMLab stack in a virtual environment.
#
#   bash tools/install.sh            # creates/updates .venv (override with MPLUG2_VENV=/path)
#
# Idempotent: a second run finds its fingerprint stamp (requirements, setup.py, this script, Python)
# and returns in seconds; a changed requirement file re-runs the install, which reuses every wheel
# already built or downloaded (the mmcv build is cached in $MPLUG2_CACHE, default ~/.cache/mplug2).
#
# What it does, in order:
#   1. build tools (setuptools<81, wheel, ninja);
#   2. torch 2.13.0 + torchvision 0.28.0 as a matched pair from the package registry only
#      (a local find-links folder holding a CPU torch build would otherwise break torchvision);
#   3. mmcv 2.1.0 from source with its ops. CPU ops by default; CUDA ops when torch sees a GPU or
#      FORCE_CUDA=1 is set (needs a CUDA toolkit with nvcc; set TORCH_CUDA_ARCH_LIST, e.g. "8.0;9.0",
#      to choose the architectures). CPU and CUDA builds are cached apart;
#   4. the pinned runtime and test requirements and mplug2 itself (editable);
#   5. tools/misc/check_env.py, which fails with instructions if anything does not work.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MPLUG2_VENV:-$ROOT/.venv}
CACHE=${MPLUG2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mplug2}
PYTHON=${PYTHON:-python3}
cd "$ROOT"

log() { printf '[install] %s\n' "$*"; }

fingerprint() {
  cat requirements/*.txt setup.py tools/install.sh | sha256sum | cut -d' ' -f1
}

STAMP=$VENV/.mplug2-install-stamp
WANT="$(fingerprint) $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
   && "$VENV/bin/python" -c 'import mplug2, torchvision.ops' 2>/dev/null; then
  log "environment $VENV is up to date"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY=$VENV/bin/python
pip_install() { "$PY" -m pip install --disable-pip-version-check --no-input "$@"; }

log "1/5 build tools"
pip_install -q --upgrade "pip>=24" -r requirements/build.txt

log "2/5 torch + torchvision (matched pair from the registry)"
torch_pair_ok() {
  "$PY" - <<'EOF' 2>/dev/null
import torch, torchvision
from torchvision.ops import nms
nms(torch.tensor([[0., 0., 1., 1.]]), torch.tensor([1.]), 0.5)
EOF
}
if ! torch_pair_ok; then
  # Keep pip's certificate setting, drop its config files (they may add find-links/extra indexes).
  cert=${PIP_CERT:-$("$PY" -m pip config get global.cert 2>/dev/null || true)}
  reinstall=()
  "$PY" -c 'import torch' 2>/dev/null && reinstall=(--force-reinstall)
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null ${cert:+PIP_CERT=$cert} \
    "$PY" -m pip install --disable-pip-version-check --no-input "${reinstall[@]}" \
    -r requirements/torch.txt -r requirements/build.txt
  torch_pair_ok || { log "ERROR: torchvision.ops.nms does not work with the installed torch"; exit 1; }
fi

log "3/5 mmcv 2.1.0 with ops"
if ! "$PY" -c 'import mmcv.ops' 2>/dev/null; then
  variant=$("$PY" -c 'import os, torch
cuda = torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1"
version = torch.__version__.split("+")[0]
print("torch" + version + "-" + ("cu" + str(torch.version.cuda) if cuda else "cpu"))')
  wheel_dir=$CACHE/wheels/mmcv-2.1.0-$variant
  if ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    log "building mmcv ($variant) from source: about 10-20 minutes on 2 cores, once"
    mkdir -p "$wheel_dir"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel --disable-pip-version-check \
      --no-deps --no-build-isolation --no-cache-dir -w "$wheel_dir" -r requirements/mmcv.txt
  fi
  pip_install -c requirements/torch.txt "$wheel_dir"/mmcv-2.1.0-*.whl
fi

log "4/5 runtime and test requirements, mplug2 (editable)"
pip_install -c requirements/torch.txt -c requirements/mmcv.txt -c requirements/build.txt \
  -r requirements/runtime.txt -r requirements/tests.txt
pip_install --no-deps --no-build-isolation -e .

log "5/5 checking the environment"
"$PY" tools/misc/check_env.py
echo "$WANT" > "$STAMP"
log "done: activate with 'source $VENV/bin/activate'"
