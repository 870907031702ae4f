"""The steps of scripts/gpu_check.sh and scripts/gpu_ladder.sh that are easier in Python.

    python scripts/gpu_steps.py record   --summary S --name STEP ...  # one step into the summary
    python scripts/gpu_steps.py collect  --runs WORK/runs --dest OUT/runs ...  # finished runs out
    python scripts/gpu_steps.py show     --summary S                 # the summary as a table
    python scripts/gpu_steps.py versions --json F                    # software and device
    python scripts/gpu_steps.py train    --run-dir D [--expect-rc 75] -- <train.py overrides>
    python scripts/gpu_steps.py round    --n 4 --window 10 ... -- <train.py overrides>
    python scripts/gpu_steps.py size     --round F | --rate-from S | --assume-img-s X ...
    python scripts/gpu_steps.py cache    -- <train.py overrides>     # decode the data once
    python scripts/gpu_steps.py bench    [--compile-backend eager] -- <scripts/benchmark.py args>

The summary is one JSON file with one entry per step (name, status, exit code, seconds, the
step's limit, its log, and the key numbers it measured), rewritten atomically after every
change, and the archive (tar.gz of the script's output folder and the summary) is rebuilt with
it, so a script stopped at any point still leaves both. record, collect and show use only the
standard library; versions, round, train read what torch wrote, importing torch only there.

This module parses the command line of scripts/gpu_steps.py; the subcommands live beside it by
job: record, show and collect in :mod:`.gpu_summary`, round and size in :mod:`.gpu_rounds`,
train, versions, cache and bench in :mod:`.gpu_runs`. These four modules import only the standard
library when loaded, so scripts/gpu_steps.py runs record, show and collect without the package's
``__init__`` (torch and timm: seconds, and the scripts record twice a step).
"""
from __future__ import annotations

import argparse

from ladder.bench.gpu_rounds import cmd_round, cmd_size
from ladder.bench.gpu_runs import cmd_bench, cmd_cache, cmd_train, cmd_versions
from ladder.bench.gpu_summary import cmd_collect, cmd_record, cmd_show


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/gpu_steps.py",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("record", help="add or update a step in the summary; rebuild the archive")
    r.add_argument("--summary", required=True)
    r.add_argument("--script", default="")
    r.add_argument("--name")
    r.add_argument("--status", choices=("pending", "skipped", "running", "ok", "failed",
                                        "timed_out", "interrupted"))
    r.add_argument("--rc", default=0)
    r.add_argument("--seconds", default=0.0)
    r.add_argument("--limit", type=int)
    r.add_argument("--log")
    r.add_argument("--why")
    r.add_argument("--numbers", action="append", help="a JSON file of numbers (if it exists)")
    r.add_argument("--bench", action="append", help="a scripts/benchmark.py --json file")
    r.add_argument("--meta", action="append", help="KEY=VALUE at the top of the summary")
    r.add_argument("--plan", help="step names, comma-separated: listed as pending")
    r.add_argument("--finished", action="store_true")
    r.add_argument("--archive")
    r.add_argument("--pack-dir")
    r.set_defaults(fn=cmd_record)

    c = sub.add_parser("collect", help="copy finished runs out of the work folder")
    c.add_argument("--runs", required=True)
    c.add_argument("--dest", required=True)
    c.add_argument("--summary")
    c.add_argument("--step", default="sweep")
    c.add_argument("--archive")
    c.add_argument("--pack-dir")
    c.add_argument("--logs", action="store_true", help="also every unfinished run's train.log")
    c.set_defaults(fn=cmd_collect)

    s = sub.add_parser("show", help="print the summary as a table")
    s.add_argument("--summary", required=True)
    s.add_argument("--width", type=int, default=110)
    s.add_argument("--exit-code", action="store_true",
                   help="exit 1 unless every step ran and passed (deselected ones aside)")
    s.set_defaults(fn=cmd_show)

    v = sub.add_parser("versions", help="software and device, as JSON")
    v.add_argument("--json")
    v.add_argument("--allow-cpu", action="store_true", help="exit 0 without a GPU")
    v.set_defaults(fn=cmd_versions)

    t = sub.add_parser("train", help="one train.py run with expectations")
    t.add_argument("--run-dir", required=True)
    t.add_argument("--numbers")
    t.add_argument("--expect-rc", type=int, action="append")
    t.add_argument("--expect", action="append", help="a regex some output line must match")
    t.add_argument("--expect-result", action="append",
                   help="KEY=VALUE: a dotted key of the run's result.json and its value")
    t.add_argument("--sigterm-at-step", type=int,
                   help="the trainer sends itself SIGTERM after this optimizer step")
    t.add_argument("overrides", nargs="*")
    t.set_defaults(fn=cmd_train)

    o = sub.add_parser("round", help="one concurrency round")
    o.add_argument("--n", type=int, required=True)
    o.add_argument("--window", type=float, required=True, help="seconds of training per job")
    o.add_argument("--rungs", default="depthwise", help="cycled over the jobs")
    o.add_argument("--seed0", type=int, default=1)
    o.add_argument("--work", required=True)
    o.add_argument("--log-dir", required=True)
    o.add_argument("--json", required=True)
    o.add_argument("--budget", type=float, default=0.0,
                   help="the step's time limit (default: $STEP_LIMIT): jobs are stopped "
                        "in time to read them")
    o.add_argument("--reserve", type=float, default=12.0)
    o.add_argument("--grace", type=float, default=30.0, help="SIGKILL this long after SIGTERM")
    o.add_argument("overrides", nargs="*")
    o.set_defaults(fn=cmd_round)

    z = sub.add_parser("size", help="epochs for the ladder from a throughput")
    z.add_argument("--round")
    z.add_argument("--rate-from")
    z.add_argument("--assume-img-s", type=float, default=2500.0)
    z.add_argument("--assume-startup-s", type=float, default=15.0)
    z.add_argument("--end-s", type=float, default=2.0, help="per job: writing the result")
    z.add_argument("--images-per-epoch", type=int, default=9344)
    z.add_argument("--rungs", default="ladder")
    z.add_argument("--seeds", default="0,1,2")
    z.add_argument("--first", help="also print these rungs' names (FIRST=...)")
    z.add_argument("--jobs", type=int, required=True)
    z.add_argument("--budget", type=float, required=True)
    z.add_argument("--tv-factor", type=int, default=3)
    z.add_argument("--safety", type=float, default=0.85)
    z.add_argument("--min-epochs", type=int, default=1)
    z.add_argument("--max-epochs", type=int, default=15)
    z.add_argument("--fixed", type=int, help="use these epochs; print the sizing beside them")
    z.add_argument("--json")
    z.set_defaults(fn=cmd_size)

    k = sub.add_parser("cache", help="decode the data into the tensor cache once")
    k.add_argument("--rungs", default="micro,resnet50")
    k.add_argument("overrides", nargs="*")
    k.set_defaults(fn=cmd_cache)

    b = sub.add_parser("bench", help="ladder/bench/benchmark.py, optionally another compile backend")
    b.add_argument("--compile-backend")
    b.add_argument("args", nargs="*")
    b.set_defaults(fn=cmd_bench)

    a = p.parse_args(argv)
    if a.cmd == "train" and not a.expect_rc:
        a.expect_rc = [0]
    return a.fn(a)
