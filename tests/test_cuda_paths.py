"""The paths a GPU run takes, checked on the CPU where the behaviour can be reproduced here:
resume of a checkpoint whose tensors were not read onto the CPU, one visible GPU per task,
the ranks' stop agreement with a slow step, deterministic CUDA settings, evaluation of the
plain (uncompiled) module, and the compile / bf16 training paths (slow set)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, descendants, tiny_overrides
from ladder.train import run_state
from ladder.utils import runtime
from ladder.ladders.schema import TrainerConfig
from ladder.train.trainer import Trainer, train


# ----------------------------------------------------------------------------- resume
def test_resume_reads_the_checkpoint_onto_the_cpu_whatever_the_run_device(tiny, tmp_path):
    """On CUDA, ``map_location=self.device`` made the saved generator state a CUDA tensor and
    ``torch.set_rng_state`` raised. Here the run's device is the meta device: a checkpoint
    mapped to it has no data, so only a load onto the CPU can restore the generators."""
    cfg = tiny("micro")
    train(cfg, tmp_path / "run")
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    saved = torch.load(path, map_location="cpu", weights_only=True)
    t = Trainer(cfg, tmp_path / "again")
    t.setup()
    t.t0 = time.time()
    t.device = torch.device("meta")
    torch.manual_seed(12345)  # something else than the saved state
    t.load_checkpoint(path)
    assert torch.equal(torch.get_rng_state(), saved["rng"]["torch"])
    assert t.step == saved["step"] and t.epoch == saved["epoch"]


def test_generator_state_on_a_device_without_data_is_refused_by_name():
    state = run_state.rng_state()
    state["torch"] = state["torch"].to("meta")
    with pytest.raises(Exception, match="torch generator state has no data"):
        run_state.set_rng_state(state)


def test_only_this_process_cuda_generator_is_saved_and_restored(monkeypatch):
    """A checkpoint written where 8 GPUs were visible resumes where 1 is: the CUDA part of the
    state is this process's device's generator only (older checkpoints hold all of them)."""
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: torch.full((4,), 7, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: calls.append((s.tolist(), device)))
    dev = torch.device("cuda", 0)
    state = run_state.rng_state(dev)
    assert "cuda" not in state and state["cuda_device"].tolist() == [7] * 4
    run_state.set_rng_state(state, dev)
    assert calls == [([7] * 4, dev)]
    calls.clear()
    old = dict(state)
    del old["cuda_device"]
    old["cuda"] = [torch.full((4,), i, dtype=torch.uint8) for i in range(8)]  # 8 visible GPUs
    run_state.set_rng_state(old, torch.device("cuda", 0))
    assert calls == [([0] * 4, torch.device("cuda", 0))]
    calls.clear()
    run_state.set_rng_state(old, torch.device("cpu"))  # a CPU run touches no CUDA generator
    assert calls == []


# ----------------------------------------------------------------------------- devices
def test_one_visible_gpu_per_task_uses_it_whatever_the_local_rank(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert runtime.pick_device("cuda", 3) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert runtime.pick_device("auto", 6) == torch.device("cuda", 2)
    assert chosen == [0, 2]


def test_a_named_gpu_becomes_the_current_device(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert runtime.pick_device("cuda:3", 0) == torch.device("cuda", 3)
    assert chosen == [3]  # NCCL, the allocator and calls without a device use it
    with pytest.raises(RuntimeError, match=r"trainer.device=cuda:4 but only 4 CUDA device"):
        runtime.pick_device("cuda:4", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="trainer.device=cuda:1 but no CUDA device"):
        runtime.pick_device("cuda:1", 0)
    assert runtime.pick_device("cpu", 3) == torch.device("cpu") and chosen == [3]


def test_the_process_group_is_bound_to_the_chosen_device(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group",
                        lambda backend, **kw: calls.append((backend, kw)))
    assert runtime.join_process_group(torch.device("cuda", 1))
    assert runtime.join_process_group(torch.device("cpu"))
    assert calls == [("nccl", {"device_id": torch.device("cuda", 1)}), ("gloo", {})]
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    assert not runtime.join_process_group(torch.device("cuda", 1)) and len(calls) == 2


class _Joined(Exception):
    """Stops Trainer.setup once it joined the process group (the test needs nothing more)."""


def test_setup_picks_the_device_before_joining_the_process_group(tiny, tmp_path, monkeypatch):
    from ladder.train import trainer as trainer_mod

    order = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(trainer_mod, "pick_device",
                        lambda name, local_rank: order.append("device") or torch.device("cpu"))

    def init_process_group(backend, **kwargs):
        order.append("group")
        raise _Joined

    monkeypatch.setattr(torch.distributed, "init_process_group", init_process_group)
    with pytest.raises(_Joined):
        Trainer(tiny("micro"), tmp_path).setup()
    assert order == ["device", "group"]


def test_synchronize_waits_for_the_runs_own_device(monkeypatch):
    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waited.append(device))
    runtime.synchronize(torch.device("cuda", 2))
    runtime.synchronize(torch.device("cpu"))
    assert waited == [torch.device("cuda", 2)]


@pytest.mark.parametrize("native,dtype", [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_precision_is_bf16_only_where_the_card_computes_in_it(monkeypatch, native, dtype):
    asked = []

    def is_bf16_supported(including_emulation=True):
        asked.append(including_emulation)
        return native or including_emulation  # pre-Ampere: bf16 only by emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert runtime.pick_dtype("auto", torch.device("cuda", 0)) == dtype
    assert asked == [False]
    assert runtime.pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert runtime.pick_dtype("fp16", torch.device("cuda", 0)) == torch.float16


@pytest.fixture
def backend_flags():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
             torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    yield
    torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = saved[5:]
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
    torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
    if saved[4] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[4]


def test_deterministic_on_cuda_means_deterministic_kernels(backend_flags):
    runtime.configure_backends(torch.device("cuda", 0), TrainerConfig(deterministic=True))
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    runtime.configure_backends(torch.device("cuda", 0), TrainerConfig(deterministic=False))
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic


class _Flags:
    """A torch.backends namespace that records what is set on it."""

    def __init__(self, **attrs):
        self.__dict__.update(attrs, set={})

    def __setattr__(self, name, value):
        self.set[name] = value


@pytest.mark.parametrize("new_api", [True, False], ids=["fp32_precision", "allow_tf32"])
def test_tf32_is_set_through_the_api_this_torch_has(monkeypatch, new_api):
    precision = {"fp32_precision": "none"} if new_api else {}
    matmul, conv = _Flags(**precision), _Flags(**precision)
    cudnn = _Flags(conv=conv)
    monkeypatch.setattr(torch.backends.cuda, "matmul", matmul)
    monkeypatch.setattr(torch.backends, "cudnn", cudnn)
    runtime.configure_backends(torch.device("cuda", 0), TrainerConfig(deterministic=False))
    if new_api:  # torch 2.9 and later: the allow_tf32 flags are deprecated
        assert matmul.set == {"fp32_precision": "tf32"} and conv.set == {"fp32_precision": "tf32"}
        assert "allow_tf32" not in cudnn.set
    else:
        assert matmul.set == {"allow_tf32": True} and cudnn.set["allow_tf32"] is True
    assert cudnn.set["deterministic"] is False and cudnn.set["benchmark"] is True


def test_a_cpu_run_leaves_the_cuda_settings_alone(backend_flags):
    torch.use_deterministic_algorithms(False)
    runtime.configure_backends(torch.device("cpu"), TrainerConfig(deterministic=True))
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


# ----------------------------------------------------------------------------- compile
class _Compiled(torch.nn.Module):
    """What torch.compile returns, minus the compiling: a distinct module around the model."""

    def __init__(self, module):
        super().__init__()
        self.inner = module

    def forward(self, x):
        return self.inner(x)


def test_evaluation_runs_the_plain_module_when_training_compiles(tiny, tmp_path, monkeypatch):
    evaluated = []
    real_evaluate = Trainer.evaluate
    monkeypatch.setattr(torch, "compile", lambda module, **kw: _Compiled(module))
    monkeypatch.setattr(Trainer, "evaluate",
                        lambda self, module: evaluated.append(module) or real_evaluate(self, module))
    holder = {}
    real_setup = Trainer.setup

    def setup(self):
        real_setup(self)
        holder["trainer"] = self

    monkeypatch.setattr(Trainer, "setup", setup)
    train(tiny("micro", "trainer.compile=true", "recipe.ema=false"), tmp_path)
    t = holder["trainer"]
    assert isinstance(t.train_module, _Compiled)  # training stepped the "compiled" module
    assert evaluated and all(m is t.model for m in evaluated)


def test_a_compiled_run_leaves_no_compiled_graphs_to_the_next(tiny, tmp_path, monkeypatch):
    """In one process (a Hydra multirun) every compiled run's graphs would count toward
    torch.compile's recompile limit, reached after a few rungs: each run resets dynamo."""
    import torch._dynamo

    resets = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: _Compiled(module))
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    train(tiny("micro", "trainer.compile=true"), tmp_path / "a")
    assert resets == [1]
    train(tiny("micro"), tmp_path / "b")  # an eager run leaves the compiler's state alone
    assert resets == [1]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["trainer.compile=true"], ["trainer.precision=bf16"]],
                         ids=["compile", "bf16"])
