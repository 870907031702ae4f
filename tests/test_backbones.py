"""Any timm backbone under the rung machinery's recipe, data and results (ladder/train/subject.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, tiny_overrides
from ladder.ladders.compose import compose_config, to_typed
from ladder.nets.config import ConfigError
from ladder.train.trainer import train


BACKBONES = {"resnet10t": [], "vit_tiny_patch16_224": ["backbone_patch_size=8"]}


def _backbone_cfg(cache_dir, name, *extra):
    return to_typed(compose_config(None, [*tiny_overrides(cache_dir), f"backbone={name}",
                                          "recipe=modern", *extra]))


@pytest.fixture(scope="module")
def backbone_runs(tmp_path_factory, cache_dir) -> tuple[Path, dict]:
    """resnet10t and vit_tiny_patch16_224 (8 px patches, a 4 x 4 grid at 32 px), seeds 0 and 1,
    latency measured on seed 0: (the runs' folder, what train() returned for each run)."""
    runs, results = tmp_path_factory.mktemp("backbones"), {}
    for name, extra in BACKBONES.items():
        for seed in (0, 1):
            cfg = _backbone_cfg(cache_dir, name, f"seed={seed}", *extra,
                                f"trainer.measure_latency={seed == 0}")
            results[name, seed] = train(cfg, runs / name / f"seed{seed}")
    return runs, results


def test_a_vit_trains_at_the_presets_resolution_with_the_rung_results(cache_dir, backbone_runs):
    cfg = _backbone_cfg(cache_dir, "vit_tiny_patch16_224", *BACKBONES["vit_tiny_patch16_224"],
                        "trainer.measure_latency=true")
    assert cfg.rung is None and cfg.data.image_size == 32
    runs, results = backbone_runs
    result = results["vit_tiny_patch16_224", 0]  # trained with this config
    assert result["config"] == asdict(cfg)
    assert result["status"] == "completed"
    assert result["backbone"] == "vit_tiny_patch16_224" and result["rung"] is None
    model_cfg = result["config"]
    assert model_cfg["backbone"] == "vit_tiny_patch16_224" and model_cfg["recipe"]["name"] == "modern"
    # Built at 32 px with 8 px patches (a 4 x 4 grid) and the data's 10 classes; the reference
    # figures are timm's model at its own 224 px and 1000 classes.
    assert result["trained_params"] < result["params"]
    assert 0 < result["trained_gflops"] < result["gflops"] / 10
    assert set(result["latency_ms"]) == {"1", "64"}
    assert 0 < result["latency_ms"]["1"] < result["latency_ms"]["64"]
    assert result["latency_device"]
    saved = json.loads((runs / "vit_tiny_patch16_224" / "seed0" / "result.json").read_text())
    assert saved["latency_ms"] == result["latency_ms"]


def test_a_cnn_backbone_resumes_from_its_own_checkpoint_only(cache_dir, backbone_runs, tmp_path):
    runs, results = backbone_runs
    cfg = _backbone_cfg(cache_dir, "resnet10t", "seed=1", "trainer.measure_latency=false")
    first = results["resnet10t", 1]  # trained with this config
    assert first["backbone"] == "resnet10t" and "latency_ms" not in first
    shutil.copytree(runs / "resnet10t" / "seed1", tmp_path / "a")
    (tmp_path / "a" / "result.json").unlink()  # rerun: resumes, the model must match
    again = train(cfg, tmp_path / "a")
    assert again["metrics"]["top1"] == first["metrics"]["top1"]
    other = _backbone_cfg(cache_dir, "vit_tiny_patch16_224", "backbone_patch_size=8",
                          "trainer.resume=" + str(tmp_path / "a" / "checkpoints" / "last.pt"))
    with pytest.raises(Exception, match="belongs to 'resnet10t', not 'vit_tiny_patch16_224'"):
        train(other, tmp_path / "b")


# A fresh process sets up a backbone run and prints a digest of its first conv's initial weights.
FIRST_CONV = """
import hashlib, sys
from ladder.ladders.compose import compose_config, to_typed
from ladder.train.trainer import Trainer

t = Trainer(to_typed(compose_config(None, sys.argv[2:])), sys.argv[1])
t.setup()
print(hashlib.sha256(t.model.conv1.weight.detach().numpy().tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_a_backbones_initial_weights_follow_the_seed(cache_dir, tmp_path):
    def first_conv(seed: int) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", FIRST_CONV, str(tmp_path / f"run{seed}"),
             *tiny_overrides(cache_dir), "backbone=resnet18", "recipe=modern", f"seed={seed}"],
            cwd=REPO, capture_output=True, text=True, timeout=240,
            env={**os.environ, "LADDER_CACHE": str(cache_dir)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.split()[-1]

    seed0 = first_conv(0)
    assert first_conv(0) == seed0  # another process, the same weights
    assert first_conv(1) != seed0


def test_bad_backbone_choices_are_one_clear_sentence(cache_dir):
    from ladder.train.subject import subject_of

    with pytest.raises(ConfigError, match="not a timm model; similar names: .*convnext_tiny"):
        subject_of(_backbone_cfg(cache_dir, "convnext_tinny"))
    with pytest.raises(ConfigError, match="both given"):
        to_typed(compose_config("micro", [*tiny_overrides(cache_dir), "backbone=resnet10t"]))
    with pytest.raises(ConfigError, match="backbone=<timm model name>"):
        to_typed(compose_config(None, tiny_overrides(cache_dir)))


def test_pretrained_offline_fails_with_one_sentence(cache_dir, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from ladder.train.subject import PretrainedUnavailable

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no cached weights either
    cfg = _backbone_cfg(cache_dir, "resnet10t", "pretrained=true")
    with pytest.raises(PretrainedUnavailable) as err:
        train(cfg, tmp_path / "run")
    message = str(err.value)
    assert message.startswith("pretrained=true: could not load timm's weights for resnet10t (")
    assert "\n" not in message and "pretrained=false" in message
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed" and "pretrained=true" in result["error"]


def test_hydra_names_the_run_dir_after_the_backbone(cache_dir):
    cfg = compose_config(None, ["backbone=resnet10t", "+sweep=backbones"],
                         return_hydra_config=True)
    assert OmegaConf.to_container(cfg.hydra.run, resolve=True)["dir"] == \
        "outputs/demo/resnet10t/seed0"
    assert cfg.hydra.sweep.dir == "multirun/demo-backbones"
    assert cfg.hydra.sweeper.params.backbone == "resnet50,convnext_tiny,vit_small_patch16_224"
    assert cfg.recipe.name == "modern" and cfg.trainer.measure_latency


def test_the_backbones_table_from_real_runs(backbone_runs, tmp_path):
    from ladder.report.backbones import write_backbones

    runs = tmp_path / "runs"  # the runs' result.json files, and one that is not JSON
    for found in backbone_runs[0].rglob("result.json"):
        dest = runs / found.relative_to(backbone_runs[0])
        dest.parent.mkdir(parents=True)
        shutil.copy(found, dest)
    (runs / "junk").mkdir()
    (runs / "junk" / "result.json").write_text("{not json")
    md = write_backbones(runs, tmp_path / "report").read_text()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in md.splitlines()
            if line.startswith("| resnet10t") or line.startswith("| vit_tiny")}
    assert set(rows) == {"resnet10t", "vit_tiny_patch16_224"}
    assert rows["resnet10t"][1] == "2" and rows["resnet10t"][3] == "reference"
    assert "\u00b1" in rows["vit_tiny_patch16_224"][2]
    assert rows["vit_tiny_patch16_224"][3].count("[") == 1  # a Welch interval vs resnet10t
    assert all(cell.strip("| ") != "-" for cell in rows["resnet10t"][4:])  # every figure there
    assert "demo at 32 px, recipe modern" in md
