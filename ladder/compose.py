"""Compose rung configs with Hydra's compose API, outside a running Hydra app.

Used by ``ladder.inspect``, the timm registry and the tests. The training entry point
(train.py) gets its config from ``@hydra.main`` instead.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from ladder import rungs
from ladder.conf_store import CONF_DIR
from ladder.config import NetConfig


@contextmanager
def _fresh_hydra() -> Iterator[None]:
    """initialize_config_dir, even when called from inside a running Hydra app."""
    gh = GlobalHydra.instance()
    saved = gh.hydra if gh.is_initialized() else None
    gh.clear()
    try:
        if not CONF_DIR.is_dir():
            raise FileNotFoundError(
                f"ladder's config folder {CONF_DIR} is missing: install the package from a "
                f"clone with `pip install -e .` so conf/ sits beside ladder/")
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            yield
    finally:
        gh.clear()
        if saved is not None:
            gh.initialize(saved)


def compose_config(rung: str | None, overrides: Sequence[str] = (),
                   return_hydra_config: bool = False) -> DictConfig:
    """The composed (unresolved) config of ``train.py +rung=<rung> <overrides>``.

    Unknown rung names fail with the list of valid names.
    """
    extra = []
    if rung is not None:
        rungs.resolve(rung)  # clear error for unknown names
        extra = [f"+rung={rung}"]
    with _fresh_hydra():
        return compose("train", overrides=extra + list(overrides),
                       return_hydra_config=return_hydra_config)


def to_typed(cfg: DictConfig):
    """The typed :class:`ladder.schema.TrainConfig` of a composed config (every value checked,
    naming the key); a config without ``+rung`` trains its ``backbone`` (ladder/subject.py)."""
    from ladder.config import ConfigError

    if OmegaConf.is_missing(cfg, "rung"):
        if not cfg.get("backbone"):
            raise ConfigError("no rung chosen: run `python train.py +rung=<name>` (valid names: "
                              + ", ".join(rungs.valid_names())
                              + ") or `python train.py backbone=<timm model name>`")
        cfg = cfg.copy()
        cfg.rung = None
    return OmegaConf.to_object(cfg)


@lru_cache(maxsize=None)
def _paper_scale_fields(rung: str) -> tuple:
    cfg = compose_config(rung, ["preset=imagenet", "data.root=unused"])
    return tuple(OmegaConf.to_container(cfg.model, resolve=True).items())


def rung_net_config(rung: str, **changes) -> NetConfig:
    """The rung's NetConfig at the paper's scale (width multiplier 1, stem stride 4, 1000
    classes); keyword arguments change fields (e.g. ``num_classes=10``). Composed once per rung."""
    model = {k: (list(v) if isinstance(v, list) else v) for k, v in _paper_scale_fields(rung)}
    model.update(changes)
    return NetConfig(**model)


def flatten(node, prefix: str = "") -> dict[str, object]:
    """Leaf keys of a (possibly unresolved) config as dotted paths -> values; lists are leaves.

    Interpolations stay as their ``${...}`` strings, so a key that only follows another is not
    counted as changed.
    """
    container = OmegaConf.to_container(node, resolve=False) if not isinstance(node, dict) else node
    out: dict[str, object] = {}
    for key, value in container.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def config_diff(rung_a: str, rung_b: str, overrides: Sequence[str] = ()) -> dict[str, tuple]:
    """Keys whose composed values differ between two rungs: key -> (value in a, value in b)."""
    a = flatten(compose_config(rung_a, overrides))
    b = flatten(compose_config(rung_b, overrides))
    missing = object()
    return {k: (a.get(k, missing), b.get(k, missing)) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)}
