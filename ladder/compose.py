"""Compose rung configs with Hydra's compose API, outside a running Hydra app.

Used by ``ladder.inspect``, the timm registry and the tests. The training entry point
(train.py) gets its config from ``@hydra.main`` instead.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from ladder import rungs
from ladder.conf_store import CONF_DIR
from ladder.config import NetConfig


@contextmanager
def _fresh_hydra(config_dir: Path | None = None) -> Iterator[None]:
    """initialize_config_dir (default: the package's conf/), even when called from inside a
    running Hydra app."""
    config_dir = Path(config_dir or CONF_DIR)
    gh = GlobalHydra.instance()
    saved = gh.hydra if gh.is_initialized() else None
    gh.clear()
    try:
        if not config_dir.is_dir():
            raise FileNotFoundError(
                f"ladder's config folder {config_dir} is missing: install the package from a "
                f"clone with `pip install -e .` so conf/ sits beside ladder/")
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
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


# ----------------------------------------------------------------------------- checking a ladder
def _composed_flat(config_dir: Path, rung: str) -> dict[str, object]:
    """``+rung=<rung>``'s composed config from ``config_dir`` as dotted keys, minus ``rung``."""
    with _fresh_hydra(config_dir):
        flat = flatten(compose("train", overrides=[f"+rung={rung}"]))
    flat.pop("rung", None)
    return flat


def step_changes(config_dir: Path, rung: str, parent: str, memo: dict | None = None
                 ) -> dict[str, tuple]:
    """Keys (all but ``rung``) whose composed values differ from the parent's; ``memo`` keeps
    composed configs between calls."""
    memo = {} if memo is None else memo
    for name in (rung, parent):
        if name not in memo:
            memo[name] = _composed_flat(config_dir, name)
    a, b = memo[parent], memo[rung]
    missing = object()
    return {k: (a.get(k, missing), b.get(k, missing)) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)}


def check_ladder(name: str = rungs.DEFAULT_LADDER, search_path: str | Path | None = None,
                 only: Sequence[str] | None = None) -> rungs.Ladder:
    """:func:`ladder.rungs.load_ladder`, plus what only the composed configs show: every step
    changes something (its config, minus ``rung``, differs from its parent's), an
    ``architecture`` step changes only ``model.*`` and a ``recipe`` step changes ``recipe.*``.
    Each failure is one sentence naming the rung file. ``only``: check these rungs' steps only.
    Composes every rung once (seconds), so it is for tests and checks, not for every import."""
    ladder = rungs.load_ladder(name, search_path)
    config_dir, memo = Path(search_path or CONF_DIR), {}
    for rung in ladder.rungs:
        if rung.parent is None or (only is not None and rung.name not in only):
            continue
        path = config_dir / "rung" / f"{rung.name}.yaml"
        changed = step_changes(config_dir, rung.name, rung.parent, memo)
        if not changed:
            raise rungs.LadderError(
                f"{path} changes nothing: its composed config equals its parent "
                f"{rung.parent!r}'s (apart from `rung`), so the step of ladder {ladder.name!r} "
                f"({ladder.path}) would measure nothing")
        other = sorted(k for k in changed if not k.startswith("model."))
        if rung.kind == "architecture" and other:
            raise rungs.LadderError(
                f"{path} is an architecture step in {ladder.path} but changes "
                f"{', '.join(other)} (not model.*); make it kind: recipe, or move the change")
        if rung.kind == "recipe" and not any(k.startswith("recipe.") for k in changed):
            raise rungs.LadderError(
                f"{path} is a recipe step in {ladder.path} but changes no recipe.* key")
    return ladder
