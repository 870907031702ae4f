"""The roadmap report (ladder/report/, scripts/roadmap.py): table numbers, figure, CLI."""
from __future__ import annotations

import csv
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the package need not be installed
    sys.path.insert(0, str(ROOT))

from ladder import report  # noqa: E402
from ladder.ladders.rungs import MILESTONES, RUNGS, SWIN_T_TOP1  # noqa: E402

PAPER = {r.name: r.paper_top1 for r in RUNGS}

# The main fixture group (demo, 32 px, experiment "demo"): per rung, the seeds' top-1.
DEMO = {
    "resnet50": [70.0, 70.2, 70.4],
    "recipe": [72.0, 72.1, 72.2],  # clear gain over resnet50
    # stage_ratio: not run -> patchify can't be compared
    "patchify": [73.0, 73.5, 74.0],
    "depthwise_conv": [71.0],  # one seed -> n<2
    "width": [72.0, 72.4],  # seed 2 failed; parent has n=1 -> n<2
    "inverted_bottleneck": [70.0, 70.1, 70.2],  # -2.1 but df=1 vs width's 2 seeds: within noise
    # move_up, kernel5: not run
    "kernel7": [75.0, 75.1, 75.2],
    "kernel9": [75.0, 75.3, 74.9],  # side branch vs kernel7: within noise
    "kernel11": [74.0, 74.1, 74.2],  # side branch vs kernel7: hurt
    "gelu": [75.5, 75.6, 75.7],  # vs kernel7 (not kernel11): gain
    "fewer_activations": [75.6, 75.7, 75.8],  # +0.1, interval just below 0: within noise
}


def write_result(root: Path, rung: str, seed: int, top1: float | None = None, *,
                 dataset: str = "demo", image_size: int = 32, experiment: str = "demo",
                 status: str = "completed", error: str | None = None, **extra) -> Path:
    tv = rung == "resnet50"
    rec = {
        "schema": "ladder.result/1", "status": status, "error": error, "rung": rung,
        "milestone": None, "seed": seed, "experiment": experiment, "sweep_group": None,
        "dataset": dataset, "image_size": image_size, "epochs": 4 if tv else 12,
        "recipe": "torchvision" if tv else "modern",
        "metrics": None if top1 is None else {"top1": top1, "top5": 99.0, "best_top1": top1 + 1,
                                              "best_top5": 99.5, "ema_top1": None,
                                              "train_loss": 1.0},
        "params": 25_000_000.0, "gflops": 4.0 + 0.01 * seed, "train_img_per_s": 800.0 + seed,
        "wall_time_s": 1.0, "git_commit": "x", "command": "x", "config": {},
    }
    rec.update(extra)
    d = root / dataset / experiment / f"{rung}-seed{seed}-{status}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "result.json").write_text(json.dumps(rec))
    return d / "result.json"


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for rung, vals in DEMO.items():
        for seed, v in enumerate(vals):
            write_result(root, rung, seed, v)
    write_result(root, "width", 2, status="failed", error="Traceback...\nRuntimeError: CUDA OOM")
    return root


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {row["rung"]: row for row in csv.DictReader(fh)}


def fnum(s: str) -> float:
    return float(s)


def welch_expected(a, b, t):
    """Independent check: the Welch interval with a given t quantile."""
    se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    d = np.mean(a) - np.mean(b)
    return d - t * se, d + t * se


# ----------------------------------------------------------------------------- statistics


def _t_cdf(x: float, v: int, n: int = 4000) -> float:
    """Student t CDF by Simpson integration of the density (no scipy here)."""
    c = math.exp(math.lgamma((v + 1) / 2) - math.lgamma(v / 2)) / math.sqrt(v * math.pi)

    def pdf(u):
        return c * (1 + u * u / v) ** (-(v + 1) / 2)

    h = x / n
    s = pdf(0) + pdf(x) + sum((4 if i % 2 else 2) * pdf(i * h) for i in range(1, n))
    return 0.5 + s * h / 3


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 10, 17, 30, 40, 60, 120])
def test_t_table_is_the_975_quantile(df):
    assert _t_cdf(report.t975(df), df) == pytest.approx(0.975, abs=2e-4)


