"""The presets compose to the configs recorded in tests/preset_configs.json.

The proxy rules shared by the demo and Imagenette presets live once, in conf/proxy/rules.yaml;
the presets say only what differs. The snapshot was recorded from the presets as they were
before the rules moved out of them (each preset repeating them), so these tests check that the
move changed no resolved value of any section, under any preset, for a rung of each recipe
(resnet50: torchvision; recipe and micro: modern).

A key the schema gained after the snapshot was recorded is not in it; it must then hold the
schema's default (no preset or rule sets it). After an intended change to what a preset
composes to, record again: ``python tests/test_presets.py --record`` (last recorded for the
calibrated torchvision lr of conf/proxy/rules.yaml's ``proxy.by_recipe``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

SNAPSHOT = Path(__file__).with_name("preset_configs.json")
PRESETS = ("demo", "imagenette_cpu", "imagenette_gpu", "imagenet")
PROXY_PRESETS = ("demo", "imagenette_cpu", "imagenette_gpu")
RUNGS = ("resnet50", "recipe", "micro")
REPO = Path(__file__).resolve().parent.parent


def resolved(preset: str, rung: str) -> dict:
    """``train.py +rung=<rung> preset=<preset>``'s config, resolved (``???`` left as is)."""
    from ladder.ladders.compose import compose_config

    cfg = compose_config(rung, [f"preset={preset}"])
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)


def schema_defaults() -> dict:
    from ladder.ladders.schema import TrainConfig

    return OmegaConf.to_container(OmegaConf.structured(TrainConfig), resolve=False,
                                  throw_on_missing=False)


def differences(recorded: dict, now: dict, defaults: dict, path: str = "") -> list[str]:
    """Where ``now`` departs from ``recorded``: changed or missing keys, and keys new since
    the recording that do not hold the schema default."""
    out = []
    for key in sorted(set(recorded) | set(now)):
        where = f"{path}{key}"
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if key not in now:
            out.append(f"{where}: recorded {recorded[key]!r}, now missing")
        elif key not in recorded:
            if now[key] != default:
                out.append(f"{where}: not in the snapshot (new in the schema?) and not the "
                           f"schema default {default!r}: {now[key]!r}")
        elif isinstance(recorded[key], dict) and isinstance(now[key], dict) and recorded[key]:
            out += differences(recorded[key], now[key], default or {}, where + ".")
        elif recorded[key] != now[key]:
            out.append(f"{where}: recorded {recorded[key]!r}, now {now[key]!r}")
    return out


@pytest.fixture(scope="module")
def snapshot() -> dict:
    if not SNAPSHOT.exists():
        pytest.fail(f"{SNAPSHOT} is missing: record it with `python tests/test_presets.py "
                    f"--record`")
    return json.loads(SNAPSHOT.read_text())


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("rung", RUNGS)
def test_preset_composes_to_the_recorded_config(snapshot, preset, rung):
    recorded = snapshot[f"{preset}/{rung}"]
    now = resolved(preset, rung)
    assert {"trainer", "recipe", "model", "data"} <= set(recorded)
    diff = differences(recorded, now, schema_defaults())
    assert not diff, (f"preset={preset} +rung={rung} composes differently from "
                      f"{SNAPSHOT.name}:\n  " + "\n  ".join(diff))


def test_differences_reports_changed_missing_and_new_keys():
    """The comparison itself: a changed value, a dropped key and a new non-default key."""
    recorded = {"trainer": {"epochs": 8, "by_recipe": {"torchvision": {"epochs": 24}}}}
    now = {"trainer": {"epochs": 8, "by_recipe": {"torchvision": {}}, "extra": 3}}
    assert differences(recorded, now, {"trainer": {"extra": 0}}) == [
        "trainer.by_recipe.torchvision.epochs: recorded 24, now missing",
        "trainer.extra: not in the snapshot (new in the schema?) and not the schema default "
        "0: 3"]
    assert differences(recorded, recorded, {}) == []
    assert differences(recorded, {"trainer": {"epochs": 8, "by_recipe": {"torchvision": {
        "epochs": 24}}, "extra": 0}}, {"trainer": {"extra": 0}}) == []


def test_the_rules_are_written_once():
    """Each proxy preset selects conf/proxy/rules.yaml and repeats none of its keys."""
    import yaml

    from ladder.ladders.compose import flatten

    rules = flatten(yaml.safe_load((REPO / "conf" / "proxy" / "rules.yaml").read_text()))
    assert "model.weight_init_override" in rules and "trainer.lr_scaling" in rules
    for preset in PROXY_PRESETS:
        body = yaml.safe_load((REPO / "conf" / "preset" / f"{preset}.yaml").read_text())
        assert "/proxy: rules" in [d if isinstance(d, str) else
                                   ", ".join(f"{k}: {v}" for k, v in d.items())
                                   for d in body.get("defaults", [])], preset
        repeated = sorted(set(rules) & set(flatten(body)))
        assert not repeated, f"conf/preset/{preset}.yaml repeats proxy rules: {repeated}"


def record() -> None:
    sys.path.insert(0, str(REPO))
    data = {f"{p}/{r}": resolved(p, r) for p in PRESETS for r in RUNGS}
    lines = [f"  {json.dumps(k)}: {{\n" + ",\n".join(
        f"    {json.dumps(section)}: {json.dumps(value, sort_keys=True)}"
        for section, value in sorted(v.items())) + "\n  }" for k, v in data.items()]
    SNAPSHOT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {len(data)} configs to {SNAPSHOT}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_presets.py --record  (writes tests/preset_configs.json)")
    record()
