"""The worked example of docs/ladder.md ("Your own ladder"), as written: a rung added on top of
ConvNeXt's ladder and a three-rung ladder from scratch, each in a config directory of the user's
own (Hydra's ``--config-dir``), trained, swept and reported with the page's own commands.

The files and commands are read from docs/ladder.md (the blocks after ``<!-- file: PATH -->``
and ``<!-- commands: user-ladders -->``), so the page cannot drift from what is tested. The
commands run with the tests' tiny overrides appended (Hydra's last value wins).

docs/extending.md's recipe of one's own is read the same way: under a proxy preset it misses the
SGD rules that are keyed on the package's recipe names, and the page's preset gives them back."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_overrides
from omegaconf import OmegaConf

from ladder.ladders import rungs
from ladder.ladders.compose import check_ladder, compose_config
from ladder.train.optim import make_budget

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "ladder.md"
EXTENDING = REPO / "docs" / "extending.md"
FENCE = re.compile(r"```\w*\n(.*?)```", re.S)


def doc_files(doc: Path) -> dict[str, str]:
    """path -> file text, for every block after ``<!-- file: PATH -->`` in ``doc``."""
    text = doc.read_text()
    return {m[1]: FENCE.search(text, m.end())[1]
            for m in re.finditer(r"<!-- file: (\S+) -->\s*\n", text)}


def guide_blocks() -> tuple[dict[str, str], list[str]]:
    """(path -> file text, the commands) of docs/ladder.md's worked example."""
    text = GUIDE.read_text()
    m = re.search(r"<!-- commands: user-ladders -->\s*\n", text)
    commands = [line for line in FENCE.search(text, m.end())[1].splitlines() if line.strip()]
    return doc_files(GUIDE), commands


def _write_conf(files: dict[str, str], root: Path, monkeypatch) -> Path:
    """``files`` under ``root`` (my_conf/...), with my_conf on the ladder search path."""
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    conf = root / "my_conf"
    monkeypatch.setattr(rungs, "_SEARCH_PATH", ())
    rungs.set_search_path([conf])
    return conf


@pytest.fixture
def user_conf(tmp_path, monkeypatch):
    """The guide's files in tmp_path (my_conf/...), on the ladder search path."""
    yield _write_conf(guide_blocks()[0], tmp_path, monkeypatch)
    rungs.set_search_path([])


@pytest.fixture
def recipe_conf(tmp_path, monkeypatch):
    """docs/extending.md's files in tmp_path (my_conf/...), on the ladder search path."""
    yield _write_conf(doc_files(EXTENDING), tmp_path, monkeypatch)
    rungs.set_search_path([])


def test_the_guide_gives_both_ladders_and_their_commands():
    files, commands = guide_blocks()
    assert {"my_conf/ladder/convnext_plus.yaml", "my_conf/ladder/mini.yaml"} <= set(files)
    assert len(commands) == 5 and all("--config-dir my_conf" in c for c in commands[1:])


def test_a_rung_on_top_of_convnext_extends_its_ladder(user_conf):
    ladder = check_ladder("convnext_plus", user_conf, only=["convnext_k9"])
    base = rungs.load_ladder("convnext")
    assert ladder.names == (*base.names, "convnext_k9")
    k9 = ladder.resolve("convnext_k9")
    assert k9.parent == "separate_downsampling" and k9.kind == "architecture"
    assert k9.paper_top1 is None and not k9.side_branch
    assert ladder.main_path()[-2:] == ["separate_downsampling", "convnext_k9"]
    assert ladder.milestones == base.milestones and ladder.prefix == "plus_"
    assert ladder.resolve("micro").paper_top1 == 81.97  # Table 10 carried over


def test_a_three_rung_ladder_from_scratch_checks(user_conf):
    ladder = check_ladder("mini", user_conf)
    assert ladder.names == ("mini_base", "mini_gelu", "mini_smooth")
    assert [r.parent for r in ladder.rungs] == [None, "mini_base", "mini_gelu"]
    assert ladder.kinds == {"mini_base": "root", "mini_gelu": "architecture",
                            "mini_smooth": "recipe"}
    assert all(r.paper_top1 is None for r in ladder.rungs)


def test_without_the_config_dir_the_ladder_is_not_found(tmp_path):
    with pytest.raises(rungs.LadderError, match=r"no ladder 'mini'.*bag_of_tricks, convnext"):
        rungs.load_ladder("mini", tmp_path)


