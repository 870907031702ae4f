# Shared by scripts/gpu_check.sh and scripts/gpu_ladder.sh (sourced, not run by itself): the
# Python to use, the output and work folders, and the step runner.
#
# A step runs under its own `timeout` (SIGTERM, then SIGKILL after KILL_GRACE seconds), in its
# own process group, with its output in <out>/logs/<step>.log. Its limit is the smaller of its
# own default and what is left before the script's deadline once the later steps' expected
# seconds are set aside, so one slow step can't take the time of those after it; a step that
# fails or times out doesn't stop the next one (no `set -e`). Before and after each step the
# summary JSON is rewritten (status, exit code, seconds, limit, key numbers) and the archive
# rebuilt (scripts/gpu_steps.py record), so a script stopped at any moment leaves both as of
# its last step. SIGTERM / SIGINT / HUP to the script stop the running step (it gets SIGTERM:
# train.py checkpoints), record it as interrupted and mark the steps not run as skipped.
#
# Environment, both scripts:
#   OUT                  output folder (default results/gpu)
#   LADDER_WORK          run folders and checkpoints, outside OUT (default /tmp/ladder-gpu)
#   LADDER_CACHE         decoded data (default $LADDER_WORK/cache, shared by both scripts)
#   PYTHON               the Python with torch, timm, Hydra, kornia (default python3; see
#                        gpu_python below for what happens without them)
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
  DIR="$OUT_TOP/$NAME"
  LOGS="$DIR/logs"
  SUMMARY="$OUT_TOP/${NAME//-/_}_summary.json"
  ARCHIVE="$OUT_TOP/$NAME.tar.gz"
  WORK_TOP="${LADDER_WORK:-/tmp/ladder-gpu}"
  WORK="$WORK_TOP/$NAME"
  export LADDER_CACHE="${LADDER_CACHE:-$WORK_TOP/cache}"
  export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
  KILL_GRACE=${KILL_GRACE:-15}
  MIN_STEP_S=${MIN_STEP_S:-5}
  T0=$(date +%s)
  DEADLINE=$((T0 + TOTAL_S))
  HELPER_PY="${PYTHON:-python3}"  # record / show / collect need only the standard library
  rm -rf "$DIR" "$SUMMARY" "$ARCHIVE"
  mkdir -p "$LOGS" "$WORK"
  STOPPING=""
  SKIP_WHY=""  # set: the later steps are recorded as skipped, with this reason
  trap 'STOPPING=1' TERM INT HUP
}

# rec ARGS...: scripts/gpu_steps.py record with this script's summary and archive.
rec() {
  "$HELPER_PY" scripts/gpu_steps.py record --summary "$SUMMARY" --script "$NAME" \
    --archive "$ARCHIVE" --pack-dir "$DIR" "$@"
}

# gpu_python: set PY to a Python that has torch, timm, Hydra, kornia and matplotlib. $PYTHON
# (or python3) when it has them; else the wheels in .whl/ (scripts/fetch_gpu_wheels.sh: Hydra,
# OmegaConf, kornia, timm for a Python that has torch) installed into $LADDER_WORK/site; else a
# virtual environment .venv-gpu with `pip install -e .` (needs the network).
gpu_python() {
  PY="${PYTHON:-python3}"
  local check='import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ("torch", "timm", "hydra", "kornia", "matplotlib")))'
  if "$PY" -c "$check" 2>/dev/null; then
    echo "python: $PY has what the steps need"
  elif ls .whl/*.whl >/dev/null 2>&1; then
    local site="$WORK_TOP/site"
    echo "python: installing .whl/*.whl into $site for $PY"
    timeout 300 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$site" .whl/*.whl
    export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "python: $PY lacks some of torch, timm, hydra, kornia, matplotlib; creating .venv-gpu"
    timeout 300 python3 -m venv .venv-gpu && timeout 900 .venv-gpu/bin/pip install -q -e . \
      && PY="$PWD/.venv-gpu/bin/python"
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
  local log="$LOGS/$name.log" rel="${LOGS#"$OUT_TOP"/}/$name.log" limit rc pid t_start secs
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
  "$HELPER_PY" scripts/gpu_steps.py show --summary "$SUMMARY" --exit-code
  FINISH_RC=$?
  [ -n "$STOPPING" ] && FINISH_RC=143
  echo "[$NAME] summary $SUMMARY, archive $ARCHIVE"
}