def test_t_between_table_entries_rounds_down_to_a_wider_interval():
    assert report.t975(35) == report.t975(30) == 2.042
    assert report.t975(119) == report.t975(60)
    assert report.t975(10_000) == 1.96
    with pytest.raises(ValueError):
        report.t975(0)


def test_welch_interval_equal_variances():
    lo, hi, df = report.welch_interval([4, 5, 6], [1, 2, 3])
    assert df == 4  # (2/3)^2 / (2 * (1/3)^2 / 2)
    assert (lo, hi) == pytest.approx((3 - 2.776 * math.sqrt(2 / 3), 3 + 2.776 * math.sqrt(2 / 3)))


def test_welch_interval_unequal_variances_floors_df():
    # v1 = 2/2 = 1, v2 = 0.25/4; df = 1.0625^2 / (1 + 0.0625^2/3) = 1.127 -> 1
    lo, hi, df = report.welch_interval([1, 3], [0, 0, 0, 1])
    assert df == 1
    assert hi - lo == pytest.approx(2 * 12.706 * math.sqrt(1.0625))
    assert (lo + hi) / 2 == pytest.approx(2 - 0.25)


def test_welch_interval_needs_two_seeds_each_side():
    assert report.welch_interval([1.0], [1.0, 2.0]) is None
    assert report.welch_interval([1.0, 2.0], [3.0]) is None
    assert report.welch_interval([1.0, 1.0], [2.0, 2.0]) == (-1.0, -1.0, 2)  # no spread at all


# ----------------------------------------------------------------------------- the table


def test_full_table_numbers(demo_dir, tmp_path):
    out = tmp_path / "out"
    paths = report.main([str(demo_dir), "--out", str(out)])
    assert {p.name for p in paths} == {"roadmap.md", "roadmap.csv", "roadmap.png"}
    rows = read_csv(out / "roadmap.csv")
    assert list(rows) == [r.name for r in RUNGS]  # every rung, ladder order

    for rung, vals in DEMO.items():
        assert int(rows[rung]["n"]) == len(vals)
        assert fnum(rows[rung]["mean"]) == pytest.approx(np.mean(vals), abs=1e-4)
        if len(vals) > 1:
            assert fnum(rows[rung]["std"]) == pytest.approx(np.std(vals, ddof=1), abs=1e-4)
        else:
            assert rows[rung]["std"] == ""

    # recipe: clear gain; Welch df = 2.94, rounded down to 2 -> t = 4.303
    r = rows["recipe"]
    assert r["verdict"] == "gain" and r["df"] == "2"
    assert fnum(r["delta"]) == pytest.approx(1.9, abs=1e-4)
    lo, hi = welch_expected(DEMO["recipe"], DEMO["resnet50"], 4.303)
    assert (fnum(r["ci_low"]), fnum(r["ci_high"])) == pytest.approx((lo, hi), abs=1e-4)
    assert fnum(r["ci_low"]) > 0
    assert fnum(r["paper_delta"]) == pytest.approx(PAPER["recipe"] - PAPER["resnet50"])

    # missing rung, and a rung whose parent is missing
    assert rows["stage_ratio"]["verdict"] == "missing" and rows["stage_ratio"]["n"] == "0"
    assert rows["stage_ratio"]["mean"] == ""
    assert rows["patchify"]["verdict"] == "parent missing" and rows["patchify"]["delta"] == ""
    assert rows["kernel7"]["verdict"] == "parent missing"  # kernel5 not run

    # one seed on a side: the change, no interval
    for rung in ("depthwise_conv", "width"):
        assert rows[rung]["verdict"] == "n<2" and rows[rung]["ci_low"] == ""
    assert fnum(rows["depthwise_conv"]["delta"]) == pytest.approx(71.0 - 73.5, abs=1e-4)
    assert rows["width"]["n_failed"] == "1"

    # big change, but 2 seeds vs 3 gives df = 1: within noise
    ib = rows["inverted_bottleneck"]
    assert ib["verdict"] == "within noise" and ib["df"] == "1"
    assert fnum(ib["delta"]) == pytest.approx(-2.1, abs=1e-4)
    assert fnum(ib["ci_low"]) < 0 < fnum(ib["ci_high"])
    lo, hi = welch_expected(DEMO["inverted_bottleneck"], DEMO["width"], 12.706)
    assert fnum(ib["ci_low"]) == pytest.approx(lo, abs=1e-4)

    # side branches and gelu are measured against kernel7
    for rung, verdict in (("kernel9", "within noise"), ("kernel11", "hurt"), ("gelu", "gain")):
        assert rows[rung]["parent"] == "kernel7"
        assert rows[rung]["verdict"] == verdict
        assert fnum(rows[rung]["delta"]) == pytest.approx(
            np.mean(DEMO[rung]) - np.mean(DEMO["kernel7"]), abs=1e-4)
        assert fnum(rows[rung]["paper_delta"]) == pytest.approx(PAPER[rung] - PAPER["kernel7"])
    assert fnum(rows["kernel11"]["ci_high"]) < 0
    assert fnum(rows["gelu"]["ci_low"]) > 0
    fa = rows["fewer_activations"]
    assert fa["verdict"] == "within noise"
    assert -0.2 < fnum(fa["ci_low"]) < 0 < fnum(fa["ci_high"])
    assert rows["fewer_norms"]["verdict"] == "missing"
    # the verdict is exactly the interval's position relative to 0, on every row
    for row in rows.values():
        if row["ci_low"]:
            lo, hi = fnum(row["ci_low"]), fnum(row["ci_high"])
            assert lo <= fnum(row["delta"]) <= hi
            assert row["verdict"] == ("gain" if lo > 0 else "hurt" if hi < 0 else "within noise")

    # params (M), GFLOPs and img/s: means over the completed seeds
    assert fnum(rows["recipe"]["params_m"]) == pytest.approx(25.0)
    assert fnum(rows["recipe"]["gflops"]) == pytest.approx(4.01)
    assert fnum(rows["recipe"]["train_img_per_s"]) == pytest.approx(801.0)


