#!/usr/bin/env bash
# One prepared GPU check for a session that is lent a GPU (the device tool): installs, runs the
# test suite on the GPU box, a short bf16 + compile training smoke, and the throughput
# benchmark of both ends against their reference implementations; prints a short table last.
# Check it on the CPU first:  LADDER_GPU_CHECK_CPU=1 bash scripts/gpu_check.sh
# Results (with the card's name) go to $OUT (device tool) or results/gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-results/gpu}"
mkdir -p "$OUT_DIR"
python3 -m venv .venv-gpu && . .venv-gpu/bin/activate
pip install -q -e ".[dev]"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
if [ -n "${LADDER_GPU_CHECK_CPU:-}" ]; then
  DEV=(--device cpu); BENCH=(--batch 4 --size 64 --steps 2 --warmup 1); SMOKE=(trainer.device=cpu)
else
  DEV=(); BENCH=(--batch 128 --size 224 --steps 30 --warmup 10); SMOKE=()
fi
# a short real training run: bf16 autocast (fp32 on CPU), channels_last, torch.compile
python train.py +rung=micro data=synthetic data.image_size=64 data.num_classes=10 \
  data.synthetic_train_size=2048 data.synthetic_val_size=512 trainer.epochs=1 \
  trainer.batch_size=128 trainer.global_batch=256 trainer.compile=true logger=none \
  experiment=gpu_check hydra.run.dir="$OUT_DIR/smoke" "${SMOKE[@]}" 2>&1 | tail -4
python scripts/benchmark.py "${DEV[@]}" "${BENCH[@]}" --json "$OUT_DIR/bench.json" | tee "$OUT_DIR/bench.txt"
python scripts/benchmark.py "${DEV[@]}" "${BENCH[@]}" --compile --json "$OUT_DIR/bench_compile.json" | tee "$OUT_DIR/bench_compile.txt"
