"""The Bag of Tricks ladder (conf/ladder/bag_of_tricks.yaml): its rungs compose to the networks
and recipes of He et al. 2019, Tables 5 and 6; B, C and D are torchvision's / timm's models."""
from __future__ import annotations

import pytest
import timm
import torch
from test_resnet_variants import _randomize

from ladder.ladders import rungs
from ladder.ladders.compose import check_ladder, compose_config, rung_net_config, to_typed
from ladder.nets.config import ConfigError
from ladder.nets.convert import load_timm_resnet
from ladder.nets.model import LadderNet, count_params
from ladder.train.optim import make_budget

LADDER = "bag_of_tricks"
TIMM = {"resnet50b": "resnet50", "resnet50c": "resnet50c", "resnet50d": "resnet50d"}


def test_the_ladder_checks_and_reads_as_the_paper():
    ladder = check_ladder(LADDER)  # every step changes something, of its own kind
    assert ladder.names == ("resnet50a", "resnet50b", "resnet50c", "resnet50d", "cosine_decay",
                            "label_smoothing", "mixup")
    assert [ladder.resolve(n).paper_top1 for n in ladder.names] == [
        76.21, 76.66, 76.87, 77.16, 77.91, 78.31, 79.15]
    assert [r.kind for r in ladder.rungs] == ["root"] + ["architecture"] * 3 + ["recipe"] * 3
    assert ladder.main_path() == list(ladder.names) and not ladder.side_branches
    assert ladder.prefix == "tricks_" and ladder.reference.arxiv == "1812.01187"


@pytest.mark.parametrize("rung", list(TIMM))
def test_b_c_d_are_the_reference_models(rung):
    torch.manual_seed(0)
    reference = timm.create_model(TIMM[rung], num_classes=10)
    _randomize(reference, 0)
    ours = LadderNet(rung_net_config(rung, ladder=LADDER, num_classes=10))
    assert count_params(ours) == count_params(reference)
    load_timm_resnet(ours, reference.state_dict())
    x = torch.randn(2, 3, 72, 72, generator=torch.Generator().manual_seed(1))
    reference.eval(), ours.eval()
    with torch.no_grad():
        assert (reference(x) - ours(x)).abs().max().item() <= 1e-4


def test_the_root_strides_on_the_first_1x1():
    cfg = rung_net_config("resnet50a", ladder=LADDER)
    assert cfg.stride_layer == "first" and cfg.zero_init_residual
    assert rung_net_config("resnet50b", ladder=LADDER).stride_layer == "spatial"


def test_the_recipe_steps_change_one_setting_each():
    typed = {r: to_typed(compose_config(r, ["logger=none"], ladder=LADDER))
             for r in ("resnet50d", "cosine_decay", "label_smoothing", "mixup")}
    base = typed["resnet50d"].recipe
    assert (base.name, base.optimizer, base.nesterov, base.batch_size, base.epochs) == (
        "tricks", "sgd", True, 1024, 120)
    assert (base.warmup_epochs, base.schedule, base.decay_norm_and_bias) == (5, "step", False)
    assert typed["cosine_decay"].recipe.schedule == "cosine"
    assert typed["label_smoothing"].recipe.label_smoothing == 0.1
    mixup = typed["mixup"].recipe
    assert (mixup.mixup, mixup.cutmix, mixup.epochs, mixup.label_smoothing) == (0.2, 0.0, 200, 0.1)
    # the paper's scale: lr 0.1 per 256 images -> 0.4 at 1024
    paper = to_typed(compose_config("resnet50d", ["preset=imagenet", "data.root=x"],
                                    ladder=LADDER))
    assert make_budget(paper.recipe, paper.trainer).lr == pytest.approx(0.4)


def test_the_proxy_rules_keep_the_mixup_step_and_give_sgd_its_epochs():
    demo = {r: to_typed(compose_config(r, ["logger=none"], ladder=LADDER))
            for r in ("label_smoothing", "mixup")}
    assert demo["mixup"].recipe.mixup == 0.2  # the step survives the preset's mixup: 0
    budgets = {r: make_budget(c.recipe, c.trainer) for r, c in demo.items()}
    assert budgets["mixup"].epochs == budgets["label_smoothing"].epochs == 24  # 3x the AdamW 8
    assert budgets["mixup"].lr == pytest.approx(0.05)  # the linear rule at batch 128


def test_a_rung_of_another_ladder_names_its_ladder():
    with pytest.raises(ConfigError, match="ladder bag_of_tricks: add ladder=bag_of_tricks"):
        rungs.load_ladder().resolve("mixup")


def test_every_rung_is_a_timm_model_under_the_ladders_prefix():
    import ladder.ladders.registry  # noqa: F401  (registers)

    assert set(timm.list_models("tricks_*")) == {f"tricks_{n}" for n in rungs.load_ladder(
        LADDER).names}
    model = timm.create_model("tricks_resnet50d", num_classes=10, width_multiplier=0.125)
    assert model.cfg.stem == "deep" and model.cfg.shortcut_pool
    assert model.pretrained_cfg["paper_ids"] == "arXiv:1812.01187"
    with pytest.raises(ValueError, match="ladder=bag_of_tricks \\+rung=mixup"):
        timm.create_model("tricks_mixup", pretrained=True)


@pytest.mark.parametrize("rung", ["resnet50a", "mixup"])
def test_the_ends_train_and_record_their_ladder(rung, cache_dir, tmp_path):
    from conftest import tiny_overrides

    from ladder.train.trainer import train

    cfg = to_typed(compose_config(rung, tiny_overrides(cache_dir), ladder=LADDER))
    result = train(cfg, tmp_path)
    assert (result["ladder"], result["rung"], result["recipe"]) == (LADDER, rung, "tricks")
    assert result["rung_index"] == rungs.load_ladder(LADDER).index(rung)


def test_sweeps_and_leave_one_out_read_the_ladder():
    from ladder.ladders.conf_store import sweep_rungs
    from ladder.ladders.variants import leave_one_out

    assert sweep_rungs("milestones", ladder=LADDER) == ["resnet50a", "resnet50d", "mixup"]
    assert sweep_rungs("ladder", ladder=LADDER)[-1] == "mixup"
    undos, skipped = leave_one_out(ladder=LADDER)
    assert [u.name for u in undos] == ["undo_resnet50b", "undo_resnet50c", "undo_resnet50d"]
    assert [u.overrides() for u in undos] == [["model.stride_layer=first"], ["model.stem=resnet"],
                                              ["model.shortcut_pool=false"]]
    assert [rung for rung, _ in skipped] == ["cosine_decay", "label_smoothing", "mixup"]
    from ladder.train import sweep

    assert sweep.rung_list("ladder", sweep.ladder_of(["ladder=bag_of_tricks"]))[0] == "resnet50a"


def test_inspect_counts_the_ladder_beside_table_5(capsys):
    from ladder.ladders import inspect as inspect_mod

    rows = inspect_mod.measure(["resnet50a", "resnet50d"], rungs.load_ladder(LADDER))
    assert [r["rung"] for r in rows] == ["resnet50a", "resnet50d"]
    # GMACs at 224 px against Table 5's FLOPs: 3.858 vs 3.86 and 4.329 vs 4.35
    assert all(abs(r["gflops"] - r["paper_gflops"]) < 0.03 for r in rows)
    assert rows[0]["params"] == 25_557_032 and rows[1]["params"] == 25_576_264
    assert inspect_mod.main(["--ladder", LADDER, "--diff", "resnet50c", "resnet50d"]) == 0
    assert "model.shortcut_pool" in capsys.readouterr().out
