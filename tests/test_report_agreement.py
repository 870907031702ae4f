"""Agreement with the paper and the pooled seed noise (ladder/report/agreement.py, stats.py)."""
from __future__ import annotations

import csv
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ladder import report  # noqa: E402
from ladder.report import agreement, stats  # noqa: E402
from ladder.ladders.rungs import MILESTONES, RUNGS  # noqa: E402
from test_report import write_result  # noqa: E402

PAPER = {r.name: r.paper_top1 for r in RUNGS}
NAMES = list(MILESTONES.values())  # resnet50, recipe, patchify, width, ..., separate_downsampling


def _folder(tmp_path: Path, values: dict[str, list[float]]) -> Path:
    root = tmp_path / "runs"
    for rung, vals in values.items():
        for seed, v in enumerate(vals):
            write_result(root, rung, seed, v)
    return root


def _rows(root: Path, view: str = "milestones"):
    (key, group), = report.group_runs(report.load_results(root)).items()
    return report.build_table(group, view), report._group_info(key, group)


def _csv(path: Path, key: str) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {row[key]: row for row in csv.DictReader(fh)}


# ------------------------------------------------------------------------------ Spearman


def test_spearman_with_ties_matches_the_hand_computed_value():
    # x ranks 1, 2.5, 2.5, 4 (tie averaged); y ranks 1, 3, 2, 4. Pearson of the ranks:
    # sum(dx dy) = 4.5, sum(dx^2) = 4.5, sum(dy^2) = 5 -> 4.5 / sqrt(22.5) = 3 / sqrt(10).
    # (The no-ties shortcut 1 - 6 sum(d^2) / (n (n^2 - 1)) would give 0.95.)
    assert list(agreement.average_ranks(np.array([1, 2, 2, 4]))) == [1, 2.5, 2.5, 4]
    rho = report.spearman([1, 2, 2, 4], [10, 30, 20, 40])
    assert rho == pytest.approx(3 / math.sqrt(10), abs=1e-12)
    assert rho != pytest.approx(0.95, abs=1e-3)
    assert report.spearman([10, 30, 20, 40], [1, 2, 2, 4]) == pytest.approx(rho, abs=1e-12)
    assert report.spearman([1, 2, 3], [9, 5, 1]) == pytest.approx(-1.0)
    assert report.spearman([5, 5, 5], [1, 2, 3]) is None  # no order on one side


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    values = [[70.0, 73.0, 68.0], [72.0, 69.0, 74.0], [73.0, 76.0, 71.0], [70.0, 71.0, 77.0],
              [76.0, 74.0, 79.0], [78.0, 75.0, 77.0]]
    paper = [76.13, 78.82, 79.51, 80.50, 80.64, 81.97]
    rho = report.spearman([np.mean(v) for v in values], paper)
    assert rho == pytest.approx(1 - 6 * 2 / (6 * 35))  # rungs 3 and 4 swap places: sum d^2 = 2
    lo, hi, ok = report.bootstrap_spearman(values, paper)
    assert lo <= rho <= hi and lo < rho and ok == agreement.N_BOOT
    assert report.bootstrap_spearman(values, paper) == (lo, hi, ok)  # fixed RNG seed
    # the RNG seed is what fixes it: other seeds (few resamples) give other intervals
    assert len({report.bootstrap_spearman(values, paper, n_boot=50, seed=s)
                for s in range(5)}) > 1
    # one seed a rung: every resample is the data itself
    single = [[v[0]] for v in values]
    r1 = report.spearman([v[0] for v in values], paper)
    assert report.bootstrap_spearman(single, paper)[:2] == pytest.approx((r1, r1))


# ------------------------------------------------------------------- chi^2 and Bartlett


