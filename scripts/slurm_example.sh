#!/bin/bash
# One rung on SLURM with plain torchrun (no Hydra launcher): one torchrun per node, 8 workers each.
#
#   sbatch scripts/slurm_example.sh micro                  # 4 nodes x 8 GPUs x 128 = 4096
#   sbatch --nodes=1 scripts/slurm_example.sh micro        # 8 GPUs x 128 x 4 accumulation
#   sbatch scripts/slurm_example.sh kernel7 seed=1 data.root=/other/imagenet   # extra overrides
#
# On a time-out SLURM signals this script (B:USR1) 180 s early; it sends SIGTERM to the training
# step (srun -> torchrun -> every worker), the trainer finishes its step, writes
# outputs/imagenet/<rung>/seed<seed>/checkpoints/last.pt and exits with 75, and the job requeues
# itself; the requeued job runs the same command and resumes from that checkpoint. A run whose
# result.json says "completed" is not retrained. Adapt the #SBATCH lines to your cluster.
#SBATCH --job-name=ladder
#SBATCH --nodes=4
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
RUNG=${1:?usage: sbatch scripts/slurm_example.sh <rung> [hydra overrides...]}
shift
DATA_ROOT=${DATA_ROOT:-/data/imagenet}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export OMP_NUM_THREADS=1

requeue() {
    echo "[slurm_example] time limit near: checkpointing and requeueing job $SLURM_JOB_ID"
    kill -TERM "$SRUN_PID" 2>/dev/null
    wait "$SRUN_PID"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
}
trap requeue USR1

srun --kill-on-bad-exit=1 python -m torch.distributed.run \
    --nnodes="$SLURM_JOB_NUM_NODES" --nproc_per_node=8 \
    --rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:29500" --rdzv_id="$SLURM_JOB_ID" \
    train.py +rung="$RUNG" preset=imagenet data.root="$DATA_ROOT" trainer.batch_size=128 "$@" &
SRUN_PID=$!
wait "$SRUN_PID"
