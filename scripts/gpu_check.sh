#!/usr/bin/env bash
# The GPU check: 3.5 minutes on one GPU that say whether the GPU path works and how fast it is.
#
#   bash scripts/gpu_check.sh                                # on a machine with one GPU
#   PYTHON=.venv/bin/python LADDER_GPU_CHECK_CPU=1 bash scripts/gpu_check.sh   # the CPU check
#
# Steps, in this order, each under its own time limit (a step that fails or times out does not
# stop the later ones; scripts/gpu_common.sh):
#   env                 software versions and the card (versions.json)
#   device_randaugment  train.py on the in-memory device data path (data.pipeline=device) with
#                       the modern recipe's RandAugment on, ConvNeXt-T end (+rung=micro) of the
#                       imagenette_gpu budget, bf16 + channels_last: one epoch cut to 20 steps
#                       and its evaluation, then a SIGTERM 2 steps into the second (the trainer's
#                       LADDER_FAULT_SIGTERM_AT_STEP hook), which writes a checkpoint (exit 75)
#   resume              the same command again, into the same run folder: it must print
#                       "resumed from ..." and finish, with result.json saying device pipeline
#                       and the RandAugment policy
#   concurrency_n1..n8  ROUNDS (1 2 4 8): n train.py jobs (depthwise, imagenette_gpu, seeds
#                       1..n) at once on the card; each trains ROUND_S seconds from its own start
#                       of training and is stopped by SIGTERM; the images each trained come from
#                       its checkpoint. A round's measure: total images of all jobs / ROUND_S
#                       (img_per_s; evaluations and warm-up inside the window count as time),
#                       and per job; also images / training time only (train_img_per_s), the
#                       start-up of a job and how far apart the jobs started
#   store_vs_folder     with a GPU only: python -m ladder.data.throughput prepares the data into
#                       a pixel store (images/s and per CPU-second over the machine's cores),
#                       then times training batches (no model) from the store on the GPU, from
#                       the store in pinned host memory with async copies, from the folder's
#                       tensor cache and from the per-image loader (img/s of each)
#   bench_eager         scripts/benchmark.py: both ends of the ladder against torchvision's
#                       resnet50 and timm's convnext_tiny, bf16, batch 128, 224 px, eager
#   bench_compile       the same with torch.compile, ConvNeXt-T end only (COMPILE_ARGS)
#
# Time: at most TOTAL_S (205 s) on one H100 / H200. Each step's limit is the smaller of its own
# and what is left before the deadline after the later steps' expected seconds; compile, the
# last, gets whatever is left. Expected seconds (estimates: no GPU figure exists in results/
# yet; replace them with this script's own summary once it has run): env 8, device_randaugment
# 20 (train.py start-up ~5 s, decoding Imagenette into the tensor cache once ~10 s), resume 10,
# each round ROUND_S + 10 (start-up ~5 s, stop and checkpoint read ~3 s), store_vs_folder 25
# (start-up ~5 s, prepare ~5 s, four paths ~3 s each), bench_eager 18:
#   8 + 20 + 10 + 4 x (10 + 10) + 25 + 18 = 161 s, so bench_compile gets 205 - 161 - 10
#   (KILL_GRACE) = ~34 s, which a cold compile may need more than: then it is recorded as timed
#   out; LADDER_GPU_STEPS=env,bench_compile TOTAL_S=300 bash scripts/gpu_check.sh runs it
#   alone.
# Rounds of 60 s (ROUND_S=60), as long as a round ought to be for a steady figure, need
# 4 x 70 = 280 s for the rounds alone: TOTAL_S=420 ROUND_S=60 bash scripts/gpu_check.sh.
# Rounds of 10 s still hold several epochs (Imagenette at 64 px, ~9.3k images an epoch), but
# the first steps' cuDNN autotuning (~1 s) is inside the window: a figure a little low.
#
# Output, in $OUT (default results/gpu), two files and nothing else, also when the script is
# stopped part-way:
#   gpu_check_summary.json  one entry per step: status, exit code, seconds, limit, log, numbers
#                           (rewritten before and after every step)
#   gpu-check.tar.gz        the summary and gpu-check/: logs/<step>.log,
#                           logs/rounds/n<N>-job<i>.log, versions.json, device_randaugment.json,
#                           resume.json, rounds/n<N>.json, store_vs_folder.json, bench_eager.json,
#                           bench_compile.json (rebuilt after every step)
# Working files stay in $LADDER_WORK (default /tmp/ladder-gpu): run folders and checkpoints in
# gpu-check/, the archive's folder in archive/gpu-check/ (read it there while the script runs).
#
# Exit status: 0 when every step passed, 1 when one did not, 143 when stopped by a signal.
#
# Data: DATA, a 64 px Imagenette copy in ImageNet layout (default data_local/imagenette-64).
# Without it data=imagenette downloads and shrinks Imagenette into $LADDER_CACHE on first use,
# which alone can outlast a step's limit: do it beforehand, where there is network, with
#   LADDER_CACHE=/tmp/ladder-gpu/cache python scripts/gpu_steps.py cache -- preset=imagenette_gpu logger=none
# (the CPU check uses the generated demo dataset instead).
# Environment: DATA, TOTAL_S, ROUND_S, ROUNDS, COMPILE_ARGS, and those
# of scripts/gpu_common.sh (OUT, LADDER_WORK, LADDER_CACHE, PYTHON, LADDER_GPU_STEPS,
# LADDER_GPU_TIMEOUTS, KILL_GRACE). LADDER_GPU_CHECK_CPU=1: every step at a tiny setting on the
# CPU (1/16 width, batch 16, 3 steps an epoch, rounds of 1 and 2 jobs of 3 s, the benchmark at
# batch 2 and 32 px), about 2-3 minutes on 2 cores; torch.compile there uses dynamo's eager
# backend (inductor's C++ build alone takes minutes on a small CPU).
set -uo pipefail  # no -e: a failing step must not stop the others
cd "$(dirname "$0")/.."
. scripts/gpu_common.sh

