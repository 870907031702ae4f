"""Step cost of budgets against a reference budget, measured in the same run (scripts/preset_cost.py).

Each setting is a space-separated list of Hydra overrides; the first is the reference. For each
rung and setting: the model at that setting's image size, width and stem, one training step
(forward, backward, AdamW) on a random batch, the settings taking turns over ``repeats`` rounds,
timed in process CPU time with one compute thread (steady on a shared machine). The median ms
per step and the ratio to the reference are printed and returned. It measures the model's step
only: decoding and augmentation are not in it.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import OmegaConf

from ladder.ladders.compose import compose_config
from ladder.train.subject import subject_of


def _step(model, opt, x, y) -> None:
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def step_cost(rungs: Sequence[str], settings: Sequence[str], *, batch: int = 64,
              repeats: int = 5, json_path: Path | str | None = None) -> list[dict]:
    """One row per (rung, setting): ``ms_per_step`` and ``ratio_to_reference`` (the first
    setting); also written to ``json_path`` when given."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cases = {}
    for rung in rungs:
        for setting in settings:
            cfg = OmegaConf.to_object(compose_config(
                rung, ["data.root=unused", "logger=none", *setting.split()]))
            model = subject_of(cfg).build()
            size = cfg.data.image_size
            cases[(rung, setting)] = (model, torch.optim.AdamW(model.parameters(), 1e-3),
                                      torch.randn(batch, 3, size, size),
                                      torch.randint(0, cfg.model.num_classes, (batch,)))
    times: dict = {key: [] for key in cases}
    for case in cases.values():
        _step(*case)  # warm-up
    for _ in range(repeats):
        for key, case in cases.items():
            t0 = time.process_time()
            _step(*case)
            times[key].append(time.process_time() - t0)
    rows = []
    for rung in rungs:
        ref = statistics.median(times[(rung, settings[0])])
        for setting in settings:
            med = statistics.median(times[(rung, setting)])
            rows.append({"rung": rung, "setting": setting, "ms_per_step": round(1000 * med, 1),
                         "ratio_to_reference": round(med / ref, 3)})
            print(f"{rung:10s} {setting:40s} {1000 * med:8.0f} ms/step  x{med / ref:.2f}",
                  flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps({"batch": batch, "repeats": repeats, "threads": 1,
                                               "clock": "process CPU time", "rows": rows},
                                              indent=2) + "\n")
    return rows
