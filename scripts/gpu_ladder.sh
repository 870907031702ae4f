#!/usr/bin/env bash
# The whole ladder on one GPU in one 9-minute run: the 17 rungs x 3 seeds of the imagenette_gpu
# budget (64 px Imagenette, half width, data resident on the GPU, bf16), JOBS jobs at once on
# the card, the 7 milestones x 3 seeds first; then the roadmap report.
#
#   bash scripts/gpu_ladder.sh                                      # on a machine with one GPU
#   PYTHON=.venv/bin/python LADDER_GPU_CHECK_CPU=1 bash scripts/gpu_ladder.sh   # the CPU check
#
# Steps (each under its own time limit; one that fails or times out does not stop the next;
# scripts/gpu_common.sh):
#   env                versions and the card (versions.json)
#   cache              decode the data into the tensor cache once, before jobs race to do it
#   calibrate          a concurrency round (scripts/gpu_steps.py round): JOBS train.py jobs at
#                      once, one per rung of CAL_RUNGS (the milestones and kernel11: a mix of the
#                      ladder's costs), each training CAL_S seconds, then stopped; measures the
#                      per-job throughput r and start-up s at this concurrency. Skipped when
#                      EPOCHS or RATE_FROM is given
#   size               the epochs E from r and s (below; size.json)
#   sweep              scripts/sweep.py --rungs <RUNGS' names> --first <FIRST's names>
#                      --seeds 0,1,2 --jobs JOBS with trainer.epochs=E (the torchvision recipe's resnet50:
#                      3E, the preset's 45 : 15) and trainer.checkpoint_epochs=false (runs of a
#                      few minutes keep no per-epoch checkpoints; a signal still writes one),
#                      under a limit that leaves RESERVE_S (75 s) for the report and the archive
#   report             scripts/roadmap.py over the finished runs (report/roadmap.md, .csv, .png)
#   report_milestones  the same, --view milestones (report-milestones/)
#
# Epochs, computed at run time. A job of E epochs holds one of the J = JOBS slots for
# s + w x E x P / r seconds: r = img/s of one job while J train at once (calibrate: the images
# all jobs trained / CAL_S / J; evaluations and warm-up inside the window count as time),
# s = its start-up (the round's median, launch to the end of its banner) + 2 s to write its
# result, P = images per epoch (Imagenette: 9469 train images at batch 128 = 73 steps = 9344),
# w = 3 for resnet50 (3E epochs), else 1. For N jobs with W = sum of w over them (51 jobs,
# W = 48 + 3 x 3 = 57) and B seconds for the sweep, with f = 0.85 for the tail (the last jobs
# leave slots idle) and rungs slower than the calibration mix:
#     E = floor((f x J x B - N x s) x r / (P x W)), within [1, EPOCHS_MAX = 15 (the preset's)].
# Time: TOTAL_S = 540 s. Expected (estimates: no GPU figure exists in results/ yet): env 8 s,
# cache 12 s, calibrate 15 + 12 s, size 1 s; B = 540 - 48 - 75 (RESERVE_S) - 10 (KILL_GRACE)
# ~ 407 s. Without a measurement (calibrate failed, no RATE_FROM), r = 2500 img/s per job at 8
# jobs and s = 15 s are ASSUMED (20k img/s on the card: an assumption, to be replaced by
# gpu_check.sh's concurrency rounds): E = floor((0.85 x 8 x 407 - 51 x 17) x 2500 /
# (9344 x 57)) = floor(8.92) = 8. A calibration that ran and measured nothing is said aloud:
# the size step still gives these epochs but is recorded as failed, so the script exits 1. The runs not finished at the sweep's limit are stopped by
# SIGTERM (each writes a checkpoint in the work folder); their train.log comes back, their
# result does not, and the report covers what finished, the milestones first.
#
# Output, in $OUT (default results/gpu), two files and nothing else, also when the script is
# stopped part-way:
#   gpu_ladder_summary.json  one entry per step: status, exit code, seconds, limit, numbers (the
#                            sweep's: runs completed, failed, milestone runs completed, updated
#                            while it runs)
#   gpu-ladder.tar.gz        the summary and gpu-ladder/: runs/<rung>/seed<S>/result.json +
#                            train.log (copied every COLLECT_S = 5 s as runs finish), report/,
#                            report-milestones/, logs/<step>.log, versions.json, calibrate.json,
#                            size.json; rebuilt after every step and whenever a run finishes
# Working files stay in $LADDER_WORK (default /tmp/ladder-gpu): run folders and checkpoints in
# gpu-ladder/runs, the archive's folder in archive/gpu-ladder/. LADDER_GPU_RESUME=1 keeps the
# runs and the epochs of the last call, so a call stopped part-way continues: finished runs
# are skipped, interrupted ones resume from their checkpoint.
#
# Exit status: 0 when every step passed, 1 when one did not (e.g. the sweep hit its limit), 143
# when stopped by a signal.
#
# Data: DATA, a 64 px Imagenette copy in ImageNet layout (default data_local/imagenette-64).
# Without it data=imagenette downloads and shrinks Imagenette into $LADDER_CACHE in the cache
# step, or do it beforehand where there is network:
#   LADDER_CACHE=/tmp/ladder-gpu/cache python scripts/gpu_steps.py cache -- preset=imagenette_gpu logger=none
# Environment: JOBS (8), SEEDS (0,1,2), RUNGS (ladder), FIRST (milestones), EPOCHS (fixed
# epochs, no calibration), RATE_FROM (a gpu_check_summary.json: r and s from its concurrency
# round at JOBS jobs, no calibration), CAL_S (15), CAL_RUNGS, EPOCHS_MAX (15), TOTAL_S (540),
# RESERVE_S (75), COLLECT_S (5), DATA, and those of scripts/gpu_common.sh (OUT, LADDER_WORK,
# LADDER_CACHE, PYTHON, LADDER_GPU_STEPS, LADDER_GPU_TIMEOUTS, KILL_GRACE).
# LADDER_GPU_CHECK_CPU=1 (or LADDER_GPU_LADDER_CPU=1): the same steps at a tiny setting on the
# CPU (3 rungs x 1 seed, 2 jobs at once, 1/16 width, 2 steps an epoch, generated demo data),
# about 2-3 minutes on 2 cores.
set -uo pipefail  # no -e: a failing step must not stop the others
cd "$(dirname "$0")/.."
. scripts/gpu_common.sh

