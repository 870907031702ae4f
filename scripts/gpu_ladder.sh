#!/usr/bin/env bash
# The whole ladder on one GPU in one call: all 17 rungs x 3 seeds of the imagenette_gpu budget
# (64 px Imagenette), several jobs at once on the card, data resident on the GPU (the device
# pipeline), bf16; then the roadmap report. Everything is packed into $OUT/gpu-ladder.tar.gz
# (the device tool brings back only a few files) plus the report's roadmap.md and the log.
#
# Prepare here (once per session), then run on the lent machine:
#   bash scripts/fetch_gpu_wheels.sh                                 # Hydra, kornia wheels -> .whl/
#   mkdir -p data_local && cp -r ../shared/data/imagenette-64 data_local/   # 33 MB of JPEGs
#   device: run(command="bash scripts/gpu_ladder.sh", carry=[".whl", "data_local/imagenette-64"], timeout_s=600)
# Then: tar xzf <files_at>/gpu-ladder.tar.gz -C results/imagenette-gpu  (and name the card).
# Check it here first at a tiny setting:
#   PYTHON=.venv/bin/python LADDER_GPU_LADDER_CPU=1 bash scripts/gpu_ladder.sh
# Knobs (environment): JOBS (concurrent jobs, default 8), SEEDS (default 0,1,2), RUNGS
# (default ladder), DATA (default data_local/imagenette-64).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT_DIR="${OUT:-results/gpu/ladder}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
PY="${PYTHON:-python3}"
if [ -z "${LADDER_GPU_LADDER_CPU:-}" ] && [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  # The GPU image has torch, torchvision, timm; Hydra and kornia travel as wheels (cp312).
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
fi
DATA="${DATA:-data_local/imagenette-64}"
RUNS="$OUT_DIR/runs"
export LADDER_CACHE="${LADDER_CACHE:-/tmp/ladder-cache}"
$PY -c "import torch, timm, hydra, kornia; print('torch', torch.__version__, 'timm', timm.__version__, 'kornia', kornia.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" | tee "$OUT_DIR/versions.txt"
if [ -n "${LADDER_GPU_LADDER_CPU:-}" ]; then
  # Tiny CPU check of the same path: 2 rungs x 1 seed, one short epoch.
  JOBS=${JOBS:-2}; SEEDS=${SEEDS:-0}; RUNGS=${RUNGS:-resnet50,micro}
  EXTRA=(trainer.device=cpu trainer.epochs=1 trainer.by_recipe.torchvision.epochs=1
         trainer.max_steps_per_epoch=2 model.width_multiplier=0.0625)
else
  JOBS=${JOBS:-8}; SEEDS=${SEEDS:-0,1,2}; RUNGS=${RUNGS:-ladder}; EXTRA=()
fi
# Decode the JPEGs into the tensor cache once, before the jobs start (they would race).
$PY -c "
from omegaconf import OmegaConf; from ladder.compose import compose_config; from ladder.data import build_loaders
for r in ('micro', 'resnet50'):  # the two recipes' interpolations give both tensor files
    c = OmegaConf.to_object(compose_config(r, ['preset=imagenette_gpu', 'data.root=$DATA', 'logger=none']))
    build_loaders(c.data, c.recipe, 8, 1, 0)
"
set +e
$PY scripts/sweep.py --rungs "$RUNGS" --seeds "$SEEDS" --jobs "$JOBS" --threads 2 --out "$RUNS" -- \
  preset=imagenette_gpu data.root="$DATA" logger=none "${EXTRA[@]}" 2>&1 | tee "$OUT_DIR/sweep.log"
set -e
$PY scripts/roadmap.py "$RUNS" --out "$OUT_DIR/report" 2>&1 | tail -3
echo "wall time $(( $(date +%s) - T0 )) s (start-up included) on $(cat "$OUT_DIR/versions.txt")" | tee -a "$OUT_DIR/sweep.log"
cp "$OUT_DIR/report/roadmap.md" "$OUT_DIR/roadmap.md" 2>/dev/null || true
tar czf "$OUT_DIR/gpu-ladder.tar.gz" -C "$OUT_DIR" --exclude='checkpoints' --exclude='*.pt' \
  versions.txt sweep.log report runs
ls -la "$OUT_DIR"