def _chi2_sf_numeric(x: float, k: int, n: int = 20000) -> float:
    """1 - CDF by Simpson integration of the chi^2 density on [0, x] (substituting u = t^2 so
    that the k = 1 density's singularity at 0 disappears)."""
    c = 1 / (2 ** (k / 2) * math.gamma(k / 2))

    def g(u):  # density(u^2) * 2u
        return 2 * c * u ** (k - 1) * math.exp(-u * u / 2)

    b = math.sqrt(x)
    h = b / n
    s = g(0) + g(b) + sum((4 if i % 2 else 2) * g(i * h) for i in range(1, n))
    return 1 - s * h / 3


@pytest.mark.parametrize("df", [1, 2, 3, 6, 7, 16])
@pytest.mark.parametrize("x", [0.5, 3.0, 12.0])
def test_chi2_survival_matches_numerical_integration(df, x):
    assert stats.chi2_sf(x, df) == pytest.approx(_chi2_sf_numeric(x, df), abs=1e-7)


def test_bartlett_matches_a_published_example():
    # scipy.stats.bartlett's documented example (statistic and p-value as SciPy prints them)
    a = [8.88, 9.12, 9.04, 8.98, 9.00, 9.08, 9.01, 8.85, 9.06, 8.99]
    b = [8.88, 8.95, 9.29, 9.44, 9.15, 9.58, 8.36, 9.18, 8.67, 9.05]
    c = [8.95, 9.12, 8.95, 8.85, 9.03, 8.84, 9.07, 8.98, 8.86, 8.98]
    stat, df, p = report.bartlett([a, b, c])
    assert stat == pytest.approx(22.789434813726768, rel=1e-9) and df == 2
    assert p == pytest.approx(1.1254782518834628e-05, rel=1e-6)
    assert report.bartlett([[1.0, 2.0], [3.0, 4.0]])[0] == pytest.approx(0.0, abs=1e-9)
    assert report.bartlett([[1.0, 1.0], [3.0, 4.0]]) is None  # a zero variance
    assert report.bartlett([[1.0, 2.0], [3.0]]) is None  # one group with 2 values


# ---------------------------------------------------------------------- the pooled rule

# Equal variances by construction: 2 seeds at m +- 1/sqrt(2) and 3 seeds at m - 1, m, m + 1
# both have sample variance 1.
H = 1 / math.sqrt(2)
EQUAL = {name: ([m - H, m + H] if i % 2 == 0 else [m - 1, m, m + 1])
         for i, (name, m) in enumerate(zip(NAMES, [70.0, 73.0, 72.0, 75.0, 75.5, 74.0, 78.0]))}


def test_pooled_interval_is_narrower_than_welch_with_df_sum_of_n_minus_1(tmp_path):
    root = _folder(tmp_path, EQUAL)
    rows, _ = _rows(root)
    noise = report.pooled_noise([r.values for r in rows])
    df = sum(len(v) - 1 for v in EQUAL.values())
    assert df == 10 and noise.df == df and noise.k == 7
    assert noise.sd == pytest.approx(1.0, abs=1e-9) and noise.valid
    assert noise.test[2] == pytest.approx(1.0, abs=1e-6)  # identical variances
    out = tmp_path / "out"
    report.main([str(root), "--out", str(out), "--view", "milestones"])
    table = _csv(out / "roadmap.csv", "rung")
    for prev, name in zip(NAMES, NAMES[1:]):
        r = table[name]
        assert int(r["pooled_df"]) == df
        half = report.t975(df) * 1.0 * math.sqrt(1 / len(EQUAL[name]) + 1 / len(EQUAL[prev]))
        delta = np.mean(EQUAL[name]) - np.mean(EQUAL[prev])
        assert float(r["pooled_ci_low"]) == pytest.approx(delta - half, abs=1e-4)
        assert float(r["pooled_ci_high"]) == pytest.approx(delta + half, abs=1e-4)
        welch = float(r["ci_high"]) - float(r["ci_low"])
        assert 2 * half < welch
        lo, hi = float(r["pooled_ci_low"]), float(r["pooled_ci_high"])
        assert r["pooled_verdict"] == ("gain" if lo > 0 else "hurt" if hi < 0 else "within noise")
    # recipe +3 (n 3 vs 2) resolves only with the pooled rule: Welch +-3.93 (df 2), pooled
    # +-2.03 (t 2.228, df 10); patchify -1 and kernel7 -1.5 resolve under neither
    assert table["recipe"]["verdict"] == "within noise"
    assert table["recipe"]["pooled_verdict"] == "gain"
    assert table["patchify"]["pooled_verdict"] == "within noise"
    assert table["kernel7"]["pooled_verdict"] == "within noise"
    md = (out / "roadmap.md").read_text()
    line = next(s for s in md.splitlines() if s.startswith("- Pooled seed noise"))
    assert "The pooled rule applies" in line and "(df 10)" in line
    assert "`recipe` +3.00" in line and "`width` +3.00" in line and "`patchify`" not in line


