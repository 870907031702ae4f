"""Ladders are data: conf/ladder/<name>.yaml declares a ladder's rungs, milestones, aliases,
step kinds, reference numbers and figure targets; ladder/ladders/rungs.py reads it (parents from the
rung files' defaults), the sweeps read it through ${ladder_rungs:...}, and a ladder that cannot
be right fails with one sentence naming the file. Bad ladders are written into a copy of conf/
in a tmp dir (passed as the search path), never into the package."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import REPO, tiny_overrides
from ladder.ladders import rungs
from ladder.ladders.compose import CONF_DIR, check_ladder, compose_config, to_typed
from ladder.ladders.conf_store import sweep_rungs

# Table 10 of Liu et al. (CVPR 2022), as ladder/ladders/rungs.py held it before the ladder became a
# file: (name, step, parent, milestone, top-1, std, GFLOPs).
TABLE_10 = [
    ("resnet50", "ResNet-50 (torchvision, 90 ep)", None, "resnet50", 76.13, None, 4.09),
    ("recipe", "ResNet-50, modern recipe", "resnet50", "recipe", 78.82, 0.07, 4.09),
    ("stage_ratio", "stage ratio", "recipe", None, 79.36, 0.07, 4.53),
    ("patchify", '"patchify" stem', "stage_ratio", "macro", 79.51, 0.18, 4.42),
    ("depthwise_conv", "depthwise conv", "patchify", None, 78.28, 0.08, 2.35),
    ("width", "increase width", "depthwise_conv", "depthwise", 80.50, 0.02, 5.27),
    ("inverted_bottleneck", "inverting dimensions", "width", "inverted_bottleneck", 80.64, 0.03,
     4.64),
    ("move_up", "move up depthwise conv", "inverted_bottleneck", None, 79.92, 0.08, 4.07),
    ("kernel5", "kernel size -> 5", "move_up", None, 80.35, 0.08, 4.10),
    ("kernel7", "kernel size -> 7", "kernel5", "large_kernel", 80.57, 0.14, 4.15),
    ("kernel9", "kernel size -> 9", "kernel7", None, 80.57, 0.06, 4.21),
    ("kernel11", "kernel size -> 11", "kernel7", None, 80.47, 0.11, 4.29),
    ("gelu", "ReLU -> GELU", "kernel7", None, 80.62, 0.14, 4.15),
    ("fewer_activations", "fewer activations", "gelu", None, 81.27, 0.06, 4.15),
    ("fewer_norms", "fewer norms", "fewer_activations", None, 81.41, 0.09, 4.15),
    ("layernorm", "BN -> LN", "fewer_norms", None, 81.47, 0.09, 4.46),
    ("separate_downsampling", "separate d.s. conv (ConvNeXt-T)", "layernorm", "micro", 81.97,
     0.06, 4.49),
]
MILESTONES = ["resnet50", "recipe", "macro", "depthwise", "inverted_bottleneck", "large_kernel",
              "micro"]


# ----------------------------------------------------------------------------- the ConvNeXt ladder
def test_convnext_ladder_file_holds_table_10():
    got = [(r.name, r.step, r.parent, r.milestone, r.paper_top1, r.paper_top1_std,
            r.paper_gflops) for r in rungs.RUNGS]
    assert got == TABLE_10
    assert list(rungs.MILESTONES) == MILESTONES
    assert rungs.SIDE_BRANCHES == {"kernel9", "kernel11"}
    assert [r.name for r in rungs.RUNGS if r.side_branch] == ["kernel9", "kernel11"]
    assert rungs.SWIN_T_TOP1 == 81.3
    assert rungs.valid_names()[17:] == ["macro", "depthwise", "large_kernel", "micro"]


def test_load_ladder_returns_the_ladder_object_once_per_name_and_path(tmp_path):
    ladder = rungs.load_ladder()
    assert ladder is rungs.load_ladder("convnext", CONF_DIR) is rungs.LADDER
    assert ladder.rungs is rungs.RUNGS
    assert (ladder.name, ladder.prefix) == ("convnext", "ladder_")
    assert ladder.reference.source == "Liu et al., A ConvNet for the 2020s, CVPR 2022"
    assert (ladder.reference.table, ladder.reference.seeds) == ("Table 10", 3)
    assert [(t.label, t.top1) for t in ladder.targets] == [("Swin-T", 81.3)]
    assert ladder.aliases == {"macro": "patchify", "depthwise": "width",
                              "large_kernel": "kernel7", "micro": "separate_downsampling"}
    copy = conf_copy(tmp_path)
    other = rungs.load_ladder("convnext", copy)
    assert other is not ladder and other.path == copy / "ladder" / "convnext.yaml"
    assert other.names == ladder.names


def test_step_kinds_say_what_the_report_infers():
    """The report (ladder/report/attribution.py) takes the path's first step as the recipe and
    every later one as architecture; the ladder file now says so."""
    kinds = rungs.LADDER.kinds
    path = rungs.LADDER.main_path()
    assert kinds[path[0]] == "root" and [n for n, k in kinds.items() if k == "recipe"] == [path[1]]
    assert all(kinds[n] == "architecture" for n in rungs.RUNG_NAMES[2:])


def test_convnext_ladder_passes_the_composed_checks():
    """Every step changes its composed config, architecture steps only model.*, the recipe
    step recipe.* (composes all 17 rungs)."""
    assert check_ladder() is rungs.LADDER


def test_readers_use_the_ladder_object():
    import timm

    from ladder.ladders import registry, variants

    assert registry.LADDER is rungs.LADDER
    assert set(timm.list_models("ladder_*")) == {f"ladder_{n}" for n in rungs.valid_names()}
    assert variants.main_path() == rungs.LADDER.main_path() == variants.main_path("micro")


# ----------------------------------------------------------------------------- selection
def test_ladder_group_selects_the_ladder_and_the_typed_config_keeps_its_name():
    for extra in ([], ["ladder=convnext"]):
        cfg = compose_config("depthwise", extra)
        assert cfg.ladder.name == "convnext" and cfg.rung == "width"
        assert to_typed(cfg).ladder == "convnext"
    with pytest.raises(Exception, match="convnext"):  # Hydra lists the group's options
        compose_config("depthwise", ["ladder=nosuch"])


def test_result_and_wandb_config_carry_the_ladder_and_the_rungs_place(tmp_path):
    from ladder.train import run_results

    for rung, index, label in (("depthwise", 5, "05 width"), ("micro", 16,
                                                               "16 separate_downsampling")):
        cfg = to_typed(compose_config(rung, ["logger=none"]))
        t = SimpleNamespace(cfg=cfg, sweep_group=None, world=1, command="c", out=tmp_path)
        base = run_results.result_base(t)
        assert (base["ladder"], base["rung_index"], base["rung_label"]) == ("convnext", index,
                                                                            label)
        logged = run_results.wandb_config(t)
        assert logged == {**base["config"], "ladder": "convnext", "rung_index": index,
                          "rung_label": label}
        assert base["config"]["ladder"] == "convnext"  # the name, not the whole ladder file


# ----------------------------------------------------------------------------- sweeps
def test_sweep_files_read_the_ladder():
    for sweep in ("ladder", "milestones"):
        param = yaml.safe_load((CONF_DIR / "sweep" / f"{sweep}.yaml").read_text())[
            "hydra"]["sweeper"]["params"]["+rung"]
        assert param.startswith("${ladder_rungs:"), f"conf/sweep/{sweep}.yaml lists rungs by hand"
    assert sweep_rungs("ladder") == list(rungs.RUNG_NAMES)
    assert sweep_rungs("milestones") == MILESTONES
    assert sweep_rungs("micro,kernel7") == ["micro", "kernel7"]
    with pytest.raises(ValueError, match="unknown rung 'kernel13'"):
        sweep_rungs("micro,kernel13")
    node = OmegaConf.create({"ladder": {"name": "convnext"}, "x": "${ladder_rungs:nothing}"})
    with pytest.raises(Exception, match="allowed values: all, milestones"):
        node.x


@pytest.mark.slow
def test_milestones_multirun_gets_its_rungs_from_the_ladder(tmp_path, cache_dir):
    """A real multirun with Hydra's basic sweeper: ${ladder_rungs:milestones} becomes seven
    jobs. Each job stops at once (a global batch larger than the data) and records the failure
    in its result.json, which is all this test needs."""
    env = {**os.environ, "LADDER_CACHE": str(cache_dir), "WANDB_MODE": "offline"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", "+sweep=milestones", "ladder=convnext",
         *tiny_overrides(cache_dir), "experiment=ms", "trainer.global_batch=1000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(p.read_text()) for p in (tmp_path / "multirun/ms").glob("*/seed0/"
                                                                                  "result.json")]
    got = sorted((r["rung_index"], r["rung"], r["rung_label"], r["ladder"], r["milestone"])
                 for r in results)
    assert got == [(rungs.index(m), rungs.MILESTONES[m], f"{rungs.index(m):02d} "
                    f"{rungs.MILESTONES[m]}", "convnext", m) for m in MILESTONES]


# ----------------------------------------------------------------------------- bad ladders
def conf_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "conf"
    if not dest.exists():
        shutil.copytree(CONF_DIR, dest)
    return dest


def write_ladder(conf: Path, name: str, change) -> Path:
    """conf/ladder/<name>.yaml: ConvNeXt's ladder file, renamed and changed by ``change``."""
    data = yaml.safe_load((conf / "ladder" / "convnext.yaml").read_text())
    data["name"] = name
    change(data)
    path = conf / "ladder" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_rung(conf: Path, name: str, parent: str, body: str = "") -> Path:
    path = conf / "rung" / f"{name}.yaml"
    path.write_text(f"# @package _global_\ndefaults:\n  - {parent}\n  - _self_\n\nrung: {name}\n"
                    + body)
    return path


