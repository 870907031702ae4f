"""The summary of scripts/gpu_check.sh and scripts/gpu_ladder.sh: one JSON file with one entry
per step (name, status, exit code, seconds, the step's limit, its log, and the key numbers it
measured), rewritten atomically under a lock after every change, and the archive (tar.gz of the
folder the script gathers its logs and results in, and the summary) rebuilt with it. The
subcommands record, show and collect of scripts/gpu_steps.py (:mod:`.gpu_steps`). The standard
library only, and no import of the rest of the package: the scripts run these twice a step,
under any Python.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tarfile
from pathlib import Path


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def write_json_atomic(path: Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def lock_path(summary: Path, pack_dir: Path | str | None = None) -> Path:
    """Where the lock of ``summary`` lives: beside the folder the archive is packed from (the
    scripts' work folder, so the output folder holds only the summary and the archive), else
    beside the summary."""
    if pack_dir:
        return Path(pack_dir).with_name(Path(pack_dir).name + ".lock")
    return Path(summary).with_name(Path(summary).name + ".lock")


@contextlib.contextmanager
def locked(lock: Path):
    """An exclusive lock on the file ``lock``: the script and its background collector both
    write the summary and the archive."""
    import fcntl

    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _skip_in_archive(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """No checkpoints, lock files or half-written temporary files in the archive."""
    name = Path(info.name)
    temporary = name.name.startswith(".") and ".tmp" in name.name
    if name.suffix in (".pt", ".lock") or "checkpoints" in name.parts or temporary:
        return None
    return info


def pack(archive: Path, folder: Path, summary: Path) -> None:
    """tar.gz of ``folder`` and ``summary`` (checkpoints left out), written atomically."""
    archive = Path(archive)
    tmp = archive.with_name(f".{archive.name}.tmp{os.getpid()}")
    with tarfile.open(tmp, "w:gz") as tar:
        if Path(summary).exists():
            tar.add(summary, arcname=Path(summary).name)
        if Path(folder).is_dir():
            tar.add(folder, arcname=Path(folder).name, filter=_skip_in_archive)
    os.replace(tmp, archive)


def _status(rc: int) -> str:
    if rc == 0:
        return "ok"
    if rc in (124, 137):  # timeout's exit status; 137: killed after the grace period
        return "timed_out"
    return "failed"


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def bench_numbers(path: Path) -> dict:
    """The key numbers of a scripts/benchmark.py --json file."""
    data = read_json(path)
    if not data:
        return {}
    out = {"device": data.get("device"), "precision": data.get("precision"),
           "settings": {k: data.get("settings", {}).get(k)
                        for k in ("batch", "size", "compile", "steps", "repeats")
                        if k in data.get("settings", {})}}
    for row in data.get("rows", []):
        keep = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                if k in ("img_per_s", "reference", "reference_img_per_s", "ratio", "time_ratio",
                         "peak_mem_gib", "reference_peak_mem_gib", "pipeline",
                         "trainer_img_per_s", "pure_img_per_s")}
        out[row.get("rung", "?")] = keep
    return out


# ----------------------------------------------------------------------------- record / show
def cmd_record(a) -> int:
    summary = Path(a.summary)
    with locked(lock_path(summary, a.pack_dir)):
        data = read_json(summary) or {"script": a.script, "started": now_iso(), "finished": False,
                                      "steps": []}
        for item in a.meta or []:
            key, _, value = item.partition("=")
            data[key] = _parse_value(value)
        for name in (a.plan or "").split(","):
            if name and not any(st["name"] == name for st in data["steps"]):
                data["steps"].append({"name": name, "status": "pending"})
        if a.name:
            steps = data.setdefault("steps", [])
            entry = next((s for s in steps if s["name"] == a.name), None)
            if entry is None:
                entry = {"name": a.name}
                steps.append(entry)
            if a.status == "pending":
                entry.update({"status": "pending"})
            elif a.status == "skipped":
                entry.update({"status": "skipped", "why": a.why or "not selected"})
            elif a.status == "running":
                entry.update({"status": "running", "started": now_iso(), "limit_s": a.limit,
                              "log": a.log})
            else:
                rc = int(a.rc)
                entry.update({"status": a.status or _status(rc), "rc": rc,
                              "seconds": round(float(a.seconds), 1), "limit_s": a.limit,
                              "log": a.log or entry.get("log"), "ended": now_iso()})
                if a.why:
                    entry["why"] = a.why
            numbers = dict(entry.get("numbers") or {})
            for path in a.numbers or []:
                numbers.update(read_json(path) or {})
            for path in a.bench or []:
                numbers.update(bench_numbers(Path(path)))
            if numbers:
                entry["numbers"] = numbers
        if a.finished:  # a step still pending never ran: the script ended before it
            data["finished"] = True
            for entry in data.get("steps", []):
                if entry.get("status") == "pending":
                    entry.update({"status": "skipped", "why": "the script ended before this step"})
        data["updated"] = now_iso()
        write_json_atomic(summary, data)
        if a.archive:
            pack(Path(a.archive), Path(a.pack_dir), summary)
    return 0


def _short(numbers: dict, limit: int = 110) -> str:
    parts = []
    for key, value in numbers.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in value.items() if not isinstance(v, (dict, list)))
            parts.append(f"{key}: {inner}")
        elif isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        elif not isinstance(value, list):
            parts.append(f"{key} {value}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def cmd_show(a) -> int:
    data = read_json(a.summary)
    if not data:
        print(f"no summary at {a.summary}")
        return 1
    print(f"{data.get('script')} summary ({a.summary}), {data.get('device', '')}")
    fine = True
    print(f"{'step':<20} {'status':<11} {'rc':>4} {'s':>6} {'limit':>6}  key numbers")
    for s in data.get("steps", []):
        rc = s.get("rc", "")
        secs = f"{s['seconds']:.0f}" if "seconds" in s else ""
        print(f"{s['name']:<20} {s.get('status', ''):<11} {rc!s:>4} {secs:>6} "
              f"{s.get('limit_s') or '':>6}  {_short(s.get('numbers') or {}, a.width)}")
        if s.get("status") == "skipped" and s.get("why"):
            print(f"{'':<20} ({s['why']})")
        deselected = s.get("status") == "skipped" and "LADDER_GPU_STEPS" in (s.get("why") or "")
        fine = fine and (s.get("status") == "ok" or deselected)
    return 0 if fine or not a.exit_code else 1


# ----------------------------------------------------------------------------- collect
def cmd_collect(a) -> int:
    """Copy each finished run's result.json (and its train.log) from the work folder into the
    output folder, and count finished / milestone runs into the step's numbers."""
    src, dest = Path(a.runs), Path(a.dest)
    copied = 0
    completed = failed = milestones = 0
    for result in sorted(src.glob("*/seed*/result.json")):
        run = result.parent
        data = read_json(result)
        if not data:
            continue  # being written: next time
        target = dest / run.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        out = target / "result.json"
        st = result.stat()
        stale = not out.exists() or out.stat().st_size != st.st_size \
            or out.stat().st_mtime < st.st_mtime
        if stale:
            shutil.copy2(result, out)
            if (run / "train.log").exists():
                shutil.copy2(run / "train.log", target / "train.log")
            copied += 1
        if data.get("status") == "completed":
            completed += 1
            milestones += bool(data.get("milestone"))
        else:
            failed += 1
    if a.logs:  # at the end: every run's log, finished or not
        for log in src.glob("*/seed*/train.log"):
            target = dest / log.parent.relative_to(src)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(log, target / "train.log")
            copied += 1
    if copied and a.summary:
        with locked(lock_path(Path(a.summary), a.pack_dir)):
            data = read_json(a.summary) or {"steps": []}
            entry = next((s for s in data.get("steps", []) if s["name"] == a.step), None)
            if entry is not None:
                numbers = dict(entry.get("numbers") or {})
                numbers.update({"runs_completed": completed, "runs_failed": failed,
                                "milestone_runs_completed": milestones})
                entry["numbers"] = numbers
                data["updated"] = now_iso()
                write_json_atomic(Path(a.summary), data)
            if a.archive:
                pack(Path(a.archive), Path(a.pack_dir), Path(a.summary))
    return 0
