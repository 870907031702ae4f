"""Every committed report rebuilds from its runs with the command its folder's README gives
(the roadmap, the backbones table, the proxy calibration): the markdown and CSV files come out
byte for byte as committed (figures are not compared:
their pixels depend on the installed matplotlib and fonts)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
FENCE = re.compile(r"```(?:bash|sh)?\n(.*?)```", re.S)


def report_commands() -> list[tuple[str, list[str], str]]:
    """(folder, roadmap.py arguments without --out, the --out folder) for every report command
    in a fenced block of a results README."""
    out = []
    for readme in sorted(RESULTS.glob("*/README.md")):
        for block in FENCE.findall(readme.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line)
                if words[:2] == ["python", "scripts/roadmap.py"]:
                    args = words[2:]
                elif words[:3] == ["python", "-m", "ladder.report.backbones"]:
                    args = ["--backbones", *words[3:]]
                elif words[:2] == ["python", "scripts/calibrate.py"] and "--report" in words:
                    args = ["--calibration", *words[2:]]
                else:
                    continue
                i = args.index("--out")
                dest = args[i + 1]
                out.append((readme.parent.name, args[:i] + args[i + 2:], dest))
    return out


COMMANDS = report_commands()


def test_every_report_folder_names_its_command():
    folders = {p.parent.name for name in ("roadmap.md", "budget.md", "loo.md", "normbatch.md",
                                          "backbones.md", "calibration.md")
               for p in RESULTS.glob(f"*/{name}")}
    assert folders <= {dest.split("/")[1] for _, _, dest in COMMANDS}


@pytest.mark.parametrize("folder, args, dest", COMMANDS,
                         ids=[f"{d}:{' '.join(a[1:]) or 'full'}" for _, a, d in COMMANDS])
def test_a_committed_report_rebuilds_byte_for_byte(folder, args, dest, tmp_path, monkeypatch):
    from ladder.report import backbones, main

    monkeypatch.chdir(ROOT)
    if args[0] == "--backbones":
        backbones.main([*args[1:], "--out", str(tmp_path)])
    elif args[0] == "--calibration":
        import runpy
        import sys

        monkeypatch.setattr(sys, "argv", ["calibrate.py", *args[1:], "--out", str(tmp_path)])
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(ROOT / "scripts" / "calibrate.py"), run_name="__main__")
        assert done.value.code == 0
    else:
        main([*args, "--out", str(tmp_path)])
    written = sorted(p for p in tmp_path.rglob("*") if p.suffix in (".md", ".csv"))
    assert written
    for path in written:
        committed = ROOT / dest / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is not committed"
        assert path.read_text() == committed.read_text(), (
            f"{committed} differs from what `python scripts/roadmap.py {' '.join(args)}` writes")
