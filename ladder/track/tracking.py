"""Experiment tracking behind one small interface: ``log(metrics, epoch)``, ``log_step(...)``,
``summary(...)``, ``finish()``. The trainer never imports wandb; this module does, lazily.

Per-epoch metrics are plotted against ``epoch``; the training loss and lr every
``trainer.log_every`` optimizer steps as ``train/loss`` and ``train/lr`` against ``train/step``.
Each run's config also carries the rung's place in the ladder (``rung_index``, ``rung_label``
such as ``"09 kernel7"``, ``milestone``), so a W&B dashboard sorts and groups rungs in ladder
order.

W&B never stops or delays training: ``mode=auto`` goes online only with an API key *and* a W&B
host that answers within a couple of seconds, otherwise offline at once; any W&B error is
reported once and tracking continues as a no-op.
"""
from __future__ import annotations

import os
import socket
import sys
from typing import Any
from urllib.parse import urlparse

from ladder.ladders.schema import LoggerConfig


class Tracker:
    """No-op tracker (``logger=none``, non-zero ranks, or after a W&B failure)."""

    run_id: str | None = None
    run_dir: str | None = None
    mode: str = "none"

    def log(self, metrics: dict[str, Any], epoch: int) -> None:
        pass

    def log_step(self, step: int, loss_sum: Any, seen: int, lr: float) -> None:
        """The training loss averaged since the previous call (from the epoch's running sum
        ``loss_sum`` over ``seen`` images, a float or a 0-d tensor) and the lr, at optimizer
        step ``step``. A no-op here, so the trainer calls it without a host sync when tracking
        is off."""

    def summary(self, values: dict[str, Any]) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = os.path.expanduser("~/.netrc")
    try:
        return "api.wandb.ai" in open(netrc).read()
    except OSError:
        return False


def _host_reachable(timeout: float = 2.0) -> bool:
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    host, port = url.hostname or "api.wandb.ai", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_mode(mode: str) -> str:
    """auto -> online when a key and the network are there, else offline. Online (asked for in
    the config or WANDB_MODE) with an unreachable W&B host also falls back to offline at once,
    with a note, rather than letting wandb.init wait out its timeout."""
    env = os.environ.get("WANDB_MODE")
    if env in ("offline", "disabled", "online", "dryrun"):
        mode = "offline" if env == "dryrun" else env
    if mode == "auto":
        return "online" if _has_api_key() and _host_reachable() else "offline"
    if mode == "online" and not _host_reachable():
        print("[ladder] W&B host unreachable: logging offline instead (sync later with "
              "`wandb sync`)", file=sys.stderr, flush=True)
        return "offline"
    return mode


STEP = "train/step"
STEP_METRICS = ("train/loss", "train/lr")


def ladder_position(config: dict) -> dict[str, Any]:
    """``rung_index``, ``rung_label`` and ``milestone`` of the config's rung (nothing for a
    config without a known rung, e.g. a timm backbone)."""
    from ladder.ladders import rungs

    name = config.get("ladder")
    name = name.get("name") if isinstance(name, dict) else name
    try:
        ladder = rungs.load_ladder(str(name or rungs.DEFAULT_LADDER))
        rung = ladder.resolve(str(config.get("rung")))
    except ValueError:
        return {}
    i = ladder.index(rung.name)
    return {"rung_index": i, "rung_label": f"{i:02d} {rung.name}", "milestone": rung.milestone}


class WandbTracker(Tracker):
    def __init__(self, cfg: LoggerConfig, *, name: str, group: str | None, config: dict,
                 run_dir: str, run_id: str | None, tags: list[str]):
        import wandb

        self._wandb = wandb
        self.mode = resolve_mode(cfg.mode)
        os.makedirs(run_dir, exist_ok=True)
        config = {**config, **ladder_position(config)}
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, group=group, name=name,
            job_type=cfg.job_type, tags=tags, config=config, dir=run_dir, mode=self.mode,
            id=run_id, resume="allow" if run_id else None, reinit="finish_previous",
            settings=wandb.Settings(init_timeout=30, silent=True, console="off"))
        self.run_id = self.run.id
        self.run_dir = self.run.dir
        # Per-epoch metrics against the epoch, per-step ones against the optimizer step, not
        # W&B's internal step (defined per key, not with a "*" glob, so the two don't mix).
        self.run.define_metric("epoch")
        self.run.define_metric(STEP)
        for key in STEP_METRICS:
            self.run.define_metric(key, step_metric=STEP)
        self._epoch_keys: set[str] = set()
        self._last = (0.0, 0)  # (loss sum, images) of the epoch at the previous log_step

    def log(self, metrics: dict[str, Any], epoch: int) -> None:
        for key in set(metrics) - self._epoch_keys:
            self.run.define_metric(key, step_metric="epoch")
            self._epoch_keys.add(key)
        self.run.log({"epoch": epoch, **metrics})

    def log_step(self, step: int, loss_sum: Any, seen: int, lr: float) -> None:
        total = float(loss_sum)
        last_total, last_seen = self._last if seen >= self._last[1] else (0.0, 0)  # new epoch
        self._last = (total, seen)
        if seen > last_seen:
            self.run.log({STEP: step, "train/loss": (total - last_total) / (seen - last_seen),
                          "train/lr": lr})

    def summary(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.run.summary[key] = value

    def finish(self, exit_code: int = 0) -> None:
        self.run.finish(exit_code=exit_code)


class SafeTracker(Tracker):
    """Wraps a tracker so its errors are reported once and never reach the training loop."""

    def __init__(self, inner: Tracker):
        self.inner = inner
        self.run_id, self.run_dir, self.mode = inner.run_id, inner.run_dir, inner.mode

    def _call(self, fn, *args) -> None:
        if self.inner is None:
            return
        try:
            fn(*args)
        except Exception as err:  # a tracker must not stop training
            print(f"[ladder] W&B error, tracking stops for this run: {type(err).__name__}: {err}",
                  file=sys.stderr, flush=True)
            self.inner = None

    def log(self, metrics, epoch):
        self._call(lambda: self.inner.log(metrics, epoch))

    def log_step(self, step, loss_sum, seen, lr):
        self._call(lambda: self.inner.log_step(step, loss_sum, seen, lr))

    def summary(self, values):
        self._call(lambda: self.inner.summary(values))

    def finish(self, exit_code: int = 0):
        self._call(lambda: self.inner.finish(exit_code))


def create_tracker(cfg: LoggerConfig, **kwargs) -> Tracker:
    """The configured tracker; a W&B start-up failure falls back to no tracking, with a note."""
    if cfg.name == "none" or cfg.mode == "disabled":
        return Tracker()
    try:
        return SafeTracker(WandbTracker(cfg, **kwargs))
    except Exception as err:
        print(f"[ladder] W&B could not start ({type(err).__name__}: {err}); training continues "
              f"without it (results are still written to result.json)", file=sys.stderr, flush=True)
        return Tracker()