CPU="${LADDER_GPU_CHECK_CPU:-}"
if [ -n "$CPU" ]; then
  TOTAL_S=${TOTAL_S:-200}; ROUND_S=${ROUND_S:-3}; ROUNDS=${ROUNDS:-"1 2"}
  DEV=(trainer.device=cpu model.width_multiplier=0.0625 trainer.batch_size=16 trainer.global_batch=16)
  STEPS_PER_EPOCH=3
  BENCH=(--device cpu --batch 2 --size 32 --steps 1 --warmup 1 --repeats 1 --rungs separate_downsampling)
  COMPILE=(--device cpu --batch 2 --size 32 --steps 1 --warmup 1 --repeats 1 --rungs separate_downsampling --no-reference)
  COMPILE_BACKEND=(--compile-backend eager)
  # expected seconds on a 2-core CPU: env, smoke, resume, one round beyond ROUND_S, eager bench
  EXP_ENV=10; EXP_SMOKE=20; EXP_RESUME=15; EXP_ROUND=20; EXP_EAGER=35
  STORE_STEP=""; EXP_STORE=0  # store_vs_folder runs with a GPU only
else
  TOTAL_S=${TOTAL_S:-205}; ROUND_S=${ROUND_S:-10}; ROUNDS=${ROUNDS:-"1 2 4 8"}
  DEV=()
  STEPS_PER_EPOCH=20
  BENCH=(--batch 128 --size 224 --steps 10 --warmup 5 --repeats 3)
  read -r -a COMPILE <<< "${COMPILE_ARGS:---batch 128 --size 224 --steps 10 --warmup 3 --repeats 3 --rungs separate_downsampling --no-reference}"
  COMPILE_BACKEND=()
  EXP_ENV=8; EXP_SMOKE=20; EXP_RESUME=10; EXP_ROUND=10; EXP_EAGER=18
  STORE_STEP=",store_vs_folder"; EXP_STORE=25
fi
KILL_GRACE=${KILL_GRACE:-10}
gpu_setup gpu-check "$TOTAL_S"
rm -rf "$WORK"; mkdir -p "$WORK" "$DIR/rounds"

gpu_data_args
COMMON=(preset=imagenette_gpu ${DATA_ARGS[@]+"${DATA_ARGS[@]}"} logger=none trainer.progress=false
        trainer.checkpoint_epochs=false experiment=gpu_check ${DEV[@]+"${DEV[@]}"})
RA=$(sed -n 's/^randaugment: *\([^ #]*\).*/\1/p' conf/recipe/modern.yaml)  # the recipe's policy

