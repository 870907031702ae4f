"""scripts/*.py are entry points: each parses its arguments and makes one call into the package,
and its command line works from any folder without an install. Plus the logic that moved out of
them and has no other test: the budgets' step cost (ladder/bench/preset_cost.py) and the
augmentation benchmark (ladder/bench/augment_bench.py)."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPTS = sorted((REPO / "scripts").glob("*.py"))
COMMANDS = ["augment_benchmark", "benchmark", "gpu_steps", "loo", "preset_cost", "roadmap",
            "sweep", "timm_model_tests"]  # python scripts/<name>.py


def test_scripts_define_nothing_but_their_command_line():
    """No script holds logic: at most a ``main`` that parses arguments, no classes, no other
    functions (those live in the package, where they are imported and tested)."""
    assert set(COMMANDS) <= {p.stem for p in SCRIPTS}
    for path in SCRIPTS:
        tree = ast.parse(path.read_text())
        defined = [node.name for node in tree.body
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert defined in ([], ["main"]), f"{path.name} defines {defined}"
        assert len(path.read_text().splitlines()) <= 80, f"{path.name} is long for an entry point"


@pytest.mark.slow
@pytest.mark.parametrize("script", [f"{name}.py" for name in COMMANDS])
def test_each_command_line_runs_from_elsewhere_without_pythonpath(script, tmp_path):
    """``python scripts/X.py --help`` from another folder, PYTHONPATH cleared: the script finds
    the checkout's package by itself."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--help"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage" in proc.stdout.lower() or "python scripts/" in proc.stdout


def test_preset_cost_times_each_setting_against_the_first(tmp_path, capsys):
    from ladder.bench.preset_cost import step_cost

    tiny = "model.width_multiplier=0.0625"
    out = tmp_path / "cost.json"
    rows = step_cost(["micro"], [f"preset=demo {tiny} data.image_size=32",
                                 f"preset=demo {tiny} data.image_size=64"],
                     batch=2, repeats=1, json_path=out)
    assert [r["setting"].split()[-1] for r in rows] == ["data.image_size=32", "data.image_size=64"]
    assert rows[0]["ratio_to_reference"] == 1.0 and rows[1]["ms_per_step"] > 0
    assert json.loads(out.read_text())["rows"] == rows
    assert "ms/step" in capsys.readouterr().out


def test_augment_benchmark_times_kornia_against_the_batched_path(tmp_path):
    pytest.importorskip("kornia")
    from ladder.bench import augment_bench

    out = tmp_path / "aug.json"
    rows = augment_bench.run(batch=4, sizes=[32], recipes=["crop_flip"], steps=1, warmup=1,
                             repeats=1, device="cpu", json_path=out)
    assert len(rows) == 1 and rows[0]["before_img_per_s"] > 0 and rows[0]["after_img_per_s"] > 0
    assert json.loads(out.read_text())["kornia"]
    with pytest.raises(SystemExit, match="unknown recipe"):
        augment_bench.run(recipes=["nothing"], device="cpu")


def test_augment_benchmark_without_kornia_says_how_to_install_it(monkeypatch):
    from ladder.bench import augment_bench

    monkeypatch.setitem(sys.modules, "kornia", None)  # `import kornia` raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        augment_bench.run(device="cpu")
    message = str(exit_info.value)
    assert 'pip install -e ".[bench]"' in message and message.count(". ") == 0


def test_kornia_is_an_extra_that_only_the_augmentation_benchmark_imports():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("kornia") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert "kornia>=0.7" in extras["bench"] and "kornia>=0.7" in extras["dev"]
    def imports_kornia(path) -> bool:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "kornia" for name in names):
                return True
        return False

    importers = sorted(str(p.relative_to(REPO)) for p in (REPO / "ladder").rglob("*.py")
                       if imports_kornia(p))
    assert importers == ["ladder/bench/augment_bench.py"]


def test_what_the_shell_scripts_import_from_the_package_exists():
    """``from ladder.X import Y`` inside scripts/*.sh (python -c snippets) names real things."""
    import importlib
    import re

    found = []
    for path in sorted((REPO / "scripts").glob("*.sh")):
        for module, names in re.findall(r"from (ladder[\w.]*) import ([\w, ]+)", path.read_text()):
            for name in (n.strip() for n in names.split(",")):
                found.append((path.name, module, name))
                assert hasattr(importlib.import_module(module), name), (path.name, module, name)
    assert ("cpu_benchmarks.sh", "ladder.utils.runtime", "device_name") in found