def test_markdown_marks_and_findings(demo_dir):
    report.main([str(demo_dir)])  # --out defaults to RESULTS_DIR
    md = (demo_dir / "roadmap.md").read_text()
    lines = {ln.split("|")[2].strip(): ln for ln in md.splitlines()
             if ln.startswith("| ") and ln.split("|")[2].strip().startswith("`")}
    assert "within noise" in lines["`kernel9` (side branch)"]
    assert "within noise" in lines["`inverted_bottleneck`"]
    assert "within noise" not in lines["`gelu`"] and "gain" in lines["`gelu`"]
    assert "hurt" in lines["`kernel11` (side branch)"]
    assert "n<2" in lines["`depthwise_conv`"]
    assert "72.20 ± 0.28 (n=2) (1 failed)" in lines["`width`"]
    assert "— | — | not run" in lines["`stage_ratio`"]
    assert "vs kernel7" in lines["`gelu`"]  # its parent is not the row above
    assert "(root)" in lines["`resnet50`"]
    # the failed run is listed with its error's last line
    assert "- `width` seed 2: RuntimeError: CUDA OOM" in md
    # findings: one sentence per finding, honest about each class
    findings = md.split("Findings:")[1]
    gain = next(s for s in findings.splitlines() if "supports a gain" in s)
    assert "`recipe`" in gain and "`gelu`" in gain and "`kernel9`" not in gain
    assert "`kernel11`" in next(s for s in findings.splitlines() if "hurt" in s)
    noise = next(s for s in findings.splitlines() if "within seed noise" in s)
    assert "`kernel9`" in noise and "`inverted_bottleneck`" in noise
    few = next(s for s in findings.splitlines() if "fewer than 2" in s)
    assert "`depthwise_conv`" in few and "`width`" in few
    assert "`stage_ratio`" in next(s for s in findings.splitlines() if "no completed run" in s)
    assert "ImageNet-1K" in findings  # proxy dataset: says the scales differ
    # title: dataset, resolution, modern epochs, the torchvision rung's epochs
    assert "## demo, 32 px, 12 epochs (torchvision-recipe rung: 4)" in md


