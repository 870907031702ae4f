"""What two gloo ranks must agree on besides the weights: a loss gone bad on one rank only, the
EMA's BatchNorm statistics at evaluation, the generators after a resume, and the process group
ending with the run. Each test starts two rank processes (torch.multiprocessing, spawn) that
run the trainer in-process, so a rank can be changed from the test (a NaN on rank 1 only)."""
from __future__ import annotations

import json
import os
import queue
import random
import socket
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from conftest import tiny_overrides, typed_config

HANG_S = 240  # a hung collective shows as a run past this (generous: a busy 2-core machine)
CPU = ["trainer.device=cpu", "model.drop_path_rate=0", "recipe.mixup=0", "recipe.cutmix=0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(fn, rank: int, world: int, port: int, results, args) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    try:
        results.put((rank, "ok", fn(rank, *args)))
    except BaseException as err:  # reported to the test, which fails naming the rank
        results.put((rank, "error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))


def run_ranks(fn, *args, world: int = 2, timeout: float = HANG_S) -> list:
    """``fn(rank, *args)`` on ``world`` gloo ranks (torchrun's environment, one process each);
    returns each rank's return value in rank order. A rank that raises, or a run past
    ``timeout`` (a hung collective), fails the test."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(fn, rank, world, port, results, args))
             for rank in range(world)]
    for proc in procs:
        proc.start()
    got, deadline = {}, time.time() + timeout
    try:
        while len(got) < world:
            try:
                rank, status, value = results.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                pytest.fail(f"ranks {sorted(set(range(world)) - set(got))} did not finish in "
                            f"{timeout:.0f}s (a hung collective?)")
            if status == "error":
                pytest.fail(f"rank {rank} failed: {value}")
            got[rank] = value
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return [got[rank] for rank in range(world)]


def _record_group_end(out: Path, rank: int) -> None:
    """Leave a file ``ended-<rank>`` in ``out`` when this process destroys its process group."""
    import torch.distributed as dist

    destroy = dist.destroy_process_group

    def recorded(*args, **kwargs):
        destroy(*args, **kwargs)
        (out / f"ended-{rank}").touch()

    dist.destroy_process_group = recorded


def _group_ended_on_every_rank(out: Path, world: int = 2) -> bool:
    return all((out / f"ended-{rank}").exists() for rank in range(world))


# ----------------------------------------------------------------------------- a bad loss
def _nan_on_rank_1(rank: int, cfg, out: Path) -> dict:
    import torch.distributed as dist

    from ladder.train import trainer as trainer_mod

    _record_group_end(out, rank)
    trainer_mod.Trainer.inject_nan_at = 0 if rank == 1 else None  # rank 1's first step only
    try:
        trainer_mod.train(cfg, out)
        stopped = None
    except trainer_mod.NonFiniteLoss as err:
        stopped = str(err)
    return {"stopped": stopped, "group_kept": dist.is_initialized()}


def test_a_bad_loss_on_one_rank_stops_every_rank_with_one_failed_result(tmp_path, cache_dir):
    cfg = typed_config("micro", [*tiny_overrides(cache_dir), *CPU, "trainer.batch_size=8",
                                 "trainer.epochs=2"])
    ranks = run_ranks(_nan_on_rank_1, cfg, tmp_path)
    for rank in ranks:  # both stop at the same check, naming rank 1's step
        assert rank["stopped"] and "NaN or inf at optimizer step 0 " in rank["stopped"]
        assert rank["group_kept"]  # for a next run in the process; ended at exit:
    assert _group_ended_on_every_rank(tmp_path)
    failed = json.loads((tmp_path / "result.json").read_text())
    assert failed["status"] == "failed" and failed["world_size"] == 2
    assert failed["error"].startswith("NonFiniteLoss: ") and "step 0 " in failed["error"]


# ----------------------------------------------------------------------------- EMA, resume
def _digest(values) -> list[float]:
    return [float(v.double().sum()) for v in values]


def _rng_digest() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state().tolist(), "numpy": [int(np_state[2]),
                                                               *np_state[1][:8].tolist()],
            "python": list(random.getstate()[1][:8])}


def _ema_then_resume(rank: int, cfg, resume_cfg, out: Path) -> dict:
    import torch.distributed as dist

    from ladder.train import trainer as trainer_mod

    seen = {}
    real_run = trainer_mod.Trainer.run

    def run(self):
        seen["trainer"] = self
        return real_run(self)

    trainer_mod.Trainer.run = run
    _record_group_end(out, rank)
    trainer_mod.train(cfg, out)
    t = seen["trainer"]
    ema = t.ema.module
    done = {"ema_buffers": _digest(ema.buffers()), "model_buffers": _digest(t.model.buffers()),
            "group_kept": dist.is_initialized()}
    again = trainer_mod.Trainer(resume_cfg, out)  # what a rerun with more epochs does first,
    again.setup()  # in the same group
    again.load_checkpoint(again.ckpt_path)
    done["rng"] = _rng_digest()
    return done


@pytest.fixture(scope="module")
def ema_ranks(tmp_path_factory, cache_dir) -> tuple[list[dict], Path]:
    """resnet50 (BatchNorm) with EMA on two ranks, each seeing its own images; then each rank
    resumes the run's checkpoint."""
    out = tmp_path_factory.mktemp("ema-ranks")
    overrides = [*tiny_overrides(cache_dir), *CPU, "trainer.batch_size=8", "recipe.ema=true",
                 "recipe.ema_decay=0.5", "trainer.eval_ema=true"]
    cfg = typed_config("resnet50", overrides)
    resume = typed_config("resnet50", [*overrides, "trainer.epochs=2"])
    return run_ranks(_ema_then_resume, cfg, resume, out), out


def test_the_ema_is_evaluated_with_rank_0s_batchnorm_statistics(ema_ranks):
    (rank0, rank1), out = ema_ranks
    assert rank0["model_buffers"] == rank1["model_buffers"]
    assert rank0["ema_buffers"] == rank1["ema_buffers"]
    assert rank0["group_kept"] and rank1["group_kept"]  # the next run in the process uses it
    assert _group_ended_on_every_rank(out)  # ended when the process did
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed" and result["metrics"]["ema_top1"] is not None


def test_after_a_resume_each_rank_draws_its_own_random_numbers(ema_ranks):
    (rank0, rank1), out = ema_ranks
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["rng"]
    assert rank0["rng"]["torch"] == saved["torch"].tolist()  # rank 0 continues the saved ones
    assert rank0["rng"]["numpy"][1:] == saved["numpy"]["key"][:8].tolist()
    assert rank0["rng"]["python"] == list(saved["python"][1][:8])
    for name in ("torch", "numpy", "python"):  # rank 1 is offset, as at a fresh start
        assert rank0["rng"][name] != rank1["rng"][name], name