def test_one_rung_with_100x_the_spread_is_flagged(tmp_path):
    values = {name: [m, m + 0.1] for name, m in zip(NAMES, [70.0, 74.0, 73.0, 77.0, 77.5, 76.0,
                                                            80.0])}
    values["width"] = [77.0, 87.0]  # 100x the spread of every other rung
    root = _folder(tmp_path, values)
    rows, _ = _rows(root)
    noise = report.pooled_noise([r.values for r in rows])
    assert not noise.valid and noise.test[2] < stats.ALPHA and "rejects" in noise.reason
    out = tmp_path / "out"
    report.main([str(root), "--out", str(out), "--view", "milestones"])
    table = _csv(out / "roadmap.csv", "rung")
    for name in NAMES[1:]:
        assert table[name]["pooled_verdict"] == report.UNEQUAL
        assert table[name]["pooled_ci_low"] != ""  # shown, not used
    md = (out / "roadmap.md").read_text()
    assert "not used (variances differ)" in md
    assert "the pooled rule does not apply here" in md
    ag = _csv(out / "agreement.csv", "quantity")
    assert ag["resolved_pooled_paper_direction"]["value"] == ""
    assert ag["gap_pooled"]["note"].startswith("not used: Bartlett")
    # equal spreads pass: the same folder without the wide rung
    values["width"] = [77.0, 77.1]
    ok = report.pooled_noise(list(values.values()))
    assert ok.valid and ok.test[2] > 0.99


def test_pooled_rule_untested_when_seeds_tie(tmp_path):
    noise = report.pooled_noise([[1.0, 2.0], [3.0, 3.0], [5.0]])
    assert noise.df == 2 and noise.test is None and not noise.valid
    ci = report.pooled_interval([3.0, 3.0], [5.0], noise)
    assert stats.pooled_verdict(ci, noise) == report.UNTESTED
    assert report.pooled_noise([[1.0], [2.0]]) is None  # no rung with 2 seeds


# ------------------------------------------------------- agreement on result.json folders

# Milestones, 2 seeds each, spread 1 everywhere (variance 0.5): Welch df 2 (t 4.303, +-3.04),
# pooled df 7 (t 2.365, +-1.67).
STEPS = dict(zip(NAMES, [[70.0, 71.0], [75.0, 76.0], [73.0, 74.0], [80.0, 81.0],
                         [80.5, 81.5], [79.0, 80.0], [85.0, 86.0]]))
# changes: recipe +5, patchify -2 (paper +0.69: the other way), width +7, ib +0.5,
# kernel7 -1.5 (paper -0.07: the same way), micro +6


