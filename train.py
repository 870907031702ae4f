"""Train one rung of the ladder, ``python train.py +rung=<rung or milestone>``, or any timm
model under the same recipe and data, ``python train.py backbone=<timm model name>``.

Thin Hydra entry point: compose the config, convert it once to typed objects, hand it to
``ladder.train.trainer.train``. See README.md for presets, sweeps and clusters.
"""
from __future__ import annotations

import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

import ladder.ladders.conf_store  # noqa: F401  (registers the schema)
from ladder.ladders import rungs
from ladder.ladders.compose import apply_proxy, to_typed
from ladder.nets.config import ConfigError
from ladder.data.loaders import DataError
from ladder.utils.checkpoint import CheckpointError
from ladder.train.trainer import PREEMPTED_EXIT_CODE, NonFiniteLoss, Preempted, train


def export_submitit_dist_env() -> None:
    """Under Hydra's submitit launcher every SLURM task runs this job function. With more than
    one task, export torch's env:// variables (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT) from SLURM's, as torchrun would; submitit sets none of them itself."""
    if "SUBMITIT_EXECUTOR" not in os.environ or "RANK" in os.environ:
        return
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        # The trainer picks cuda:LOCAL_RANK itself, so every GPU of the node stays visible.
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def requeue_if_submitit(signum: int | None) -> None:
    """The trainer replaced submitit's handler for its time-out signal (USR1 in
    conf/hydra/launcher/slurm.yaml) while training, and restored it on the way out. Once the
    checkpoint is written, hand the signal to submitit, which requeues the job (on rank 0)."""
    if "SUBMITIT_EXECUTOR" not in os.environ:
        return
    import signal

    import submitit

    sig = submitit.JobEnvironment._usr_sig()
    handler = signal.getsignal(sig)
    if signum == sig and callable(handler):
        handler(sig, None)


def config_dirs_from_argv(argv: list[str]) -> list[str]:
    """The directories of ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR``: a user's
    own ladders and rungs, found before the package's (before Hydra composes, so a sweep's
    ``${ladder_rungs:...}`` finds them too)."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith("--config-dir="):
            dirs.append(arg.split("=", 1)[1])
    return dirs


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    # The ladder files are read from Hydra's own search path (a SLURM job has no argv to parse).
    rungs.set_search_path([s.path for s in hc.runtime.config_sources if s.schema == "file"])
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        # the proxy's settings for this rung's recipe, then every value checked, naming the key
        typed = to_typed(apply_proxy(cfg, hc.overrides.task))
    except (ConfigError, MissingMandatoryValue) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    command = "python train.py " + " ".join(hc.overrides.task)
    group = hc.sweep.dir.rstrip("/").split("/")[-1] if multirun else None
    export_submitit_dist_env()
    try:
        result = train(typed, hc.runtime.output_dir, command=command, sweep_group=group)
    except Preempted as stop:
        requeue_if_submitit(stop.signum)
        sys.exit(PREEMPTED_EXIT_CODE)
    except (ConfigError, DataError, CheckpointError, NonFiniteLoss) as err:
        # bad input or a diverged run: one sentence, no traceback
        print(f"error: {err}", file=sys.stderr)
        if multirun:
            return None  # recorded in this job's result.json; the other jobs go on
        sys.exit(1 if isinstance(err, NonFiniteLoss) else 2)
    except Exception as err:
        if multirun:  # recorded in result.json; one job's failure loses none of the others'
            print(f"[ladder] job {typed.rung or typed.backbone} seed {typed.seed} failed: {type(err).__name__}: "
                  f"{err}", file=sys.stderr)
            return None
        raise
    return result["metrics"]["top1"]


if __name__ == "__main__":
    rungs.set_search_path(config_dirs_from_argv(sys.argv[1:]))
    main()
