#!/usr/bin/env bash
# The one prepared GPU check, for a session that is lent a GPU by the device tool:
#   here:   bash scripts/fetch_gpu_wheels.sh          (Hydra's wheels into .whl/, git-ignored)
#   device: run(command="bash scripts/gpu_check.sh", carry=[".whl", "data_local/imagenette-64"], timeout_s=540)
# It runs a short bf16 + channels_last + torch.compile training smoke of ConvNeXt-T, and the
# throughput benchmark of both ends against torchvision's resnet50 and timm's convnext_tiny in
# the same run, with and without compile; with the Imagenette copy carried, the trainer against
# the pure training step and 1 / 2 / 4 concurrent jobs on the card; it prints the short tables last. Outputs (with the
# card's name) go to $OUT (the device tool brings them back) or results/gpu/: copy them into
# results/ with the card named.
# Check it on the CPU first: PYTHON=.venv/bin/python LADDER_GPU_CHECK_CPU=1 bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-results/gpu}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
if [ -n "${LADDER_GPU_CHECK_CPU:-}" ] && [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"  # the CPU check: a dev venv that has everything (the wheels are for cp312)
elif [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  # The GPU image has torch, torchvision, timm, matplotlib; Hydra and kornia travel as wheels.
  PY="${PYTHON:-python3}"
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  python3 -m venv .venv-gpu && . .venv-gpu/bin/activate && pip install -q -e .
  PY=python
fi
$PY -c "import torch, timm, hydra, kornia; print('torch', torch.__version__, 'timm', timm.__version__, 'kornia', kornia.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$OUT_DIR/versions.txt"
if [ -n "${LADDER_GPU_CHECK_CPU:-}" ]; then
  DEV=(--device cpu); BENCH=(--batch 4 --size 64 --steps 2 --warmup 1); SMOKE=(trainer.device=cpu)
else
  DEV=(); BENCH=(--batch 128 --size 224 --steps 30 --warmup 10); SMOKE=()
fi
# A short real training run: bf16 autocast (fp32 on CPU), channels_last, torch.compile.
$PY train.py +rung=micro data=synthetic data.image_size=64 data.num_classes=10 \
  data.synthetic_train_size=2048 data.synthetic_val_size=512 trainer.epochs=1 \
  trainer.batch_size=128 trainer.global_batch=256 trainer.compile=true logger=none \
  experiment=gpu_check hydra.run.dir="$OUT_DIR/smoke" "${SMOKE[@]}" 2>&1 | tail -4
$PY scripts/benchmark.py "${DEV[@]}" "${BENCH[@]}" --json "$OUT_DIR/bench.json" > "$OUT_DIR/bench.txt"
$PY scripts/benchmark.py "${DEV[@]}" "${BENCH[@]}" --compile --json "$OUT_DIR/bench_compile.json" > "$OUT_DIR/bench_compile.txt"
# The input pipeline: the trainer's img/s on the Imagenette GPU budget against the pure training
# step of the same model and batch (needs data_local/imagenette-64 carried, as gpu_ladder.sh).
if [ -d data_local/imagenette-64 ]; then
  if [ -n "${LADDER_GPU_CHECK_CPU:-}" ]; then PIPE=(--override model.width_multiplier=0.0625 --override trainer.max_steps_per_epoch=3 --epochs 1); else PIPE=(--epochs 2); fi
  $PY scripts/benchmark.py "${DEV[@]}" --trainer imagenette_gpu --rungs resnet50,micro --pipelines device \
    --override data.root=data_local/imagenette-64 "${PIPE[@]}" \
    --json "$OUT_DIR/bench_pipeline.json" > "$OUT_DIR/bench_pipeline.txt" || true
  cat "$OUT_DIR/bench_pipeline.txt"
fi
# Several proxy jobs sharing one card (what gpu_ladder.sh does): the sum of the jobs' training
# img/s while 1, 2 and 4 train at once (the same rung and budget, seeds 1..n).
if [ -d data_local/imagenette-64 ]; then
  if [ -n "${LADDER_GPU_CHECK_CPU:-}" ]; then
    CONC=(1 2); JOB=(model.width_multiplier=0.0625 trainer.max_steps_per_epoch=3 trainer.epochs=1)
  else
    CONC=(1 2 4); JOB=(trainer.epochs=2)
  fi
  : > "$OUT_DIR/concurrency.txt"; mkdir -p "$OUT_DIR/concurrency"
  for n in "${CONC[@]}"; do
    for i in $(seq 1 "$n"); do
      $PY train.py +rung=depthwise preset=imagenette_gpu data.root=data_local/imagenette-64 \
        seed="$i" logger=none trainer.progress=false "${JOB[@]}" "${SMOKE[@]}" \
        hydra.run.dir="$OUT_DIR/concurrency/n$n/job$i" > "$OUT_DIR/concurrency/n$n-job$i.log" 2>&1 &
    done
    wait
    $PY - "$OUT_DIR/concurrency/n$n" "$n" <<'PYEOF' | tee -a "$OUT_DIR/concurrency.txt"
import json, pathlib, sys
runs = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("job*/result.json"))]
rates = [r["train_img_per_s"] for r in runs]
print(f"{sys.argv[2]} job(s) at once on {runs[0]['device'] if runs else '?'}: {len(runs)} completed, "
      f"aggregate {sum(rates):.0f} img/s (per job: {', '.join(f'{x:.0f}' for x in rates)})")
PYEOF
  done
fi
cat "$OUT_DIR/bench.txt" "$OUT_DIR/bench_compile.txt"