def _run(command: str, cwd: Path, extra: list[str]) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    assert argv[0] == "python"
    argv[0], argv[1] = sys.executable, str(REPO / argv[1])
    proc = subprocess.run(argv + extra, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_the_guide_commands_train_sweep_and_report_the_user_ladders(user_conf, cache_dir):
    _, commands = guide_blocks()
    commands = [c.split("#")[0].strip() for c in commands]
    root = user_conf.parent
    tiny = tiny_overrides(cache_dir)
    _run(commands[0], root, tiny)  # ConvNeXt-T, under ConvNeXt's own ladder
    _run(commands[1], root, tiny)
    run = json.loads((root / "outputs/demo/convnext_k9/seed0/result.json").read_text())
    assert (run["ladder"], run["rung"], run["rung_index"]) == ("convnext_plus", "convnext_k9", 17)
    assert run["config"]["model"]["kernel_size"] == 9
    _run(commands[2], root, [])
    plus = (root / "plus-report" / "roadmap.md").read_text()
    assert "ConvNeXt roadmap + kernel 9 at ConvNeXt-T" in plus
    # the new rung's step is measured from ConvNeXt-T's run, which the extended ladder reuses
    row = next(line for line in plus.splitlines() if line.startswith("|") and "convnext_k9" in line)
    assert "separate_downsampling not run" not in row and "not run" not in row

    _run(commands[3], root, tiny)
    runs = sorted(p.parent.parent.name + "/" + p.parent.name
                  for p in (root / "multirun" / "mini").rglob("result.json"))
    assert runs == [f"{r}/seed{s}" for r in ("mini_base", "mini_gelu", "mini_smooth")
                    for s in (0, 1)]

    _run(commands[4], root, [])
    report = (root / "mini-report" / "roadmap.md").read_text()
    assert "A three-rung ladder" in report
    for rung in ("mini_base", "mini_gelu", "mini_smooth"):
        assert rung in report


def _budget(rung: str, *overrides: str) -> tuple[str, int, float]:
    """(recipe name, epochs, peak lr) that ``train.py ladder=sgd +rung=<rung> <overrides>`` gets."""
    cfg = OmegaConf.to_object(compose_config(rung, list(overrides), ladder="sgd"))
    budget = make_budget(cfg.recipe, cfg.trainer)
    return cfg.recipe.name, budget.epochs, pytest.approx(budget.lr)


def test_a_recipe_of_ones_own_misses_the_sgd_proxy_rules_until_a_preset_gives_them(recipe_conf):
    assert set(doc_files(EXTENDING)) == {
        "my_conf/recipe/torchvision_cosine.yaml", "my_conf/ladder/sgd.yaml",
        "my_conf/rung/sgd_step.yaml", "my_conf/rung/sgd_cosine.yaml",
        "my_conf/preset/demo_sgd.yaml"}
    ladder = check_ladder("sgd", recipe_conf)
    assert ladder.kinds == {"sgd_step": "root", "sgd_cosine": "recipe"}
    # the package's SGD recipe gets 3x the epochs and the linear lr rule on the demo ...
    assert _budget("sgd_step", "preset=demo") == ("torchvision", 24, 0.2)
    # ... a recipe of one's own, the same SGD under another name, silently does not
    assert _budget("sgd_cosine", "preset=demo") == ("torchvision_cosine", 8, 0.1)
    # the page's preset, or the two keys on the command line, give them back
    assert _budget("sgd_cosine", "preset=demo_sgd") == ("torchvision_cosine", 24, 0.2)
    assert _budget("sgd_step", "preset=demo_sgd") == ("torchvision", 24, 0.2)
    assert _budget("sgd_cosine", "preset=demo", "+trainer.by_recipe.torchvision_cosine.epochs=24",
                   "+trainer.by_recipe.torchvision_cosine.lr_scaling=linear",
                   "+proxy.by_recipe.torchvision_cosine.recipe.lr=0.4"
                   ) == ("torchvision_cosine", 24, 0.2)
    # at the paper's settings no per-recipe setting applies: the recipe's own epochs and batch
    assert _budget("sgd_cosine", "preset=imagenet") == ("torchvision_cosine", 90, 0.1)
