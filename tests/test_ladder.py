"""The ladder's fidelity: both ends are the reference models, every rung matches Table 10,
every rung trains, every rung file is exactly its diff."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from omegaconf import OmegaConf

import ladder
from ladder.ladders import rungs
from ladder.ladders.compose import CONF_DIR, compose_config, config_diff, flatten, rung_net_config
from ladder.nets.config import ConfigError, NetConfig
from ladder.nets.convert import load_timm_convnext, load_torchvision_resnet50
from ladder.ladders.inspect import KNOWN_GFLOPS_DEVIATIONS, measure
from ladder.nets.model import LadderNet, count_gmacs

RUNG_DIR = CONF_DIR / "rung"


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter and BN statistic a non-trivial value, so equal outputs mean equal
    networks (layer scale 1e-6 or fresh BN stats would hide differences)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g) if "weight" in name or "gamma" in name
                        else 0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))


def test_resnet50_rung_is_torchvision_resnet50():
    reference = torchvision.models.resnet50()
    _randomize(reference, 0)
    ours = LadderNet(rung_net_config("resnet50"))
    load_torchvision_resnet50(ours, reference.state_dict())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    reference.eval(), ours.eval()
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert expected.abs().max() > 1e-2  # the comparison is not between two near-zero tensors
    assert (expected - got).abs().max().item() <= 1e-4


def test_micro_rung_is_timm_convnext_tiny():
    reference = timm.create_model("convnext_tiny")
    _randomize(reference, 0)
    ours = LadderNet(rung_net_config("micro"))
    load_timm_convnext(ours, reference.state_dict())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    reference.eval(), ours.eval()
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert expected.abs().max() > 1e-2
    assert (expected - got).abs().max().item() <= 1e-4


def test_loader_rejects_the_wrong_rung():
    with pytest.raises(ValueError, match="does not match|shape"):
        load_torchvision_resnet50(LadderNet(rung_net_config("micro")),
                                  torchvision.models.resnet50().state_dict())


@pytest.fixture(scope="module")
def measured():
    return {row["rung"]: row for row in measure()}


@pytest.mark.parametrize("name", rungs.RUNG_NAMES)
def test_gflops_match_table_10(measured, name):
    row = measured[name]
    if name in KNOWN_GFLOPS_DEVIATIONS:
        return  # checked with its own arithmetic below
    assert abs(row["gflops"] - rungs.resolve(name).paper_gflops) <= 0.05, row


def test_gflops_deviations_follow_the_arithmetic(measured):
    # BN -> LN changes no conv/linear layer: same GMACs as fewer_norms (4.15).
    assert measured["layernorm"]["gflops"] == pytest.approx(measured["fewer_norms"]["gflops"], abs=1e-6)
    assert measured["layernorm"]["gflops"] == pytest.approx(4.15, abs=0.01)
    # Separate downsampling: three 2x2/2 convs replace the strided blocks' shortcuts and give
    # timm's convnext_tiny count exactly.
    timm_gmacs = count_gmacs(timm.create_model("convnext_tiny"))
    assert measured["separate_downsampling"]["gflops"] == pytest.approx(timm_gmacs, abs=0.005)
    assert measured["separate_downsampling"]["gflops"] == pytest.approx(4.46, abs=0.01)


def test_torchvision_resnet50_counts_4_09():
    assert count_gmacs(torchvision.models.resnet50()) == pytest.approx(4.09, abs=0.005)


@pytest.mark.parametrize("name", rungs.RUNG_NAMES)
def test_every_rung_trains_tiny(name):
    torch.manual_seed(0)
    cfg = rung_net_config(name, num_classes=5, width_multiplier=0.125, stem_stride=2)
    model = LadderNet(cfg).train()
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape == (4, 5)
    loss = torch.nn.functional.cross_entropy(out, torch.arange(4) % 5)
    loss.backward()
    assert torch.isfinite(loss)
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"


@pytest.mark.parametrize("image_size,stem_stride", [(32, 4), (32, 2), (64, 4), (64, 2)])
def test_low_resolution_inputs_work_for_every_rung(image_size, stem_stride):
    for name in rungs.RUNG_NAMES:
        cfg = rung_net_config(name, num_classes=3, width_multiplier=0.0625, stem_stride=stem_stride)
        with torch.no_grad():
            out = LadderNet(cfg).eval()(torch.randn(1, 3, image_size, image_size))
        assert out.shape == (1, 3) and torch.isfinite(out).all(), (name, image_size, stem_stride)


def _rung_file(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(RUNG_DIR / f"{name}.yaml"))


def _declared(name: str) -> tuple[str | None, set[str], set[str]]:
    """(parent file, keys the file sets, groups it overrides) read from the rung's YAML."""
    body = _rung_file(name)
    parent, groups = None, set()
    for entry in body.pop("defaults", []):
        if isinstance(entry, str) and entry != "_self_":
            parent = entry
        elif isinstance(entry, dict):
            (key, _), = entry.items()
            groups.add(key.removeprefix("override ").lstrip("/"))
    return parent, set(flatten(body)), groups