def test_a_tiny_rung_trains_compiled_and_in_bf16(tiny, tmp_path, extra):
    result = train(tiny("micro", "trainer.max_steps_per_epoch=3", *extra), tmp_path)
    assert result["status"] == "completed"
    losses = [row["train_loss"] for row in result["history"]]
    assert all(0 < loss < 20 for loss in losses)
    assert result["metrics"]["val_loss"] == pytest.approx(result["metrics"]["val_loss"])  # finite
    assert result["history"][0]["val_images"] == 30
    if "trainer.precision=bf16" in extra:
        assert result["config"]["trainer"]["precision"] == "bf16"


# ----------------------------------------------------------------------------- signals
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_of(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((v[5:].decode() for v in env if v.startswith(b"RANK=")), None)


@pytest.mark.slow
def test_ranks_agree_to_stop_within_two_steps_when_steps_are_slow(tmp_path, cache_dir):
    """A 1 s step and a host sync only every 1000 steps: the stop is still agreed within two
    steps of the signal (the old rule waited for the next log step or the epoch end, 20 steps
    here), so a SIGTERM ends in a checkpoint well inside SLURM's and torchrun's grace period."""
    run = tmp_path / "run"
    overrides = [o for o in tiny_overrides(cache_dir) if not o.startswith(
        ("trainer.max_steps_per_epoch", "trainer.batch_size", "trainer.global_batch",
         "trainer.log_every"))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(REPO / "train.py"),
           "+rung=micro", *overrides, "trainer.device=cpu", "trainer.batch_size=2",
           "trainer.global_batch=4", "trainer.log_every=1000", "trainer.epochs=3",
           "trainer.checkpoint_every_steps=2", f"hydra.run.dir={run}"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    env.update(LADDER_CACHE=str(cache_dir), OMP_NUM_THREADS="1", LADDER_FAULT_STEP_SLEEP_S="1")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 180
        while not (run / "checkpoints" / "last.pt").exists():  # step 2 of a 20-step epoch
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.1)
        workers = [pid for pid in descendants(proc.pid) if _rank_of(pid) == "1"]
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGTERM)
        signalled = time.time()
        out, err = proc.communicate(timeout=60)
        stopped_after = time.time() - signalled
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert "stopped by signal" in out, f"{out[-1500:]}\n{err[-1500:]}"
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert state["epoch"] == 0 and 2 <= state["step"] <= 7, state["step"]
    assert stopped_after < 15, stopped_after
