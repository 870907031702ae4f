"""The sweep group's W&B workspace as code (``ladder/track/workspace.py``), built offline for both
built-in ladders and a user's own: its saved spec (runset filter, sort, grouping, panels), the
``--dry-run`` CLI, and the one-sentence error without the optional library.

Nothing here talks to W&B: WANDB_MODE is offline, ``wandb.Api`` (what ``save()`` and ``url``
call) fails the test if anything reaches it, and ``save()`` is never called."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from ladder.ladders import rungs

from ladder.track import workspace
from ladder.track.tracking import ladder_position

# the missing-library error and the docs are tested without it too
needs_library = pytest.mark.skipif(importlib.util.find_spec("wandb_workspaces") is None,
                                   reason='needs wandb-workspaces: pip install -e ".[workspace]"')

# the library's own models still use pydantic's V1 validators: noise, not ours
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic V1 style:DeprecationWarning")

LADDERS = ("convnext", "bag_of_tricks")
GROUP = "demo-sweep"


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """W&B offline, no key, and no way to the W&B API."""
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key

    def no_network(*args, **kwargs):
        raise AssertionError("the workspace tests must not reach the W&B API")

    monkeypatch.setattr(wandb, "Api", no_network)


def spec_of(ladder: str = "convnext", **kwargs) -> dict:
    ws = workspace.build_workspace("ent", "proj", GROUP, ladder, **kwargs)
    return workspace.workspace_spec(ws)


def runset(spec: dict) -> dict:
    (rs,) = spec["spec"]["section"]["runSets"]
    return rs


def sections(spec: dict) -> dict[str, list[dict]]:
    return {s["name"]: s["panels"] for s in spec["spec"]["section"]["panelBankConfig"]["sections"]}


def panels(spec: dict, view_type: str) -> list[dict]:
    return [p for ps in sections(spec).values() for p in ps if p["viewType"] == view_type]


def filter_values(spec: dict) -> dict[str, tuple[str, object]]:
    """run attribute -> (op, value) of the runset's filters (one flat AND list)."""
    flt = runset(spec)["filters"]
    assert flt["filterFormat"] == "filterV2"
    assert all(f.get("connector", "AND") == "AND" for f in flt["filters"])
    return {f["key"]["name"]: (f["op"], f["value"]) for f in flt["filters"]
            if f["key"]["section"] == "run"}


def check_spec(spec: dict, ladder: rungs.Ladder, report: bool = True) -> None:
    """What docs/wandb.md promises of the workspace of group GROUP on ``ladder``."""
    assert ladder.title in spec["displayName"] and GROUP in spec["displayName"]
    assert (spec["entity"], spec["project"]) == ("ent", "proj")
    # (a) the runset: the group's training runs, in ladder order, one group per rung
    flt = filter_values(spec)
    assert flt["group"] == ("=", GROUP)
    op, jobs = flt["jobType"]
    assert (op, jobs) == (("IN", ["train", "report"]) if report else ("=", "train"))
    rs = runset(spec)
    assert rs["sort"]["keys"] == [{"key": {"section": "config", "name": "rung_index.value"},
                                   "ascending": True}]
    assert rs["grouping"] == [{"section": "config", "name": "rung_label.value"}]
    assert {"config:milestone.value", "summary:top1", "summary:params",
            "summary:gflops"} <= set(rs["runFeed"]["columnPinned"])
    colors = [json.loads(unquote(k.split(":", 2)[2]))  # run-color-group:<runset>:<path>
              for k in spec["spec"]["section"]["customRunColors"]]
    assert [path[0]["value"] for path in colors] == workspace.rung_labels(ladder)  # one per rung
    assert {path[0]["key"] for path in colors} == {"config:rung_label.value"}
    (markdown,) = panels(spec, "Markdown Panel")
    assert all(label in markdown["config"]["value"] for label in workspace.rung_labels(ladder))
    (bars,) = panels(spec, "Bar Chart")
    assert bars["config"]["metrics"] == ["top1"]
    assert bars["config"]["groupBy"] == "rung_label.value"
    # (b) learning curves: top-1 per epoch by rung; the step metrics against train/step
    lines = {tuple(p["config"]["metrics"]): p["config"]
             for p in panels(spec, "Run History Line Plot")}
    top1 = lines[("top1",)]
    assert top1["xAxis"] == "epoch" and top1["groupBy"] == "rung_label.value"
    assert top1["groupAgg"] == "mean" and top1["groupArea"] == "stddev"
    for key in ("train/loss", "train/lr"):
        assert lines[(key,)]["xAxis"] == "train/step"
        assert "groupBy" not in lines[(key,)]  # one line per run where the runs are ungrouped
    assert lines[("val_loss", "train_loss")]["xAxis"] == "epoch"
    # (d) compute vs accuracy
    (scatter,) = panels(spec, "Scatter Plot")
    assert (scatter["config"]["xAxis"], scatter["config"]["yAxis"]) == ("summary:gflops",
                                                                        "summary:top1")
    # (c) the report run's panels
    names = list(sections(spec))
    assert names[:2] == ["Runs by rung", "Learning"] and names[-1] == "Compute vs accuracy"
    assert ("Report" in names) == report


@needs_library
@pytest.mark.parametrize("name", LADDERS)
def test_the_workspace_of_each_built_in_ladder(name):
    ladder = rungs.load_ladder(name)
    spec = spec_of(name)
    assert spec["displayName"] == f"{ladder.title}: {GROUP}"
    check_spec(spec, ladder)
    report = sections(spec)["Report"]
    assert [p["viewType"] for p in report] == ["Vega2", "Media Browser", "Weave"]
    assert report[1]["config"]["mediaKeys"] == ["roadmap/figure"]
    assert "roadmap/table" in json.dumps(report[2])