def test_png_is_valid(demo_dir):
    report.main([str(demo_dir)])
    data = (demo_dir / "roadmap.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 900 and height >= 600
    assert 20_000 < len(data) < 5_000_000


def test_figure_layout_proxy_vs_imagenet(demo_dir, tmp_path):
    runs = report.load_results(demo_dir)
    (key, group), = report.group_runs(runs).items()
    info = report._group_info(key, group)
    fig = report.make_figure(report.build_table(group), info)
    assert len(fig.axes) == 2  # proxy dataset: the paper on its own panel and scale
    assert "demo, 32 px, 12 epochs" in fig._suptitle.get_text()
    ax, axp = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()][0].startswith("ResNet-50")
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # inverted: first rung at the top
    assert axp.get_xlim()[0] < PAPER["resnet50"] and axp.get_xlim()[1] > PAPER[RUNGS[-1].name]
    assert not any(list(ln.get_xdata()) == [SWIN_T_TOP1] * 2 for a in fig.axes
                   for ln in a.get_lines())  # no Swin-T line off ImageNet
    texts = [t.get_text() for t in ax.texts]
    assert "4.01 GFLOPs" in texts and "— not run" in texts

    im = tmp_path / "im"
    for seed in range(2):
        write_result(im, "separate_downsampling", seed, 81.0 + seed, dataset="imagenet",
                     image_size=224, experiment="full")
    runs = report.load_results(im)
    (key, group), = report.group_runs(runs).items()
    fig = report.make_figure(report.build_table(group), report._group_info(key, group))
    assert len(fig.axes) == 1
    assert any(list(ln.get_xdata()) == [SWIN_T_TOP1] * 2 for ln in fig.axes[0].get_lines())
    assert "imagenet, 224 px, 12 epochs" in fig._suptitle.get_text()


def test_milestone_view(demo_dir, tmp_path):
    out = tmp_path / "ms"
    report.main([str(demo_dir), "--out", str(out), "--view", "milestones"])
    rows = read_csv(out / "roadmap.csv")
    assert list(rows) == list(MILESTONES.values())
    names = list(MILESTONES.values())
    for prev, name in zip(names, names[1:]):
        assert rows[name]["parent"] == prev
        assert fnum(rows[name]["paper_delta"]) == pytest.approx(PAPER[name] - PAPER[prev])
    # patchify is now measured against recipe (stage_ratio, not a milestone, is skipped)
    p = rows["patchify"]
    assert p["verdict"] == "gain" and p["df"] == "2"
    assert fnum(p["delta"]) == pytest.approx(73.5 - 72.1, abs=1e-4)
    lo, hi = welch_expected(DEMO["patchify"], DEMO["recipe"], 4.303)
    assert (fnum(p["ci_low"]), fnum(p["ci_high"])) == pytest.approx((lo, hi), abs=1e-4)
    assert rows["width"]["verdict"] == "within noise"  # vs patchify now, not depthwise_conv
    assert rows["kernel7"]["verdict"] == "gain"  # vs inverted_bottleneck
    assert rows["separate_downsampling"]["verdict"] == "missing"
    md = (out / "roadmap.md").read_text()
    assert "change vs previous milestone" in md
    assert "View: milestones (7 rows)" in md


def test_mixed_datasets_and_budgets_are_separate_groups(demo_dir, tmp_path):
    for seed, v in enumerate([50.0, 52.0]):
        write_result(demo_dir, "recipe", seed, v, dataset="imagenette", image_size=160)
    write_result(demo_dir, "recipe", 0, 10.0, experiment="smoke")  # same dataset, other budget
    out = tmp_path / "mixed"
    paths = report.main([str(demo_dir), "--out", str(out)])
    slugs = ["demo-32px-demo", "demo-32px-smoke", "imagenette-160px-demo"]
    assert {p.name for p in paths} == {"roadmap.md"} | {
        f"roadmap-{s}.{ext}" for s in slugs for ext in ("png", "csv")}
    assert not (out / "roadmap.png").exists()
    nette = read_csv(out / "roadmap-imagenette-160px-demo.csv")
    assert fnum(nette["recipe"]["mean"]) == 51.0 and nette["recipe"]["n"] == "2"
    assert nette["resnet50"]["verdict"] == "missing"
    demo = read_csv(out / "roadmap-demo-32px-demo.csv")
    assert fnum(demo["recipe"]["mean"]) == pytest.approx(72.1)  # not averaged with the others
    smoke = read_csv(out / "roadmap-demo-32px-smoke.csv")
    assert fnum(smoke["recipe"]["mean"]) == 10.0
    md = (out / "roadmap.md").read_text()
    assert md.count("\n## ") == 3
    for s in slugs:
        assert f"(roadmap-{s}.png)" in md and f"(roadmap-{s}.csv)" in md