def test_ends_gap_and_direction_counts_from_result_files(tmp_path):
    root = _folder(tmp_path, STEPS)
    out = tmp_path / "out"
    printed = report.main([str(root), "--out", str(out), "--view", "milestones"])
    assert {p.name for p in printed} == {"roadmap.md", "roadmap.csv", "roadmap.png"}
    ag = _csv(out / "agreement.csv", "quantity")
    assert set(ag) == {"spearman", "gap_welch", "gap_pooled", "steps_paper_direction",
                       "resolved_welch_paper_direction", "resolved_pooled_paper_direction",
                       "pooled_sd", "bartlett"}
    top, bottom = NAMES[-1], NAMES[0]
    paper_gap = PAPER[top] - PAPER[bottom]
    gw, gp = ag["gap_welch"], ag["gap_pooled"]
    assert float(gw["value"]) == pytest.approx(15.0) and float(gw["paper"]) == pytest.approx(
        paper_gap, abs=5e-3)
    half_w = 4.303 * math.sqrt(0.5 / 2 + 0.5 / 2)
    assert (float(gw["ci_low"]), float(gw["ci_high"])) == pytest.approx(
        (15.0 - half_w, 15.0 + half_w), abs=1e-4)
    assert gw["df"] == "2" and gp["df"] == "7"
    half_p = 2.365 * math.sqrt(0.5) * math.sqrt(1 / 2 + 1 / 2)
    assert (float(gp["ci_low"]), float(gp["ci_high"])) == pytest.approx(
        (15.0 - half_p, 15.0 + half_p), abs=1e-4)
    # 6 steps, 5 the paper's way (patchify is not); Welch resolves recipe, width, micro (all
    # the paper's way); pooled also resolves patchify (the other way): 3 of 4
    assert (ag["steps_paper_direction"]["value"], ag["steps_paper_direction"]["n"]) == ("5", "6")
    rw, rp = ag["resolved_welch_paper_direction"], ag["resolved_pooled_paper_direction"]
    assert (rw["value"], rw["n"]) == ("3", "3") and (rp["value"], rp["n"]) == ("3", "4")
    # Spearman without ties, by the textbook formula: rank differences 0,1,-1,1,0,-1,0
    means = [np.mean(STEPS[n]) for n in NAMES]
    rm = np.argsort(np.argsort(means)) + 1
    rpap = np.argsort(np.argsort([PAPER[n] for n in NAMES])) + 1
    expected = 1 - 6 * float(((rm - rpap) ** 2).sum()) / (7 * (49 - 1))
    assert expected == pytest.approx(1 - 24 / 336)
    assert float(ag["spearman"]["value"]) == pytest.approx(expected, abs=1e-4)
    assert float(ag["spearman"]["ci_low"]) <= expected <= float(ag["spearman"]["ci_high"])
    # the findings open with the agreement block, with the same numbers
    md = (out / "roadmap.md").read_text()
    after = md.split("Findings:")[1].strip().splitlines()
    assert after[0] == "- Agreement with the paper:"
    assert after[1].startswith("  - Rank correlation of the 7 rung means")
    assert "+15.00, Welch [" in after[2] and "(df 2), pooled [" in after[2]
    assert f"paper {paper_gap:+.2f}" in after[2]
    assert after[3].startswith("  - Steps moving in the paper's direction: 5 of 6")
    assert "Welch interval, 3 of 3" in after[3] and "pooled rule, 3 of 4" in after[3]


def test_a_flat_paper_step_has_no_direction_and_a_missing_end_no_gap(tmp_path):
    vals = {"kernel7": [75.0, 75.2], "kernel9": [74.0, 74.2], "kernel11": [73.0, 73.2],
            "gelu": [76.0, 76.2]}
    rows, _ = _rows(_folder(tmp_path, vals), view="full")
    a = report.compute_agreement(rows)
    assert [r.rung.name for r in a.flat] == ["kernel9"]  # 80.57 -> 80.57 in Table 10
    assert sorted(r.rung.name for r in a.steps) == ["gelu", "kernel11"]
    assert len(a.along(a.steps)) == 2  # kernel11 down (paper -0.10), gelu up (paper +0.05)
    assert a.gap is None and a.gap_welch is None and a.gap_pooled is None
    assert a.paper_gap == pytest.approx(PAPER[RUNGS[-1].name] - PAPER[RUNGS[0].name])
    text = agreement.agreement_findings(a)
    assert any("not measured" in s for s in text)
    assert any("`kernel9`: the paper's change is 0.00" in s for s in text)