def test_the_rung_labels_are_those_the_training_runs_log():
    for name in LADDERS:
        ladder = rungs.load_ladder(name)
        logged = [ladder_position({"ladder": name, "rung": r})["rung_label"]
                  for r in ladder.names]
        assert workspace.rung_labels(ladder) == logged


@needs_library
def test_the_report_bar_chart_reads_what_wandb_plot_bar_logs():
    """The report logs ``wandb.plot.bar(table, "rung", "top1")`` as ``roadmap/top1_by_rung``:
    its data lands under ``<key>_table``, drawn by the ``wandb/bar/v0`` chart."""
    import wandb

    chart = wandb.plot.bar(wandb.Table(columns=["rung", "top1"], data=[["00 resnet50", 78.8]]),
                           "rung", "top1", title="t")
    chart.set_key("roadmap/top1_by_rung")
    (vega,) = panels(spec_of(), "Vega2")
    assert vega["config"]["panelDefId"] == chart.spec.spec_name
    assert vega["config"]["fieldSettings"] == chart.spec.fields
    table_arg = vega["config"]["userQuery"]["queryFields"][0]["fields"][0]
    assert table_arg["name"] == "summaryTable"
    assert table_arg["args"] == [{"name": "tableKey", "value": chart.spec.table_key}]


@needs_library
def test_without_the_report_run():
    assert spec_of(name="tricks only")["displayName"] == "tricks only"
    spec = spec_of("bag_of_tricks", include_report=False)
    check_spec(spec, rungs.load_ladder("bag_of_tricks"), report=False)
    assert "roadmap/" not in json.dumps(spec)


@needs_library
def test_the_dry_run_writes_the_spec_and_one_line(tmp_path, capsys):
    out = tmp_path / "ws" / "convnext.json"
    assert workspace.main(["--entity", "ent", "--project", "proj", "--group", GROUP,
                           "--dry-run", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "not saved" in lines[0]
    spec = json.loads(out.read_text())
    check_spec(spec, rungs.load_ladder("convnext"))
    assert f"{len(sections(spec))} sections" in lines[0]


USER_FILES = {  # a two-rung ladder of one's own, as README.md's worked example writes one
    "ladder/mini.yaml": "name: mini\ntitle: A two-rung ladder\nprefix: mini_\nrungs:\n"
                        "  - {name: mini_base, label: ResNet-50, kind: root}\n"
                        "  - {name: mini_gelu, label: ReLU -> GELU, kind: architecture}\n"
                        "milestones: [mini_gelu]\n"
                        "reference: {source: none, table: '-', numbers: {}}\n",
    "rung/mini_base.yaml": "# @package _global_\n"
                           "defaults: [{override /recipe: modern}, _self_]\nrung: mini_base\n",
    "rung/mini_gelu.yaml": "# @package _global_\ndefaults: [mini_base, _self_]\n"
                           "rung: mini_gelu\nmodel: {activation: gelu}\n",
}


@needs_library
def test_the_dry_run_on_a_ladder_of_ones_own(tmp_path, capsys):
    """``--config-dir`` finds a user's ladder; the search path is restored afterwards."""
    conf = tmp_path / "my_conf"
    for rel, body in USER_FILES.items():
        (conf / rel).parent.mkdir(parents=True, exist_ok=True)
        (conf / rel).write_text(body)
    before = rungs.search_path()
    out = tmp_path / "mini.json"
    assert workspace.main(["--entity", "ent", "--project", "proj", "--group", GROUP,
                           "--ladder", "mini", "--config-dir", str(conf),
                           "--dry-run", str(out)]) == 0
    assert rungs.search_path() == before
    spec = json.loads(out.read_text())
    mini = rungs.load_ladder("mini", conf)
    check_spec(spec, mini)
    assert spec["displayName"] == f"A two-rung ladder: {GROUP}"
    assert workspace.rung_labels(mini) == ["00 mini_base", "01 mini_gelu"]


@needs_library
def test_an_unknown_ladder_is_one_sentence(tmp_path, capsys):
    assert workspace.main(["--entity", "e", "--project", "p", "--group", "g", "--ladder", "nope",
                           "--dry-run", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no ladder 'nope'") and len(err.splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_without_the_library_one_sentence_names_the_extra(tmp_path, monkeypatch, capsys):
    for mod in [m for m in sys.modules if m.startswith("wandb_workspaces")]:
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.setitem(sys.modules, "wandb_workspaces", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[workspace\]"'):
        workspace.build_workspace("e", "p", "g")
    assert workspace.main(["--entity", "e", "--project", "p", "--group", "g",
                           "--dry-run", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {workspace.MISSING_LIBRARY}"
    assert not (tmp_path / "x.json").exists()
    # the module itself imports without the library (a fresh copy, run from its file)
    spec = importlib.util.spec_from_file_location("_workspace_copy", workspace.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    assert copy.MISSING_LIBRARY == workspace.MISSING_LIBRARY


def test_the_docs_give_the_commands():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "wandb.md").read_text()
    assert "### The workspace, as code" in docs and "Panels to add" not in docs
    assert "python -m ladder.workspace" in docs and "--dry-run" in docs
    assert 'pip install -e ".[workspace]"' in docs