def test_rerun_replaces_failed_seed_and_other_schemas_are_ignored(tmp_path, capsys):
    root = tmp_path / "r"
    write_result(root, "recipe", 0, status="failed", error="killed")
    write_result(root, "recipe", 0, 60.0)
    write_result(root, "recipe", 1, 62.0)
    for i in range(2):
        d = root / f"other{i}"
        d.mkdir()
        (d / "result.json").write_text(json.dumps({"schema": "something/2", "rung": "recipe",
                                                   "seed": 5, "metrics": {"top1": 0.0}}))
    (root / "broken").mkdir()
    (root / "broken" / "result.json").write_text("{not json")
    (root / "notes.json").write_text(json.dumps({"schema": "ladder.result/1"}))  # wrong name
    report.main([str(root)])
    rows = read_csv(root / "roadmap.csv")
    assert rows["recipe"]["n"] == "2" and rows["recipe"]["n_failed"] == "0"
    assert fnum(rows["recipe"]["mean"]) == 61.0
    md = (root / "roadmap.md").read_text()
    assert "- `recipe` seed 0: killed (a later run of this seed completed)" in md
    err = capsys.readouterr().err
    assert err.count("without schema") == 1 and "ignored 2 result.json" in err
    assert "not readable JSON" in err


def test_all_failed_group_still_renders(tmp_path):
    root = tmp_path / "f"
    write_result(root, "resnet50", 0, status="failed", error="boom")
    paths = report.main([str(root)])
    rows = read_csv(root / "roadmap.csv")
    assert rows["resnet50"]["n_failed"] == "1" and rows["resnet50"]["verdict"] == "missing"
    assert (root / "roadmap.png").stat().st_size > 10_000
    assert len(paths) == 3


def test_no_results_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no runs with schema"):
        report.main([str(tmp_path / "empty")])
    with pytest.raises(SystemExit, match="does not exist"):
        report.main([str(tmp_path / "nope")])


def test_wandb_config_lookup_nested_or_flat():
    assert report._cfg_get({"data": {"name": "imagenette"}}, "data.name") == "imagenette"
    assert report._cfg_get({"data.name": "demo"}, "data.name") == "demo"
    assert report._cfg_get({"data/image_size": {"value": 32, "desc": None}},
                           "data.image_size") == 32
    assert report._cfg_get({"data": {}}, "data.name") is None


def test_wandb_run_to_result():
    """The conversion of one W&B run (plain data standing in for the API's run object)."""
    from types import SimpleNamespace

    def run(id_, state, seed, top1, **summary):
        return SimpleNamespace(
            id=id_, state=state, created_at="2026-01-02T03:04:05Z",
            summary={"top1": top1, "params": 28e6, "gflops": 4.46, "train_img_per_s": 900.0,
                     **summary},
            config={"rung": "micro", "seed": seed, "experiment": "imagenette64",
                    "data": {"name": "imagenette", "image_size": 64},
                    "trainer": {"epochs": 40}, "recipe": {"name": "modern", "lr": 4e-3}})

    ok = report._from_wandb_run(run("a1", "finished", 0, 88.5), "ent/proj")
    assert (ok.rung, ok.seed, ok.status, ok.metrics["top1"]) == (
        "separate_downsampling", 0, "completed", 88.5)  # milestone alias resolved
    assert ok.group_key == ("imagenette", 64, "imagenette64") and ok.epochs == 40
    assert ok.recipe == "modern" and ok.gflops == 4.46 and ok.source == "wandb:ent/proj/a1"
    bad = report._from_wandb_run(run("b2", "crashed", 1, None), "ent/proj")
    assert bad.status == "failed" and "crashed" in bad.error
    assert report._from_wandb_run(run("c3", "running", 2, None), "ent/proj") is None
    derived = run("d4", "finished", 3, 80.0)
    derived.config.update(trainer={"epochs": None, "epoch_scale": 0.1},
                          recipe={"name": "modern", "epochs": 300})
    assert report._from_wandb_run(derived, "ent/proj").epochs == 30


