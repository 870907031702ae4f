"""Stopping on a signal: SIGTERM / SIGUSR1 set a flag, and every rank agrees when to stop.

SLURM and torchrun send SIGTERM, then SIGKILL about 30 s later, and not always to every rank
at the same instant. One process checks its flag after every optimizer step. Under torchrun
the ranks must stop after the same step (the checkpoint is a collective), so each step every
rank starts a non-blocking all-reduce (MAX) of its flag and reads the one started a step
earlier: all ranks read the same agreed value at the same step, with no host sync of the
current step's work, and a signal ends in a checkpoint within two steps of its arrival.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: "try again"; the checkpoint is written, requeue me


class Preempted(Exception):
    """Raised after a checkpoint was written on SIGTERM / SIGUSR1 (``signum``)."""

    def __init__(self, signum: int | None = None):
        super().__init__(signum)
        self.signum = signum


class StopFlag:
    """SIGTERM / SIGUSR1 set a flag; the loop checkpoints at the next step boundary and exits."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, getattr(signal, "SIGUSR1", None)):
            if sig is not None:
                self._previous[sig] = signal.signal(sig, self._handle)
                # Restart interrupted system calls: a signal landing inside a gloo collective
                # or a data-loader read must only set the flag, not fail the call (EINTR).
                signal.siginterrupt(sig, False)

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class StopAgreement:
    """Whether to stop after this optimizer step, the same answer on every rank.

    :meth:`poll` is called once per optimizer step on every rank (the same count everywhere,
    which is what keeps the collectives in step). Under torchrun it returns the flag agreed by
    the all-reduce started at the previous poll, then starts the next one; reading it waits
    only for that earlier, small collective (on CUDA: an event recorded a step ago)."""

    def __init__(self, flag: StopFlag, world: int, device: torch.device):
        self.flag, self.world, self.device = flag, world, device
        self._pending = None  # (work, device buffer, host copy, event) of the previous poll
        if world > 1:
            self._buffers = [torch.zeros(1, dtype=torch.int32, device=device) for _ in range(2)]
            pin = device.type == "cuda"
            self._hosts = [torch.zeros(1, dtype=torch.int32, pin_memory=pin) for _ in range(2)]
            self._turn = 0

    def poll(self) -> bool:
        if self.world == 1:
            return self.flag.signum is not None
        agreed = self._read_pending()
        buf, host = self._buffers[self._turn], self._hosts[self._turn]
        self._turn ^= 1
        buf.fill_(self.flag.signum or 0)  # a kernel with a host scalar: no copy, no sync
        work = dist.all_reduce(buf, op=dist.ReduceOp.MAX, async_op=True)
        event = None
        if self.device.type == "cuda":
            work.wait()  # the current stream waits for the collective; the host does not
            host.copy_(buf, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        self._pending = (work, buf, host, event)
        if agreed:
            self.flag.signum = self.flag.signum or agreed
        return bool(agreed)

    def _read_pending(self) -> int:
        if self._pending is None:
            return 0
        work, buf, host, event = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()
            return int(host[0])
        work.wait()
        return int(buf[0])

    def drain(self) -> None:
        """Finish the last all-reduce (at the end of training), so none is left in flight."""
        if self.world > 1:
            agreed = self._read_pending()
            if agreed:
                self.flag.signum = self.flag.signum or agreed


@dataclass
class FaultInjection:
    """Faults the fault tests inject (tests/test_faults.py, tests/test_cuda_paths.py), from the
    environment: die (SIGKILL) or be asked to stop (SIGTERM) right after a given optimizer
    step, or make every step slow."""

    kill_at: int = -1
    term_at: int = -1
    step_sleep_s: float = 0.0

    @classmethod
    def from_env(cls) -> "FaultInjection":
        env = os.environ.get
        return cls(int(env("LADDER_FAULT_KILL_AT_STEP", -1)),
                   int(env("LADDER_FAULT_SIGTERM_AT_STEP", -1)),
                   float(env("LADDER_FAULT_STEP_SLEEP_S", 0)))

    def after_step(self, step: int) -> None:
        if self.step_sleep_s:
            time.sleep(self.step_sleep_s)
        if step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if step == self.term_at:
            os.kill(os.getpid(), signal.SIGTERM)
