# Shared by scripts/gpu_check.sh and scripts/gpu_ladder.sh (sourced, not run by itself): the
# Python to use, the output and work folders, and the step runner.
#
# A step runs under its own `timeout` (SIGTERM, then SIGKILL after KILL_GRACE seconds), in its
# own process group, with its output in logs/<step>.log of the archive. Its limit is the
# smaller of its own default and what is left before the script's deadline once the later
# steps' expected seconds are set aside, so one slow step can't take the time of those after
# it; a step that fails or times out doesn't stop the next one (no `set -e`). Before and after
# each step the summary JSON is rewritten (status, exit code, seconds, limit, key numbers) and
# the archive rebuilt (scripts/gpu_steps.py record), so a script stopped at any moment leaves
# both as of its last step. SIGTERM / SIGINT / HUP to the script stop the running step (it gets
# SIGTERM: train.py checkpoints), record it as interrupted and mark the steps not run as
# skipped.
#
# Environment, both scripts:
#   OUT                  output folder, which gets two files per script and nothing else: the
#                        summary JSON and the archive (default results/gpu)
#   LADDER_WORK          working files, outside OUT (default /tmp/ladder-gpu): run folders and
#                        checkpoints (<script>/), and the folder the archive is packed from
#                        (archive/<script>/: logs, numbers, results, report) with its lock
#   LADDER_CACHE         decoded data (default $LADDER_WORK/cache, shared by both scripts)
#   PYTHON               the Python to start from (default python3); gpu_python below says
#                        what it must import and what happens when it does not
#   LADDER_GPU_STEPS     run only these steps (comma-separated names or globs, e.g.
#                        "env,bench_*"); the others are recorded as skipped
#   LADDER_GPU_TIMEOUTS  per-step limits that replace the computed ones, e.g. "resume=5,sweep=60"
#   KILL_GRACE           seconds between a step's SIGTERM and its SIGKILL (default 15)
#   MIN_STEP_S           a step with less time left than this is skipped (default 5)

# gpu_setup NAME TOTAL_S: folders, summary and archive paths, the deadline, the signal trap.
gpu_setup() {
  NAME=$1
  TOTAL_S=$2
  OUT_TOP="${OUT:-results/gpu}"
  SUMMARY="$OUT_TOP/${NAME//-/_}_summary.json"
  ARCHIVE="$OUT_TOP/$NAME.tar.gz"
  WORK_TOP="${LADDER_WORK:-/tmp/ladder-gpu}"
  WORK="$WORK_TOP/$NAME"  # run folders, checkpoints
  PACK_TOP="$WORK_TOP/archive"
  DIR="$PACK_TOP/$NAME"  # what the archive holds, as $NAME/...
  LOGS="$DIR/logs"
  export LADDER_CACHE="${LADDER_CACHE:-$WORK_TOP/cache}"
  export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
  KILL_GRACE=${KILL_GRACE:-15}
  MIN_STEP_S=${MIN_STEP_S:-5}
  T0=$(date +%s)
  DEADLINE=$((T0 + TOTAL_S))
  PY="${PYTHON:-python3}"  # gpu_python may replace it; record / show / collect run under any
  rm -rf "$DIR" "$SUMMARY" "$ARCHIVE"
  mkdir -p "$LOGS" "$WORK" "$OUT_TOP"
  STOPPING=""
  SKIP_WHY=""  # set: the later steps are recorded as skipped, with this reason
  trap 'STOPPING=1' TERM INT HUP
}

# rec ARGS...: scripts/gpu_steps.py record with this script's summary and archive.
rec() {
  "$PY" scripts/gpu_steps.py record --summary "$SUMMARY" --script "$NAME" \
    --archive "$ARCHIVE" --pack-dir "$DIR" "$@"
}

# The modules the steps import (train.py and scripts/gpu_steps.py, benchmark.py, sweep.py,
# roadmap.py), by import name; tests/test_gpu_scripts.py checks the list against the package's
# imports. Not wandb (the steps log nowhere) nor kornia (only scripts/augment_benchmark.py).
STEP_MODULES="torch torchvision timm hydra omegaconf yaml numpy PIL matplotlib tqdm"

# missing_modules PYTHON: those of STEP_MODULES that PYTHON fails to import, space-separated
# (empty: none); a non-zero status when PYTHON does not run.
missing_modules() {
  "$1" -c 'import importlib, sys
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        missing.append(name)
print(" ".join(missing))' $STEP_MODULES 2>/dev/null
}