CPU="${LADDER_GPU_CHECK_CPU:-${LADDER_GPU_LADDER_CPU:-}}"
FIRST=${FIRST:-milestones}
if [ -n "$CPU" ]; then
  TOTAL_S=${TOTAL_S:-200}; JOBS=${JOBS:-2}; SEEDS=${SEEDS:-0}; RUNGS=${RUNGS:-resnet50,kernel9,micro}
  CAL_S=${CAL_S:-3}; CAL_RUNGS=${CAL_RUNGS:-micro}; EPOCHS_MAX=${EPOCHS_MAX:-1}
  RESERVE_S=${RESERVE_S:-60}
  DEV=(trainer.device=cpu model.width_multiplier=0.0625 trainer.batch_size=16 trainer.global_batch=16
       trainer.max_steps_per_epoch=2)
  EXP_CACHE=10; EXP_CAL=20  # expected seconds of the cache step, calibrate beyond CAL_S
else
  TOTAL_S=${TOTAL_S:-540}; JOBS=${JOBS:-8}; SEEDS=${SEEDS:-0,1,2}; RUNGS=${RUNGS:-ladder}
  CAL_S=${CAL_S:-15}
  CAL_RUNGS=${CAL_RUNGS:-resnet50,recipe,patchify,width,inverted_bottleneck,kernel7,separate_downsampling,kernel11}
  EPOCHS_MAX=${EPOCHS_MAX:-15}; RESERVE_S=${RESERVE_S:-75}
  DEV=()
  EXP_CACHE=12; EXP_CAL=12
fi
KILL_GRACE=${KILL_GRACE:-10}
gpu_setup gpu-ladder "$TOTAL_S"
if [ -n "${LADDER_GPU_RESUME:-}" ] && [ -f "$WORK/epochs.txt" ]; then
  EPOCHS=${EPOCHS:-$(cat "$WORK/epochs.txt")}
  echo "[gpu-ladder] LADDER_GPU_RESUME: continuing the runs in $WORK/runs at $EPOCHS epochs"
else
  rm -rf "$WORK"; mkdir -p "$WORK"
fi

gpu_data_args
COMMON=(preset=imagenette_gpu ${DATA_ARGS[@]+"${DATA_ARGS[@]}"} logger=none
        trainer.checkpoint_epochs=false ${DEV[@]+"${DEV[@]}"})

rec --plan "env,cache,calibrate,size,sweep,report,report_milestones" \
  --meta cpu_mode="$([ -n "$CPU" ] && echo true || echo false)" --meta total_s_limit="$TOTAL_S" \
  --meta jobs_at_once="$JOBS" --meta "rungs=$RUNGS" --meta "first=$FIRST" --meta "seeds=$SEEDS" \
  --meta "data=${DATA:-${DATA_ARGS[*]:-imagenette download}}"

gpu_python >> "$LOGS/env.log" 2>&1 || gpu_give_up "$PY_PROBLEM"
run_step env 120 $((RESERVE_S + EXP_CACHE + EXP_CAL + CAL_S + 60)) --numbers "$DIR/versions.json" -- \
  "$PY" scripts/gpu_steps.py versions --json "$DIR/versions.json" ${CPU:+--allow-cpu}
DEVICE=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("device", ""))' \
  "$DIR/versions.json" 2>/dev/null)
[ -n "$DEVICE" ] && rec --meta "device=$DEVICE"
if [ -z "$CPU" ] && grep -q '"cuda": false' "$DIR/versions.json" 2>/dev/null; then
  SKIP_WHY="no GPU visible to torch (LADDER_GPU_CHECK_CPU=1 runs the CPU check)"
fi

