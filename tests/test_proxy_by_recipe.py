"""The proxy's per-recipe settings (``proxy.by_recipe``, conf/proxy/rules.yaml): applied to every
rung of their recipe and no other, a key on the command line wins, and a bad key fails in one
sentence that names it; the run records the values it trained with where they land."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_overrides
from ladder.ladders.compose import apply_proxy, compose_config, override_keys, to_typed
from ladder.nets.config import ConfigError
from ladder.report.duplicates import settings_diff
from ladder.report.load import RunResult

REPO = Path(__file__).resolve().parent.parent
MODERN = ["+proxy.by_recipe.modern.recipe.lr=0.002",
          "+proxy.by_recipe.modern.model.layer_scale_init=0.1"]
BASE = ["preset=imagenette_cpu", "data.root=unused", "logger=none"]


@pytest.mark.parametrize("rung", ["recipe", "depthwise", "gelu", "micro"])
def test_a_recipes_settings_reach_every_rung_of_that_recipe(rung):
    cfg = to_typed(compose_config(rung, BASE + MODERN))
    assert cfg.recipe.name == "modern"
    assert (cfg.recipe.lr, cfg.model.layer_scale_init) == (0.002, 0.1)


def test_a_recipes_settings_leave_the_other_recipe_alone():
    plain = to_typed(compose_config("resnet50", BASE))
    cfg = to_typed(compose_config("resnet50", BASE + MODERN))
    assert cfg.recipe.name == "torchvision" and cfg.recipe.lr == plain.recipe.lr


def test_the_command_line_wins_over_the_proxy():
    cfg = to_typed(compose_config("micro", BASE + MODERN + ["recipe.lr=0.001"]))
    assert (cfg.recipe.lr, cfg.model.layer_scale_init) == (0.001, 0.1)


def test_override_keys_strips_hydras_prefixes():
    assert override_keys(["+recipe.lr=1", "++model.x=2", "~data.y", "seed=3", "-m"]) == {
        "recipe.lr", "model.x", "data.y", "seed"}


@pytest.mark.parametrize("override, named", [
    ("+proxy.by_recipe.modern.model.no_such_key=1", "proxy.by_recipe.modern.model.no_such_key"),
    ("+proxy.by_recipe.modern.trainer.epochs=3", "proxy.by_recipe.modern.trainer"),
])
def test_a_bad_proxy_key_fails_naming_it(override, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        to_typed(compose_config("micro", BASE + [override]))


def test_applying_twice_changes_nothing():
    cfg = compose_config("micro", BASE + MODERN + ["recipe.lr=0.001"])
    again = apply_proxy(cfg.copy(), ["recipe.lr=0.001"])
    assert again == cfg


def test_the_proxy_block_itself_is_not_a_setting_difference():
    """Two runs that trained alike, one recording the proxy block that set its lr and one set
    on the command line, trained the same thing: the report's duplicate check says so."""
    a = to_typed(compose_config("micro", BASE + MODERN))
    b = to_typed(compose_config("micro", BASE + ["recipe.lr=0.002", "model.layer_scale_init=0.1"]))
    from dataclasses import asdict

    def run(cfg) -> RunResult:
        return RunResult(rung="micro", seed=0, status="completed", dataset="imagenette",
                         image_size=32, experiment="x", config=asdict(cfg))

    ra, rb = run(a), run(b)
    assert settings_diff(ra, rb) == []
    rc = run(to_typed(compose_config("micro", BASE)))
    assert "recipe.lr" in settings_diff(ra, rc)


@pytest.mark.slow
def test_train_py_applies_each_recipes_settings_and_records_them(tmp_path, cache_dir):
    """Hydra's entry point, a two-rung multirun (one rung per recipe): the per-recipe values
    land in each run's recorded config, and a value on the command line beats the proxy's."""
    args = ["-m", "+rung=resnet50,micro", *tiny_overrides(cache_dir), "experiment=px",
            *MODERN, "proxy.by_recipe.torchvision.recipe.lr=0.3",
            "+proxy.by_recipe.modern.model.drop_path_rate=0.3", "model.drop_path_rate=0.0"]
    env = {**os.environ, "LADDER_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = {r: json.loads((tmp_path / f"multirun/px/{r}/seed0/result.json").read_text())["config"]
            for r in ("resnet50", "separate_downsampling")}
    micro, r50 = runs["separate_downsampling"], runs["resnet50"]
    assert (micro["recipe"]["lr"], micro["model"]["layer_scale_init"]) == (0.002, 0.1)
    assert micro["model"]["drop_path_rate"] == 0.0
    assert r50["recipe"]["lr"] == 0.3