requirement_of() {  # an import name -> what pip installs for it (pyproject.toml's bounds)
  case $1 in
    timm) echo "timm>=1.0.9,<2" ;;
    hydra) echo "hydra-core>=1.3,<1.4" ;;
    omegaconf) echo "omegaconf>=2.3,<2.5" ;;
    yaml) echo "pyyaml" ;;
    PIL) echo "pillow>=9.4,<13" ;;
    matplotlib) echo "matplotlib>=3.7" ;;
    tqdm) echo "tqdm>=4.66" ;;
    *) echo "$1" ;;
  esac
}

# gpu_python: set PY to a Python that imports every module of STEP_MODULES, trying in turn
#   1. $PYTHON (default python3) as it is;
#   2. that Python with the wheels in .whl/ (scripts/fetch_gpu_wheels.sh) installed into
#      $LADDER_WORK/site (no network, no dependencies) on its PYTHONPATH;
#   3. a virtual environment $LADDER_WORK/venv made by that Python with --system-site-packages
#      and that Python's own site-packages on its path, so its torch (the build for the card's
#      driver) is reused, never downloaded; pip installs into it only the missing modules
#      (this needs the network; a pip that finds none gives up within a minute or so).
# The modules are checked again after each install. The project itself is never installed:
# every step runs a file of this checkout, which puts the checkout on sys.path. torch and
# torchvision come with the machine: without them nothing is tried. When nothing fits: status
# 1, and PY_PROBLEM is one sentence naming the missing modules.
gpu_python() {
  PY="${PYTHON:-python3}"
  PY_PROBLEM=""
  local missing venv="$WORK_TOP/venv" site="$WORK_TOP/site" tried="" reqs=() m
  if ! missing=$(missing_modules "$PY"); then
    PY_PROBLEM="python: $PY does not run; set PYTHON to a Python that imports ${STEP_MODULES// /, }."
    return 1
  fi
  if [ -z "$missing" ]; then
    echo "python: $PY imports every module the steps need"
    return 0
  fi
  echo "python: $PY lacks $missing"
  case " $missing " in
    *" torch "*|*" torchvision "*)
      PY_PROBLEM="python: $PY cannot import ${missing// /, }; torch and torchvision must come with the machine (a build for its CUDA driver, never downloaded here), so set PYTHON to a Python that has them."
      return 1 ;;
  esac
  if ls .whl/*.whl >/dev/null 2>&1; then
    echo "python: installing .whl/*.whl into $site"
    timeout 300 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$site" .whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    missing=$(missing_modules "$PY")
    if [ -z "$missing" ]; then
      echo "python: $PY with $site imports every module the steps need"
      return 0
    fi
    echo "python: $PY with $site still lacks $missing"
    tried="the wheels in .whl/, "
  fi
  echo "python: a virtual environment $venv on $PY's packages; pip installs $missing"
  for m in $missing; do reqs+=("$(requirement_of "$m")"); done
  if timeout 120 "$PY" -m venv --system-site-packages --without-pip "$venv"; then
    # $PY's own packages as well: --system-site-packages alone gives those of the Python a
    # virtual environment $PY itself belongs to was made from, not its own.
    "$PY" -c 'import sysconfig; print("\n".join(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))))' \
      > "$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ladder-base.pth"
    if "$PY" -m pip --version >/dev/null 2>&1; then
      timeout 600 "$PY" -m pip --python "$venv/bin/python" install -q --disable-pip-version-check \
        --timeout 20 --retries 1 "${reqs[@]}"
    else
      timeout 600 "$venv/bin/python" -m ensurepip -q && timeout 600 "$venv/bin/python" -m pip \
        install -q --disable-pip-version-check --timeout 20 --retries 1 "${reqs[@]}"
    fi
    if missing=$(missing_modules "$venv/bin/python") && [ -z "$missing" ]; then
      PY="$venv/bin/python"
      echo "python: $PY imports every module the steps need"
      return 0
    fi
  fi
  PY_PROBLEM="python: no Python here imports ${missing// /, } (not $PY, nor it with ${tried}pip install into $venv), so set PYTHON to a Python that does or bring the wheels of scripts/fetch_gpu_wheels.sh in .whl/."
  return 1
}

# gpu_give_up SENTENCE: no Python fits. The sentence goes to stderr, to logs/env.log and (when
# $PY runs at all) into the summary as the env step's failure; the script exits 1.
gpu_give_up() {
  echo "[$NAME] $1" >&2
  echo "$1" >> "$LOGS/env.log"
  rec --name env --rc 1 --status failed --why "$1" --log "${LOGS#"$PACK_TOP"/}/env.log"
  rec --finished --meta "total_s=$(( $(date +%s) - T0 ))"
  exit 1
}

gpu_data_args() {  # DATA_ARGS: DATA's folder (or data_local/imagenette-64) when there is one,
                   # the generated demo in CPU mode, else Imagenette's download
  if [ -n "${DATA:-}" ] || [ -d data_local/imagenette-64 ]; then
    DATA="${DATA:-data_local/imagenette-64}"; DATA_ARGS=("data.root=$DATA")
  elif [ -n "$CPU" ]; then
    DATA_ARGS=(data=demo data.train_per_class=24 data.val_per_class=6)  # generated, 64 px here
  else
    DATA_ARGS=()  # data=imagenette: downloaded and shrunk into $LADDER_CACHE on first use
  fi
}

step_selected() {  # NAME: in LADDER_GPU_STEPS (or that is unset)
  [ -z "${LADDER_GPU_STEPS:-}" ] && return 0
  local pattern
  for pattern in ${LADDER_GPU_STEPS//,/ }; do
    # shellcheck disable=SC2053  # a glob on purpose
    [[ $1 == $pattern ]] && return 0
  done
  return 1
}

forced_limit() {  # NAME: its limit in LADDER_GPU_TIMEOUTS, if any
  local item
  for item in ${LADDER_GPU_TIMEOUTS:+${LADDER_GPU_TIMEOUTS//,/ }}; do
    [ "${item%%=*}" = "$1" ] && { echo "${item#*=}"; return 0; }
  done
  return 1
}

seconds_left() { echo $((DEADLINE - $(date +%s))); }

# run_step NAME DEFAULT_LIMIT RESERVE [--numbers FILE | --bench FILE]... -- COMMAND...
# RESERVE: the seconds the later steps are expected to need. Sets STEP_RC (the step's exit
# code; 124: timed out; empty: not run). The command sees its limit as $STEP_LIMIT.
run_step() {
  local name=$1 default=$2 reserve=$3
  shift 3
  local extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do extra+=("$1" "$2"); shift 2; done
  shift
  local log="$LOGS/$name.log" rel="${LOGS#"$PACK_TOP"/}/$name.log" limit rc pid t_start secs
  STEP_RC=""
  if [ -n "$STOPPING" ]; then
    rec --name "$name" --status skipped --why "the script was stopped before this step"
    return 0
  fi
  if [ -n "$SKIP_WHY" ]; then
    rec --name "$name" --status skipped --why "$SKIP_WHY"
    return 0
  fi
  if ! step_selected "$name"; then
    rec --name "$name" --status skipped --why "not in LADDER_GPU_STEPS"
    return 0
  fi
  if ! limit=$(forced_limit "$name"); then
    limit=$(( $(seconds_left) - reserve - KILL_GRACE ))
    [ "$limit" -gt "$default" ] && limit=$default
    if [ "$limit" -lt "$MIN_STEP_S" ]; then
      rec --name "$name" --status skipped --why "no time left before the deadline (${limit} s)"
      echo "[$NAME] $name: skipped, no time left before the deadline"
      return 0
    fi
  fi
  rec --name "$name" --status running --limit "$limit" --log "$rel"
  echo "[$NAME] $name: limit ${limit} s, log $log"
  t_start=$(date +%s.%N)
  STEP_LIMIT=$limit timeout -k "$KILL_GRACE" "$limit" "$@" >> "$log" 2>&1 < /dev/null &
  pid=$!
  while :; do
    wait "$pid"
    rc=$?
    if [ -n "$STOPPING" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null  # timeout passes it on to the step's processes
      continue
    fi
    break
  done
  secs=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  local status=()
  [ -n "$STOPPING" ] && status=(--status interrupted --why "the script was stopped (signal)")
  rec --name "$name" --rc "$rc" --seconds "$secs" --limit "$limit" --log "$rel" \
    ${extra[@]+"${extra[@]}"} ${status[@]+"${status[@]}"}
  STEP_RC=$rc
  echo "[$NAME] $name: exit $rc after $secs s"
  tail -n 3 "$log" | sed 's/^/    /'
}

# gpu_finish: the summary's last word and its table. Sets FINISH_RC: 0 when every step ran
# and passed (those left out by LADDER_GPU_STEPS aside), 1 otherwise, 143 when stopped by a
# signal.
gpu_finish() {
  rec --finished --meta "total_s=$(( $(date +%s) - T0 ))"
  "$PY" scripts/gpu_steps.py show --summary "$SUMMARY" --exit-code
  FINISH_RC=$?
  [ -n "$STOPPING" ] && FINISH_RC=143
  echo "[$NAME] summary $SUMMARY, archive $ARCHIVE (working files in $WORK_TOP)"
}