def _drop_rung(data: dict, name: str) -> None:
    data["rungs"] = [r for r in data["rungs"] if r["name"] != name]
    del data["reference"]["numbers"][name]


def _numbers(data: dict, rung: str, **row) -> None:
    data["reference"]["numbers"][rung] = row


BAD = {
    "parent outside the ladder": (
        lambda data: _drop_rung(data, "kernel5"),
        r"the parent of rung 'kernel7' \('kernel5', from the defaults of .*kernel7.yaml\) is not "
        r"a rung of this ladder"),
    "duplicate name": (
        lambda data: data["rungs"].insert(10, dict(data["rungs"][9])),
        "rungs lists 'kernel7' twice"),
    "alias that is also a rung": (
        lambda data: data["aliases"].append("kernel7"), "'kernel7' is both a rung and an alias"),
    "milestone naming no rung": (
        lambda data: data["milestones"].append("huge_kernel"),
        "milestone 'huge_kernel' names no rung"),
    "two milestones on one rung": (
        lambda data: data["milestones"].append("patchify"),
        "milestones 'macro' and 'patchify' are the same rung, 'patchify'"),
    "top-1 not a number": (
        lambda data: _numbers(data, "recipe", top1="78.8%", std=0.07, gflops=4.09),
        r"reference.numbers.recipe.top1 is '78.8%', not a number"),
    "std not a number": (
        lambda data: _numbers(data, "recipe", top1=78.82, std=[0.07], gflops=4.09),
        r"reference.numbers.recipe.std is \[0.07\], not a number \(or null\)"),
    "gflops missing": (
        lambda data: _numbers(data, "recipe", top1=78.82, std=0.07),
        "reference.numbers.recipe lacks gflops"),
    "numbers for no rung": (
        lambda data: _numbers(data, "kernel13", top1=80.0, gflops=4.4),
        "reference.numbers has kernel13, not a rung of this ladder"),
    "numbers without top-1": (
        lambda data: data["reference"]["numbers"]["gelu"].pop("top1"),
        "reference.numbers.gelu lacks top1"),
    "unknown kind": (
        lambda data: data["rungs"][2].update(kind="macro"),
        "rung 'stage_ratio' has kind 'macro'; allowed kinds: root, recipe, architecture"),
    "target not a number": (
        lambda data: data["targets"][0].update(top1="81.3"),
        r"targets\[0\].top1 is '81.3', not a number"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_ladder_fails_in_one_sentence_naming_the_file(tmp_path, case):
    conf = conf_copy(tmp_path)
    change, message = BAD[case]
    path = write_ladder(conf, "bad", change)
    with pytest.raises(rungs.LadderError, match=message) as err:
        rungs.load_ladder("bad", conf)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert rungs.load_ladder("convnext", conf).names == rungs.RUNG_NAMES  # the copy is fine


def test_missing_std_reads_as_none(tmp_path):
    conf = conf_copy(tmp_path)
    write_ladder(conf, "nostd", lambda data: _numbers(data, "recipe", top1=78.82, gflops=4.09))
    assert rungs.load_ladder("nostd", conf).resolve("recipe").paper_top1_std is None


def test_cycle_of_parents_fails_naming_the_ladder_file(tmp_path):
    conf = conf_copy(tmp_path)
    write_rung(conf, "stage_ratio", "patchify", "model:\n  depths: [3, 3, 9, 3]\n")
    with pytest.raises(rungs.LadderError, match="form a cycle: stage_ratio -> patchify -> "
                                                "stage_ratio") as err:
        rungs.load_ladder("convnext", conf)
    assert str(conf / "ladder" / "convnext.yaml") in str(err.value)


def test_rung_file_under_another_name_fails(tmp_path):
    conf = conf_copy(tmp_path)
    path = write_rung(conf, "gelu", "kernel7", "model:\n  activation: gelu\n")
    path.write_text(path.read_text().replace("rung: gelu", "rung: kernel7"))
    with pytest.raises(rungs.LadderError, match="sets rung: 'kernel7'; a rung file must set "
                                                "rung: gelu") as err:
        rungs.load_ladder("convnext", conf)
    assert str(path) in str(err.value)


def test_unknown_ladder_lists_the_ladders(tmp_path):
    with pytest.raises(rungs.LadderError, match=r"no ladder 'resnet'.*ladders there: bag_of_tricks, convnext"):
        rungs.load_ladder("resnet")


def _with_rung(conf: Path, name: str, after: str, parent: str, body: str) -> Path:
    write_rung(conf, name, parent, body)

    def change(data):
        at = [r["name"] for r in data["rungs"]].index(after) + 1
        data["rungs"].insert(at, {"name": name, "label": name, "kind": "architecture"})
        _numbers(data, name, top1=80.0, std=None, gflops=4.2)

    return write_ladder(conf, "extra", change)


def test_step_that_changes_nothing_fails(tmp_path):
    conf = conf_copy(tmp_path)
    path = _with_rung(conf, "kernel7_again", "kernel11", "kernel7", "model:\n  kernel_size: 7\n")
    assert rungs.load_ladder("extra", conf).resolve("kernel7_again").side_branch  # well-formed
    with pytest.raises(rungs.LadderError, match="kernel7_again.yaml changes nothing: its "
                                                "composed config equals its parent 'kernel7'"
                       ) as err:
        check_ladder("extra", conf, only=["kernel7_again"])
    assert str(path) in str(err.value)


def test_step_that_changes_something_passes(tmp_path):
    conf = conf_copy(tmp_path)
    _with_rung(conf, "kernel13", "kernel11", "kernel7", "model:\n  kernel_size: 13\n")
    assert check_ladder("extra", conf, only=["kernel13"]).resolve("kernel13").parent == "kernel7"


def test_architecture_step_that_changes_the_recipe_fails(tmp_path):
    conf = conf_copy(tmp_path)
    write_ladder(conf, "mislabelled", lambda data: data["rungs"][1].update(kind="architecture"))
    with pytest.raises(rungs.LadderError, match=r"recipe.yaml is an architecture step in "
                                                r".*mislabelled.yaml but changes recipe\."):
        check_ladder("mislabelled", conf, only=["recipe"])


def test_a_rung_the_reference_never_measured_has_no_paper_numbers(tmp_path):
    conf = conf_copy(tmp_path)
    write_ladder(conf, "partial", lambda data: data["reference"]["numbers"].pop("gelu"))
    ladder = rungs.load_ladder("partial", conf)
    gelu = ladder.resolve("gelu")
    assert (gelu.paper_top1, gelu.paper_top1_std, gelu.paper_gflops) == (None, None, None)
    assert ladder.resolve("layernorm").paper_top1 == 81.47


def test_the_built_in_ladders_give_every_rung_its_reference_numbers():
    for name in ("convnext", "bag_of_tricks"):
        ladder = rungs.load_ladder(name)
        assert all(r.paper_top1 is not None and r.paper_gflops is not None
                   for r in ladder.rungs), name


def test_extends_takes_the_base_and_bad_bases_fail_naming_the_file(tmp_path):
    conf = tmp_path / "user"
    (conf / "ladder").mkdir(parents=True)
    (conf / "ladder" / "plus.yaml").write_text(
        "name: plus\nprefix: plus_\nextends: convnext\nmilestones: [resnet50, micro]\n"
        "reference: {numbers: {gelu: {top1: 1.0, gflops: 2.0}}}\n")
    ladder = rungs.load_ladder("plus", conf)
    assert ladder.names == rungs.load_ladder("convnext").names and ladder.bases == ("convnext",)
    assert list(ladder.milestones) == ["resnet50", "micro"]  # this file's replace the base's
    assert ladder.resolve("gelu").paper_top1 == 1.0 and ladder.resolve("micro").paper_top1 == 81.97
    assert ladder.reference.table == "Table 10"
    (conf / "ladder" / "loop.yaml").write_text("name: loop\nprefix: l_\nextends: loop2\n")
    (conf / "ladder" / "loop2.yaml").write_text("name: loop2\nprefix: l2_\nextends: loop\n")
    with pytest.raises(rungs.LadderError, match=r"loop\.yaml: extends forms a cycle"):
        rungs.load_ladder("loop", conf)
    (conf / "ladder" / "orphan.yaml").write_text("name: orphan\nprefix: o_\nextends: nosuch\n")
    with pytest.raises(rungs.LadderError, match=r"orphan\.yaml: extends 'nosuch', but no "
                                                 r"ladder/nosuch\.yaml"):
        rungs.load_ladder("orphan", conf)