@pytest.mark.parametrize("name", rungs.RUNG_NAMES[1:])
def test_each_rung_file_is_its_diff(name):
    parent, keys, groups = _declared(name)
    assert parent == rungs.resolve(name).parent, "conf/rung and ladder/ladders/rungs.py disagree on the parent"
    changed = set(config_diff(parent, name))
    by_group = {k for k in changed if k.split(".")[0] in groups}
    # Every changed key is declared by the file (directly, or inside an overridden group) ...
    assert changed - by_group == keys - {k for k in keys if k.split(".")[0] in groups}
    # ... and every key the file sets really changes (no no-op lines).
    assert keys <= changed


@pytest.mark.parametrize("alias,target", [(m, r) for m, r in rungs.MILESTONES.items() if m != r])
def test_milestone_alias_composes_to_its_rung(alias, target):
    assert config_diff(alias, target) == {}
    assert compose_config(alias).rung == target


def test_every_rung_file_is_listed_and_vice_versa():
    """Each file of conf/rung/ is a rung or alias of exactly one built-in ladder."""
    files = {p.stem for p in RUNG_DIR.glob("*.yaml")}
    names = [n for ladder in rungs.ladder_names(()) for n in rungs.load_ladder(ladder).valid_names()]
    assert len(names) == len(set(names))  # no rung in two ladders
    assert files == set(names)
    assert set(rungs.valid_names()) < files  # ConvNeXt's, and the others


@pytest.mark.parametrize("name", rungs.valid_names())
def test_timm_create_model(name):
    model = timm.create_model(f"ladder_{name}", num_classes=7, drop_path_rate=0.2,
                              width_multiplier=0.125)
    assert isinstance(model, LadderNet)
    assert model.cfg.num_classes == 7 and model.cfg.drop_path_rate == 0.2
    assert model.cfg.kernel_size == rung_net_config(name).kernel_size
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def test_unknown_rung_lists_valid_names():
    with pytest.raises(ValueError, match="valid rungs: resnet50, recipe.*milestones: .*micro"):
        compose_config("kernel13")
    with pytest.raises(ValueError, match="kernel7"):
        rungs.resolve("large_kernels")


@pytest.mark.parametrize("change,field,allowed", [
    ({"kernel_size": 4}, "model.kernel_size", "odd"),
    ({"widths": [64, 0, 256, 512]}, "model.widths", "positive"),
    ({"widths": [64, -8, 256, 512]}, "model.widths", "positive"),
    ({"width_multiplier": 0.0}, "model.width_multiplier", "> 0"),
    ({"stem": "conv"}, "model.stem", "resnet, patchify"),
    ({"norm": "groupnorm"}, "model.norm", "batchnorm, layernorm"),
    ({"norms_per_block": "two"}, "model.norms_per_block", "all, one"),
    ({"activations_per_block": "one"}, "model.activations_per_block", "spatial_position"),
    ({"depths": [3, 4, 6]}, "model.depths", "same"),
])
def test_invalid_fields_fail_when_built(change, field, allowed):
    with pytest.raises(ConfigError) as err:
        NetConfig(**change)
    assert field in str(err.value) and allowed in str(err.value)


def test_invalid_field_from_the_command_line_fails_at_build():
    cfg = compose_config("micro", ["model.kernel_size=6"])
    with pytest.raises(ConfigError, match="model.kernel_size=6 .*odd"):
        OmegaConf.to_object(cfg)


def test_package_exports():
    assert ladder.RUNG_NAMES[0] == "resnet50" and ladder.RUNG_NAMES[-1] == "separate_downsampling"
    assert len(ladder.RUNGS) == 17


def test_inspect_cli_json_table_and_diff(measured, monkeypatch, capsys):
    import copy
    import json as json_mod

    from ladder.ladders import inspect as inspect_mod

    # The CLI prints what measure() returns; measure() itself is checked above (measured).
    monkeypatch.setattr(inspect_mod, "measure", lambda names=None, ladder=None: copy.deepcopy(
        [measured[n] for n in rungs.RUNG_NAMES if not names or n in names]))
    main = inspect_mod.main
    assert main(["--json"]) == 0
    rows = json_mod.loads(capsys.readouterr().out)
    assert [r["rung"] for r in rows] == list(rungs.RUNG_NAMES)
    assert all({"rung", "params", "gflops"} <= set(r) for r in rows)
    assert main([]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in rungs.RUNG_NAMES) and "81.97" in table
    assert main(["--diff", "kernel7", "gelu"]) == 0
    diff = capsys.readouterr().out
    assert "model.activation" in diff and "relu -> gelu" in diff and "kernel_size" not in diff
    assert main(["--diff", "kernel7", "kernel13"]) == 2
    assert "valid rungs" in capsys.readouterr().err
