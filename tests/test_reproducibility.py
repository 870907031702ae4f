"""Every result.json records what decides whether a rerun is bit-identical (docs/reproducibility.md)."""
from __future__ import annotations


def test_a_result_records_what_decides_a_bit_identical_rerun(tiny, tmp_path):
    import json

    import torch

    from ladder.train.trainer import train

    train(tiny("micro"), output_dir=tmp_path / "run")
    rec = json.loads((tmp_path / "run" / "result.json").read_text())["reproducibility"]
    assert rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert rec["torch"] == torch.__version__ and rec["threads"] == torch.get_num_threads()
    assert {"numpy", "pillow", "timm", "device", "deterministic_algorithms"} <= set(rec)
