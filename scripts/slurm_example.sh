#!/bin/bash
# SLURM without Hydra's launcher: one rung with plain torchrun (one torchrun per node, a worker
# per GPU), or a whole sweep on one node with scripts/sweep.py (the node's GPUs shared out among
# the jobs, one job per GPU by default).
#
#   sbatch scripts/slurm_example.sh micro            # one node: 8 GPUs x 128 x 4 accumulation
#   sbatch --nodes=4 scripts/slurm_example.sh micro  # 4 nodes x 8 GPUs x 128 = 4096
#   sbatch scripts/slurm_example.sh kernel7 seed=1 data.root=/other/imagenet   # extra overrides
#   sbatch scripts/slurm_example.sh ladder           # 17 rungs x 3 seeds on one node, 8 at once
#   PRESET=imagenet64 SEEDS=0 sbatch scripts/slurm_example.sh milestones   # another preset
#
# A sweep (`ladder` or `milestones`) asks for this one node's GPUs, never one node per job:
# scripts/sweep.py --gpus auto gives each job its own CUDA_VISIBLE_DEVICES within the allocation,
# GPUS_PER_JOB GPUs each (default 1; above 1 the job runs under torchrun), and starts the next job
# on a GPU as soon as one is free. Environment: PRESET (default imagenet), SEEDS (default 0,1,2),
# GPUS_PER_JOB, DATA_ROOT (default /data/imagenet; passed to the imagenet* presets).
#
# On a time-out SLURM signals this script (B:USR1) 180 s early; it sends SIGTERM to the step
# (srun -> torchrun -> every worker, or srun -> sweep.py -> every running job), each run finishes
# its step, writes <run>/checkpoints/last.pt and exits with 75, and the job requeues itself; the
# requeued job runs the same command and resumes from those checkpoints (a sweep starts its
# unstarted jobs then). A run whose result.json says "completed" is not retrained. Adapt the
# #SBATCH lines to your cluster.
#SBATCH --job-name=ladder
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=80
#SBATCH --mem=480G
#SBATCH --time=48:00:00
#SBATCH --signal=B:USR1@180
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
##SBATCH --partition=gpu
##SBATCH --account=myproject

set -uo pipefail
WHAT=${1:?usage: sbatch scripts/slurm_example.sh <rung | ladder | milestones> [hydra overrides...]}
shift
DATA_ROOT=${DATA_ROOT:-/data/imagenet}
export OMP_NUM_THREADS=1

requeue() {
    echo "[slurm_example] time limit near: checkpointing and requeueing job $SLURM_JOB_ID"
    kill -TERM "$SRUN_PID" 2>/dev/null
    wait "$SRUN_PID"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
}
trap requeue USR1

if [ "$WHAT" = ladder ] || [ "$WHAT" = milestones ]; then
    if [ "${SLURM_JOB_NUM_NODES:-1}" -ne 1 ]; then
        echo "[slurm_example] a sweep runs on one node: submit it with --nodes=1 (this job has" \
             "$SLURM_JOB_NUM_NODES)." >&2
        exit 2
    fi
    PRESET=${PRESET:-imagenet}
    DATA=()
    case "$PRESET" in imagenette*) ;; imagenet*) DATA=("data.root=$DATA_ROOT") ;; esac
    srun --ntasks=1 --kill-on-bad-exit=1 python scripts/sweep.py --rungs "$WHAT" \
        --first milestones --seeds "${SEEDS:-0,1,2}" \
        --gpus auto --gpus-per-job "${GPUS_PER_JOB:-1}" \
        -- preset="$PRESET" ${DATA[@]+"${DATA[@]}"} "$@" &
else
    MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
    srun --kill-on-bad-exit=1 python -m torch.distributed.run \
        --nnodes="$SLURM_JOB_NUM_NODES" --nproc_per_node="${SLURM_GPUS_ON_NODE:-8}" \
        --rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:29500" --rdzv_id="$SLURM_JOB_ID" \
        train.py +rung="$WHAT" preset=imagenet data.root="$DATA_ROOT" trainer.batch_size=128 "$@" &
fi
SRUN_PID=$!
wait "$SRUN_PID"
