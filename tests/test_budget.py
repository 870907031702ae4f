"""The budget axis (``trainer.budget`` scales every rung's training length alike) and the
dataset identity every run records (what was read, not only the preset's data group)."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import write_image_folder
from ladder.ladders.compose import compose_config, to_typed
from ladder.nets.config import ConfigError
from ladder.train.optim import make_budget
from ladder.train.trainer import train


def _budget(rung: str, *overrides: str):
    cfg = to_typed(compose_config(rung, ["preset=imagenette_cpu", "data.root=unused", *overrides]))
    return make_budget(cfg.recipe, cfg.trainer)


@pytest.mark.parametrize("rung", ["resnet50", "micro"])
def test_budget_multiplies_both_recipes_epochs_and_stretches_their_schedules(rung):
    one, two, half = _budget(rung), _budget(rung, "trainer.budget=2"), _budget(rung, "trainer.budget=0.5")
    assert two.epochs == 2 * one.epochs and half.epochs * 2 == one.epochs
    assert two.warmup_epochs == pytest.approx(2 * one.warmup_epochs)
    assert two.step_epochs == pytest.approx(2 * one.step_epochs)
    assert (two.lr, two.global_batch) == (one.lr, one.global_batch)  # only the length changes


def test_the_two_recipes_keep_their_epoch_ratio_at_every_budget():
    for budget in (1, 2, 4):
        tv, modern = _budget("resnet50", f"trainer.budget={budget}"), _budget("micro", f"trainer.budget={budget}")
        assert tv.epochs == 3 * modern.epochs


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_budget_of_zero_or_below_fails_in_one_sentence(value):
    with pytest.raises(ConfigError, match=rf"trainer.budget={value}.*must be a number > 0"):
        _budget("micro", f"trainer.budget={value}")


def test_budget_is_recorded_with_the_optimizer_steps(tiny, tmp_path):
    one = train(tiny("micro"), tmp_path / "one")
    two = train(tiny("micro", "trainer.budget=2"), tmp_path / "two")
    assert (one["budget"], two["budget"]) == (1.0, 2.0)
    assert two["epochs"] == 2 * one["epochs"]
    assert two["optimizer_steps"] == 2 * one["optimizer_steps"] > 0


def test_two_image_folders_under_one_preset_get_two_identities(tiny, tmp_path, capsys):
    a = write_image_folder(tmp_path / "a", classes=("cat", "dog", "fox"))
    b = write_image_folder(tmp_path / "b", classes=("car", "bus", "van"))
    runs = {}
    for name, root in (("a", a), ("b", b)):
        cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
                   "trainer.batch_size=4", "trainer.global_batch=4")
        runs[name] = train(cfg, tmp_path / f"run-{name}")
    ida, idb = runs["a"]["data"], runs["b"]["data"]
    assert runs["a"]["dataset"] == runs["b"]["dataset"] == "imagefolder"  # the same group...
    assert ida["id"] != idb["id"]  # ...but not the same data
    assert ida["classes"] == ["cat", "dog", "fox"] and ida["train_images"] == 18
    assert ida["val_images"] == 9 and ida["id"].startswith("imagefolder-")
    assert f"data {ida['id']}" in capsys.readouterr().out
    again = train(tiny("micro", "data=imagefolder", f"data.root={a}", "data.num_classes=3",
                       "trainer.batch_size=4", "trainer.global_batch=4", "seed=1"), tmp_path / "a1")
    assert again["data"]["id"] == ida["id"]  # the same folder, the same identity


@pytest.mark.parametrize("preset,maps", [("imagenette_cpu", [16, 8, 4, 2]),
                                         ("imagenette_cpu64", [32, 16, 8, 4])])
@pytest.mark.parametrize("rung", ["resnet50", "micro"])
def test_stage_maps_of_the_cpu_presets(preset, maps, rung):
    import torch

    from ladder.train.subject import subject_of

    cfg = to_typed(compose_config(rung, [f"preset={preset}", "data.root=unused"]))
    model = subject_of(cfg).build().eval()
    seen = []
    for stage in model.stages:
        stage.register_forward_hook(lambda m, i, out: seen.append(out.shape[-1]))
    with torch.no_grad():
        model(torch.zeros(1, 3, cfg.data.image_size, cfg.data.image_size))
    assert seen == maps