# ----------------------------------------------------------------------------- CLI


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(extra)
    return env


def test_script_subprocess(demo_dir, tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "roadmap.py"), str(demo_dir), "--out", str(out),
         "--view", "milestones"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(out / "roadmap.md") in proc.stdout
    assert len(read_csv(out / "roadmap.csv")) == len(MILESTONES)
    assert (out / "roadmap.png").read_bytes()[:4] == b"\x89PNG"


def test_script_argument_errors(tmp_path):
    with pytest.raises(SystemExit) as e:
        report.main(["--wandb", "ent/proj"])  # no --group
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        report.main(["--view", "milestones"])  # neither RESULTS_DIR nor --wandb
    assert e.value.code == 2


def _run_wandb_cli(tmp_path: Path, env: dict[str, str], timeout: float):
    try:
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "roadmap.py"), "--wandb", "ent/proj",
             "--group", "g1", "--out", str(tmp_path / "w")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.skip(f"the W&B client kept retrying past {timeout} s here")


def _assert_one_sentence_error(proc, tmp_path: Path) -> None:
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    msg = proc.stderr.strip().splitlines()[-1]
    assert msg.startswith("roadmap: error: could not read the W&B runs of group 'g1' in "
                          "'ent/proj'")
    assert msg.endswith("or pass a local RESULTS_DIR instead.")
    assert not (tmp_path / "w").exists()


def test_wandb_without_credentials_is_one_sentence_not_a_traceback(tmp_path):
    env = {k: v for k, v in _env().items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "netrc"), WANDB_MODE="offline",
               WANDB_BASE_URL="http://127.0.0.1:9", WANDB_CONFIG_DIR=str(tmp_path))
    _assert_one_sentence_error(_run_wandb_cli(tmp_path, env, 60), tmp_path)


@pytest.mark.slow  # waits for the W&B client's request timeout (about 20 s)
def test_wandb_unreachable_is_one_sentence_not_a_traceback(tmp_path):
    env = _env(WANDB_MODE="offline", WANDB_BASE_URL="http://127.0.0.1:9",
               WANDB_API_KEY="x" * 40, WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path))
    _assert_one_sentence_error(_run_wandb_cli(tmp_path, env, 90), tmp_path)


def test_runs_under_two_and_a_half_times_chance_are_flagged(tmp_path):
    root = tmp_path / "results"
    ten = {"data": {"num_classes": 10}}
    write_result(root, "resnet50", 0, 24.9, config=ten)  # under 25% = 2.5 x chance: flagged
    write_result(root, "resnet50", 1, 25.0, config=ten)
    write_result(root, "recipe", 0, 60.0, config=ten)
    write_result(root, "recipe", 1, 61.0, config={})  # no class count: cannot be judged
    weak = report.below_chance_floor(report.load_results(root))
    assert [(r.rung, r.seed) for r in weak] == [("resnet50", 0)]
    report.write_report(report.load_results(root), tmp_path / "out")
    md = (tmp_path / "out" / "roadmap.md").read_text()
    assert "did not learn on this budget" in md and "`resnet50` seed 0: 24.90 (chance 10.0)" in md
    assert "1 run(s) ended under 2.5\u00d7 chance" in md


def test_figure_axis_is_not_cut_and_shows_every_seed(demo_dir):
    runs = report.load_results(demo_dir)
    (key, group), = report.group_runs(runs).items()
    fig = report.make_figure(report.build_table(group), report._group_info(key, group))
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 100.0)  # 70 vs 72 must not look like a doubling
    assert not ax.patches  # points with intervals, no bars
    seed_dots = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3]
    assert any(list(ln.get_xdata()) == DEMO["recipe"] for ln in seed_dots)
