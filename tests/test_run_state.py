"""What a checkpoint holds and what a run reports take the values they need, not the trainer:
ladder/train/run_state.py and ladder/train/run_results.py work on plain modules and dataclasses."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from ladder.train import run_results, run_state
from ladder.utils import checkpoint as ckpt

TRAIN_DIR = Path(__file__).resolve().parent.parent / "ladder" / "train"


@pytest.mark.parametrize("module", ["run_state.py", "run_results.py"])
def test_state_and_results_do_not_import_the_trainer(module):
    tree = ast.parse((TRAIN_DIR / module).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert "ladder.train.trainer" not in imported
    assert "Trainer" not in (TRAIN_DIR / module).read_text()


def _parts(seed: int) -> run_state.Parts:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    ema = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    return run_state.Parts(model, optimizer, torch.amp.GradScaler("cpu", enabled=False), ema)


def test_a_checkpoint_of_plain_parts_round_trips(tmp_path):
    saved_parts = _parts(0)
    progress = run_state.Progress(
        epoch=2, step=9, batch_in_epoch=3, epoch_loss=torch.tensor(4.5, dtype=torch.float64),
        epoch_seen=24, history=[{"epoch": 1, "top1": 10.0}], wandb_id="abc", wall_time_s=12.5,
        train_time_s=7.0, train_images=640)
    path = tmp_path / "last.pt"
    run_state.save(path, run_state.state_of("micro", saved_parts, progress), world=1)
    assert ckpt.load(path)["history"] == json.dumps(progress.history)  # the format: unchanged

    parts = _parts(1)
    with pytest.raises(ckpt.CheckpointError, match="belongs to 'micro', not 'width'"):
        run_state.load(path, "width", parts)
    loaded, used = run_state.load(path, "micro", parts)
    assert used == path and loaded == progress
    for a, b in ((saved_parts.model, parts.model), (saved_parts.ema, parts.ema)):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), key
    assert parts.optimizer.state_dict()["state"][0]["step"] == 1


def test_a_failed_run_is_reported_from_who_it_is(tmp_path, cache_dir):
    from conftest import typed_config

    run = run_results.RunInfo(typed_config("micro", ["logger=none"]), tmp_path, command="c",
                              sweep_group="g", world=2)

    class Tracker:
        exit_code = None

        def finish(self, exit_code=0):
            self.exit_code = exit_code

    tracker = Tracker()
    run_results.fail(run, ValueError("no"), [], tracker, is_main=True)
    failed = json.loads(run.result_path.read_text())
    assert failed["status"] == "failed" and failed["error"] == "ValueError: no"
    assert (failed["world_size"], failed["sweep_group"], failed["data"], failed["epochs"]) == (
        2, "g", None, None)
    assert tracker.exit_code == 1


def test_fp16_resumes_a_checkpoint_saved_without_a_grad_scaler(tmp_path):
    """A bf16 or fp32 run saves a disabled scaler's empty state, which an enabled (fp16) scaler
    refuses to load: the fp16 run starts a fresh scaler and says so."""
    path = tmp_path / "last.pt"
    progress = run_state.Progress(0, 1, 0, torch.zeros((), dtype=torch.float64), 0, [], None,
                                  1.0, 1.0, 8)
    run_state.save(path, run_state.state_of("micro", _parts(0), progress), world=1)
    fp16 = _parts(1)
    fp16.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, enabled=True)
    notes = []
    run_state.load(path, "micro", fp16, warn=notes.append)
    assert fp16.scaler.is_enabled() and fp16.scaler.get_scale() == 1024.0
    assert len(notes) == 1 and "no fp16 grad-scaler state" in notes[0] and str(path) in notes[0]

    scaled = _parts(2)  # and the other way: an fp16 checkpoint resumed in bf16 or fp32
    scaled.scaler = torch.amp.GradScaler("cpu", init_scale=512.0, enabled=True)
    run_state.save(path, run_state.state_of("micro", scaled, progress), world=1)
    plain = _parts(3)
    run_state.load(path, "micro", plain, warn=notes.append)
    assert not plain.scaler.is_enabled() and len(notes) == 1
