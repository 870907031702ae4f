"""Read what an offline W&B run wrote: its ``run-<id>.wandb`` transaction log.

The file is a 7-byte header (":W&B", magic, version) followed by LevelDB-log records in 32 KiB
blocks (header: crc32c u32, length u16, type u8 FULL/FIRST/MIDDLE/LAST), each payload a
``wandb_internal_pb2.Record`` protobuf. Only what the tests need; checksums are not verified.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
        elif kind == 0:  # zero padding at the end
            break


def read_records(path: Path) -> dict:
    """{'run': Record.run, 'config': {...}, 'history': [{...}], 'summary': {...}, 'exit_code':
    None until the run's exit record is written} of a run."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out = {"run": None, "config": {}, "history": [], "summary": {}, "exit_code": None}
    for payload in _payloads(data):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            _config(out["config"], record.run.config.update)
        elif kind == "config":
            _config(out["config"], record.config.update)
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.history.item})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.summary.update})
    return out


def _config(config: dict, items) -> None:
    """Config items into ``config``; a nested key (``_wandb.visualize.<chart>``, how custom
    charts are recorded) becomes nested dicts."""
    for i in items:
        path = [i.key] if i.key else list(i.nested_key)
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(i.value_json)
