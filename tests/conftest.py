"""Shared fixtures: the real Hydra config, composed and shrunk for CPU tests (tiny widths,
a few steps, no W&B, tmp dirs), like lightning-hydra-template's conftest.

What many tests only read is built once per session: the demo dataset (``cache_dir``) and
one tiny finished run with its offline W&B files (``finished_run``)."""
from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Never talk to W&B's servers from tests.
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)

# One compute thread, here and in every process the tests start (train.py, torchrun, sweeps
# inherit it; set before torch is imported). The tests' networks are tiny: a second thread only
# adds a hand-off per op, and on a busy 2-core machine every op then waits for a free core (a
# tiny run: 0.6 s on one thread, 3 to 26 s on two, measured while other jobs ran). The trainer's
# CPU path on two threads (channels_last) is still trained by tests/test_train.py's thread test.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A session-wide cache (the small demo dataset is generated here once)."""
    path = tmp_path_factory.mktemp("ladder-cache")
    os.environ["LADDER_CACHE"] = str(path)
    return path


def tiny_overrides(cache_dir: Path) -> list[str]:
    """Hydra overrides that make any rung train in about a second on a CPU."""
    return [
        "logger=none",
        f"data.root={cache_dir}",
        "data.train_per_class=8", "data.val_per_class=3",
        "data.num_workers=0", "data.image_size=32",
        "model.width_multiplier=0.0625", "model.stem_stride=2",
        "trainer.batch_size=8", "trainer.global_batch=16",
        "trainer.epochs=1", "trainer.max_steps_per_epoch=2",
        "trainer.by_recipe.torchvision.epochs=1",  # the presets give the SGD recipes their own
        "trainer.by_recipe.tricks.epochs=1",  # epochs
        "trainer.log_every=1", "trainer.progress=false",
    ]


def typed_config(rung: str | None, overrides):
    """What train.py hands to ``train``: the composed config, typed and checked."""
    from ladder.ladders.compose import compose_config, to_typed

    return to_typed(compose_config(rung, list(overrides)))


@pytest.fixture
def tiny(cache_dir):
    """compose(rung, *extra) -> typed TrainConfig for a tiny run."""
    from ladder.ladders.compose import compose_config

    def make(rung: str = "micro", *extra: str):
        cfg = compose_config(rung, tiny_overrides(cache_dir) + list(extra))
        return OmegaConf.to_object(cfg)

    return make


# ----------------------------------------------------------------------------- one finished run
# The milestone alias "depthwise" (rung "width", step 5), seed 3, 2 epochs of 2 steps, logged
# to an offline W&B run: the result.json, checkpoint and W&B tests read it, none retrains it.
FINISHED_RUN = ("depthwise", ["seed=3", "trainer.epochs=2", "logger=wandb",
                              "logger.project=ladder-test", "logger.group=g1"])


@dataclass(frozen=True)
class FinishedRun:
    dir: Path
    result: dict  # what train() returned
    overrides: list[str]  # compose_config(FINISHED_RUN[0], overrides) is its config

    def copy_to(self, dest: Path) -> Path:
        """A copy to change (resume, retrain): the shared run stays as it finished."""
        shutil.copytree(self.dir, dest, ignore=shutil.ignore_patterns("wandb"))
        return dest


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, cache_dir) -> FinishedRun:
    from ladder.train.trainer import train

    home = tmp_path_factory.mktemp("home")  # no ~/.netrc key: logger.mode=auto is offline
    run_dir = tmp_path_factory.mktemp("finished-run") / "run"
    overrides = tiny_overrides(cache_dir) + FINISHED_RUN[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        mp.delenv("WANDB_API_KEY", raising=False)
        mp.setenv("HOME", str(home))
        result = train(typed_config(FINISHED_RUN[0], overrides), run_dir)
    return FinishedRun(run_dir, result, overrides)


def offline_wandb_run(folder: Path) -> tuple[dict, Path]:
    """The one offline W&B run under ``folder``: (its records, its files folder). W&B's service
    process may still be writing the transaction log when ``finish()`` returns in-process, so
    wait (up to 30 s) for its exit record, the last one it writes."""
    from wandb_records import read_records

    runs = list((folder / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, f"one offline W&B run per job: {runs}"
    deadline = time.time() + 30
    while True:
        logged = read_records(next(runs[0].glob("run-*.wandb")))
        if logged["exit_code"] is not None or time.time() > deadline:
            return logged, runs[0] / "files"
        time.sleep(0.5)


def write_image_folder(root: Path, classes=("a", "b", "c"), train=6, val=3, size=24) -> Path:
    """A real ImageNet-layout folder of JPEGs, written by the test."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for i, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for j in range(n):
                arr = rng.integers(0, 60, (size, size, 3)) + 60 * i
                Image.fromarray(arr.astype("uint8")).save(d / f"{j}.jpg")
    return root


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: torchrun puts each worker in its own session,
    so killing the process group is not enough)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
