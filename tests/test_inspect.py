"""``python -m ladder.inspect`` counts on the meta device and prints the numbers it printed when it
built every network with real weights.

RECORDED is the output of ``python -m ladder.inspect --json`` from the version that built each
rung's full-size network on the CPU (params exact, GMACs at 224 px rounded to 3 decimals, as
printed); the slow test below also rebuilds two rungs that way and compares unrounded counts.
"""
from __future__ import annotations

import pytest
import torch

from ladder.ladders import rungs
from ladder.ladders.compose import rung_net_config
from ladder.ladders.inspect import format_table, measure, paper_scale_model
from ladder.nets.model import LadderNet, count_gmacs, count_params

RECORDED = {  # rung: (params, GMACs at 224 px)
    "resnet50": (25_557_032, 4.089),
    "recipe": (25_572_136, 4.089),
    "stage_ratio": (28_646_184, 4.526),
    "patchify": (28_639_784, 4.418),
    "depthwise_conv": (15_740_264, 2.35),
    "width": (33_787_432, 5.268),
    "inverted_bottleneck": (25_858_024, 4.644),
    "move_up": (25_632_040, 4.065),
    "kernel5": (25_727_272, 4.097),
    "kernel7": (25_870_120, 4.146),
    "kernel9": (26_060_584, 4.21),
    "kernel11": (26_298_664, 4.291),
    "gelu": (25_870_120, 4.146),
    "fewer_activations": (25_870_120, 4.146),
    "fewer_norms": (25_837_000, 4.146),
    "layernorm": (25_844_296, 4.146),
    "separate_downsampling": (28_589_128, 4.456),
}


@pytest.fixture(scope="module")
def rows():
    return measure()


def test_every_rung_counts_what_the_full_size_build_counted(rows):
    assert [r["rung"] for r in rows] == list(rungs.RUNG_NAMES) == list(RECORDED)
    got = {r["rung"]: (r["params"], r["gflops"]) for r in rows}
    wrong = {name: (got[name], RECORDED[name]) for name in RECORDED if got[name] != RECORDED[name]}
    assert not wrong, f"(now, recorded) params and GMACs differ: {wrong}"


def test_the_table_prints_the_recorded_digits(rows):
    table = format_table(rows)
    for name, (params, gflops) in RECORDED.items():
        line = next(line for line in table.splitlines() if f" {name} " in line)
        assert f"{params / 1e6:.2f}M" in line and f" {gflops:.2f} " in line, line


def test_the_counted_network_has_no_storage():
    model = paper_scale_model("micro")
    assert all(p.is_meta for p in model.parameters())
    assert all(b.is_meta for b in model.buffers())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "separate_downsampling"])
def test_meta_counts_equal_the_full_size_build(name):
    """The old way, for a BatchNorm ResNet and the ConvNeXt end: real weights on the CPU."""
    real = LadderNet(rung_net_config(name))
    meta = paper_scale_model(name)
    assert count_params(meta) == count_params(real) == RECORDED[name][0]
    assert count_gmacs(meta, 224) == count_gmacs(real, 224)
    assert next(real.parameters()).device == torch.device("cpu")
