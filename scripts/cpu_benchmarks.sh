#!/usr/bin/env bash
# The CPU figures in results/benchmarks/: run on a quiet machine (nothing else running), from
# the repository root, with the project's venv active:
#   bash scripts/cpu_benchmarks.sh [OUT_DIR]          (default results/benchmarks/cpu-<N>core)
# 1. trainer vs pure step: `python train.py` end-to-end img/s on the demo preset (depthwise)
#    against the pure training step of the same model and batch, both data pipelines;
# 2. the per-image loader path across compute threads x loader workers (which default to pick
#    when both share a few cores);
# 3. the ladder's two ends vs torchvision's resnet50 / timm's convnext_tiny, taking turns, one
#    compute thread, process CPU time, median of 5 rounds (the ratios; fp32, batch 8, 128 px).
# Every file names the CPU model and thread count; ratios are measured within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
CORES=$($PY -c "import os; print(len(os.sched_getaffinity(0)))")
OUT_DIR="${1:-results/benchmarks/cpu-${CORES}core}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
{ $PY -c "import platform, torch; from ladder.utils.runtime import device_name; print(device_name(torch.device('cpu')), '| torch', torch.__version__, '| python', platform.python_version())"
  echo "cores available: $CORES; date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"; } | tee "$OUT_DIR/machine.txt"

echo "== 1. trainer vs pure step (demo, depthwise, defaults)"
$PY scripts/benchmark.py --trainer demo --pipelines device,loader --epochs 2 \
  --json "$OUT_DIR/trainer_demo.json" | tee "$OUT_DIR/trainer_demo.txt"

echo "== 2. loader path: compute threads x loader workers"
: > "$OUT_DIR/loader_threads.txt"
for threads in 1 "$CORES"; do
  for workers in 0 1 2; do
    OMP_NUM_THREADS=$threads $PY scripts/benchmark.py --trainer demo --pipelines loader --epochs 2 \
      --override trainer.cpu_threads="$threads" --override data.num_workers="$workers" \
      --json "$OUT_DIR/loader_t${threads}_w${workers}.json" \
      | tail -1 | sed "s/^/threads=$threads workers=$workers  /" | tee -a "$OUT_DIR/loader_threads.txt"
  done
done

echo "== 3. the ends vs their references (1 thread, CPU time)"
OMP_NUM_THREADS=1 $PY scripts/benchmark.py --rungs resnet50,micro --batch 8 --size 128 \
  --steps 3 --warmup 2 --repeats 5 --clock cpu --json "$OUT_DIR/ends.json" | tee "$OUT_DIR/ends.txt"