run_step cache 180 $((RESERVE_S + EXP_CAL + CAL_S + 60)) -- \
  "$PY" scripts/gpu_steps.py cache --rungs micro,resnet50 -- "${COMMON[@]}"

CAL_RC=""  # calibrate's exit code; empty: it did not run
if [ -n "${EPOCHS:-}" ] || [ -n "${RATE_FROM:-}" ]; then
  rec --name calibrate --status skipped --why "EPOCHS or RATE_FROM given"
else
  run_step calibrate $((CAL_S + 90)) $((RESERVE_S + 60)) --numbers "$DIR/calibrate.json" -- \
    "$PY" scripts/gpu_steps.py round --n "$JOBS" --window "$CAL_S" --rungs "$CAL_RUNGS" --seed0 0 \
    --work "$WORK/calibrate" --log-dir "$LOGS/calibrate" --json "$DIR/calibrate.json" -- \
    "${COMMON[@]}" experiment=gpu_calibrate
  CAL_RC=$STEP_RC
  if [ -n "$CAL_RC" ] && [ "$CAL_RC" != 0 ]; then
    echo "[gpu-ladder] calibrate failed (exit $CAL_RC): the epochs will come from the ASSUMED" \
      "throughput, and the size step is recorded as failed"
  fi
fi
rm -rf "$WORK/calibrate"  # its checkpoints are not needed any more

# The sweep's seconds: what is left before the deadline, less the reserve and the kill grace.
BUDGET=$(( $(seconds_left) - RESERVE_S - KILL_GRACE - 2 ))
SIZE=(--jobs "$JOBS" --budget "$BUDGET" --rungs "$RUNGS" --first "$FIRST" --seeds "$SEEDS"
      --max-epochs "$EPOCHS_MAX" --json "$DIR/size.json")
[ -n "${EPOCHS:-}" ] && SIZE+=(--fixed "$EPOCHS")
[ -n "${RATE_FROM:-}" ] && SIZE+=(--rate-from "$RATE_FROM")
# A round that ran is read even when it failed: no throughput in it fails the size step.
[ -n "$CAL_RC" ] && SIZE+=(--round "$DIR/calibrate.json")
run_step size 30 $((RESERVE_S + 30)) --numbers "$DIR/size.json" -- \
  "$PY" scripts/gpu_steps.py size "${SIZE[@]}"
E=$(sed -n 's/^EPOCHS=\([0-9][0-9]*\)$/\1/p' "$LOGS/size.log" | tail -n 1)
if [ -z "$E" ]; then
  E=${EPOCHS:-$EPOCHS_MAX}
  echo "[gpu-ladder] the size step gave no epochs; using $E"
fi
echo "$E" > "$WORK/epochs.txt"
# The rungs as names (the size step reads the sweep files as sweep.py would); else as given.
RUNG_NAMES=$(sed -n 's/^RUNGS=//p' "$LOGS/size.log" | tail -n 1)
FIRST_NAMES=$(sed -n 's/^FIRST=//p' "$LOGS/size.log" | tail -n 1)

collector() {
  while :; do
    "$PY" scripts/gpu_steps.py collect --runs "$WORK/runs" --dest "$DIR/runs" \
      --summary "$SUMMARY" --step sweep --archive "$ARCHIVE" --pack-dir "$DIR" >> "$LOGS/collect.log" 2>&1
    sleep "${COLLECT_S:-5}"
  done
}
printf '{"epochs": %s, "torchvision_epochs": %s, "jobs_at_once": %s, "rungs": "%s", "first": "%s", "seeds": "%s"}\n' \
  "$E" $((3 * E)) "$JOBS" "$RUNGS" "$FIRST" "$SEEDS" > "$DIR/sweep.json"
collector &
COLLECTOR=$!
run_step sweep "$TOTAL_S" "$RESERVE_S" --numbers "$DIR/sweep.json" -- \
  "$PY" scripts/sweep.py --rungs "${RUNG_NAMES:-$RUNGS}" --first "${FIRST_NAMES:-$FIRST}" \
  --seeds "$SEEDS" --jobs "$JOBS" \
  --out "$WORK/runs" -- "${COMMON[@]}" "trainer.epochs=$E" "trainer.by_recipe.torchvision.epochs=$((3 * E))"
kill "$COLLECTOR" 2>/dev/null
wait "$COLLECTOR" 2>/dev/null
"$PY" scripts/gpu_steps.py collect --runs "$WORK/runs" --dest "$DIR/runs" --logs \
  --summary "$SUMMARY" --step sweep --archive "$ARCHIVE" --pack-dir "$DIR" >> "$LOGS/collect.log" 2>&1

run_step report 45 30 -- "$PY" scripts/roadmap.py "$DIR/runs" --out "$DIR/report"
run_step report_milestones 30 0 -- \
  "$PY" scripts/roadmap.py "$DIR/runs" --view milestones --out "$DIR/report-milestones"

gpu_finish
cat "$DIR/report-milestones/"*.md 2>/dev/null | head -n 30
exit "$FINISH_RC"