ROUND_NAMES=""
for n in $ROUNDS; do ROUND_NAMES+=",concurrency_n$n"; done
N_ROUNDS=$(echo $ROUNDS | wc -w)
rec --plan "env,device_randaugment,resume${ROUND_NAMES}${STORE_STEP},bench_eager,bench_compile" \
  --meta cpu_mode="$([ -n "$CPU" ] && echo true || echo false)" --meta total_s_limit="$TOTAL_S" \
  --meta round_s="$ROUND_S" --meta "rounds=[${ROUNDS// /,}]" --meta "data=${DATA:-${DATA_ARGS[*]:-imagenette download}}"

# Reserves: the expected seconds of every later step (bench_compile: none, it is last).
R_EAGER=0
R_STORE=$((EXP_EAGER))
R_ROUNDS=$((R_STORE + EXP_STORE))
R_RESUME=$((R_ROUNDS + N_ROUNDS * (ROUND_S + EXP_ROUND)))
R_SMOKE=$((R_RESUME + EXP_RESUME))
R_ENV=$((R_SMOKE + EXP_SMOKE))

gpu_python >> "$LOGS/env.log" 2>&1 || gpu_give_up "$PY_PROBLEM"
run_step env 120 "$R_ENV" --numbers "$DIR/versions.json" -- \
  "$PY" scripts/gpu_steps.py versions --json "$DIR/versions.json" ${CPU:+--allow-cpu}
DEVICE=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("device", ""))' \
  "$DIR/versions.json" 2>/dev/null)
[ -n "$DEVICE" ] && rec --meta "device=$DEVICE"
if [ -z "$CPU" ] && grep -q '"cuda": false' "$DIR/versions.json" 2>/dev/null; then
  SKIP_WHY="no GPU visible to torch (LADDER_GPU_CHECK_CPU=1 runs the CPU check)"
fi

SMOKE=(+rung=micro "${COMMON[@]}" data.pipeline=device "recipe.randaugment=$RA" trainer.epochs=2
       "trainer.max_steps_per_epoch=$STEPS_PER_EPOCH")
run_step device_randaugment 90 "$R_SMOKE" --numbers "$DIR/device_randaugment.json" -- \
  "$PY" scripts/gpu_steps.py train --run-dir "$WORK/smoke" --numbers "$DIR/device_randaugment.json" \
  --sigterm-at-step $((STEPS_PER_EPOCH + 2)) --expect-rc 75 --expect '; device pipeline\)' \
  --expect '^\[ladder\] epoch 1/2 ' --expect '^\[ladder\] stopped by signal' -- "${SMOKE[@]}"
run_step resume 60 "$R_RESUME" --numbers "$DIR/resume.json" -- \
  "$PY" scripts/gpu_steps.py train --run-dir "$WORK/smoke" --numbers "$DIR/resume.json" \
  --expect '^\[ladder\] resumed from ' --expect '^\[ladder\] done: ' \
  --expect-result status=completed --expect-result data_pipeline=device \
  --expect-result "config.recipe.randaugment=$RA" -- "${SMOKE[@]}"

i=0
for n in $ROUNDS; do
  i=$((i + 1))
  reserve=$((R_ROUNDS + (N_ROUNDS - i) * (ROUND_S + EXP_ROUND)))
  run_step "concurrency_n$n" $((ROUND_S + 60)) "$reserve" --numbers "$DIR/rounds/n$n.json" -- \
    "$PY" scripts/gpu_steps.py round --n "$n" --window "$ROUND_S" --rungs depthwise --seed0 1 \
    --work "$WORK/rounds" --log-dir "$LOGS/rounds" --json "$DIR/rounds/n$n.json" -- "${COMMON[@]}"
done

if [ -n "$STORE_STEP" ]; then
  run_step store_vs_folder 120 "$R_STORE" --numbers "$DIR/store_vs_folder.json" -- \
    "$PY" -m ladder.data.throughput "${COMMON[@]}" --store "$WORK/store" --prepare \
    --json "$DIR/store_vs_folder.json"
fi

run_step bench_eager 90 "$R_EAGER" --bench "$DIR/bench_eager.json" -- \
  "$PY" scripts/benchmark.py "${BENCH[@]}" --json "$DIR/bench_eager.json"
run_step bench_compile 600 0 --bench "$DIR/bench_compile.json" -- \
  "$PY" scripts/gpu_steps.py bench ${COMPILE_BACKEND[@]+"${COMPILE_BACKEND[@]}"} -- \
  "${COMPILE[@]}" --compile --json "$DIR/bench_compile.json"

gpu_finish
for f in bench_eager bench_compile; do
  grep -A4 '^training throughput' "$LOGS/$f.log" 2>/dev/null
done
exit "$FINISH_RC"