def test_agreement_goes_into_the_wandb_summary(tmp_path, monkeypatch):
    root = _folder(tmp_path, STEPS)
    out = tmp_path / "out"
    paths = report.main([str(root), "--out", str(out), "--view", "milestones"])
    summary: dict = {}

    class Run:
        id, dir = "r1", str(out)

        def __init__(self):
            self.summary = summary

        def log(self, d):
            pass

        def finish(self):
            pass

    fake = types.SimpleNamespace(
        init=lambda **kw: Run(), Table=lambda **kw: kw, Image=lambda *a, **kw: a,
        Settings=lambda **kw: kw, plot=types.SimpleNamespace(bar=lambda *a, **kw: a))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "offline")
    from ladder.report.wandb_log import log_report

    log_report(paths, report.load_results(root), "milestones", "top1", "p", "g", mode="offline")
    assert summary["roadmap/agreement/gap"] == pytest.approx(15.0)
    assert summary["roadmap/agreement/gap_paper"] == pytest.approx(
        PAPER[NAMES[-1]] - PAPER[NAMES[0]])
    assert summary["roadmap/agreement/spearman"] == pytest.approx(1 - 24 / 336)
    assert (summary["roadmap/agreement/spearman_lo"] <= summary["roadmap/agreement/spearman"]
            <= summary["roadmap/agreement/spearman_hi"])
    assert summary["roadmap/agreement/gap_pooled_hi"] - summary[
        "roadmap/agreement/gap_pooled_lo"] < summary["roadmap/agreement/gap_hi"] - summary[
        "roadmap/agreement/gap_lo"]
    assert (summary["roadmap/agreement/steps"], summary["roadmap/agreement/steps_paper_direction"]
            ) == (6, 5)
    assert (summary["roadmap/agreement/resolved"],
            summary["roadmap/agreement/resolved_pooled"]) == (3, 4)
    assert summary["roadmap/agreement/pooled_valid"] is True
    assert summary["roadmap/agreement/pooled_df"] == 7


def test_a_rank_order_no_resample_changes_is_said_to_have_a_zero_width_interval(tmp_path):
    # 3 seeds a rung, each rung 10 points above the one before with a spread of 1: every
    # resample keeps the same order (the paper's but for kernel7 < inverted_bottleneck, so
    # rho = 1 - 6 * 2 / (7 * 48)), the interval has no width and the findings say why
    apart = {n: [50.0 + 10 * i + d for d in (-1.0, 0.0, 1.0)] for i, n in enumerate(NAMES)}
    rows, _ = _rows(_folder(tmp_path / "apart", apart))
    text = agreement.agreement_findings(report.compute_agreement(rows))
    rank = next(s for s in text if s.startswith("Rank correlation"))
    assert "+0.96, 95% bootstrap interval [+0.96, +0.96]" in rank
    assert "No resample changed the order of the rung means" in rank
    # overlapping seeds: the interval has width and the sentence is absent
    close = {n: [50.0 + 0.5 * i + d for d in (-3.0, 0.0, 3.0)] for i, n in enumerate(NAMES)}
    rows, _ = _rows(_folder(tmp_path / "close", close))
    rank = next(s for s in agreement.agreement_findings(report.compute_agreement(rows))
                if s.startswith("Rank correlation"))
    assert "No resample changed" not in rank and "interval [+0.96, +0.96]" not in rank
    # one seed a rung: every resample is the data, so no width is no news and is not reported
    one = {n: [50.0 + 10 * i] for i, n in enumerate(NAMES)}
    rows, _ = _rows(_folder(tmp_path / "one", one))
    rank = next(s for s in agreement.agreement_findings(report.compute_agreement(rows))
                if s.startswith("Rank correlation"))
    assert "have one seed" in rank and "No resample changed" not in rank
