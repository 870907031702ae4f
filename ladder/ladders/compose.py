"""Compose rung configs with Hydra's compose API, outside a running Hydra app.

Used by ``ladder.ladders.inspect``, the timm registry and the tests. The training entry point
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

from ladder.ladders import rungs
from ladder.ladders.conf_store import CONF_DIR
from ladder.nets.config import NetConfig


def searchpath_overrides(dirs: Sequence[str | Path] | None = None) -> list[str]:
    """The Hydra override that adds config directories of a user's own (their ``ladder/`` and
    ``rung/`` files; default: :func:`ladder.ladders.rungs.set_search_path`'s) to the package's
    ``conf/``, as ``train.py --config-dir`` does; none when there are none."""
    dirs = [d for d in (rungs.search_path() if dirs is None else rungs.config_dirs(dirs))
            if Path(d) != CONF_DIR.resolve()]
    if not dirs:
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]"]


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


def _ladder_override(overrides: Sequence[str]) -> str | None:
    """The ladder a list of overrides selects (``ladder=<name>``), if any."""
    for o in overrides:
        if o.startswith("ladder="):
            return o.split("=", 1)[1]
    return None


def compose_config(rung: str | None, overrides: Sequence[str] = (),
                   return_hydra_config: bool = False, ladder: str | None = None) -> DictConfig:
    """The composed (unresolved) config of ``train.py [ladder=<ladder>] +rung=<rung>
    <overrides>`` (the ladder: ``ladder``, else a ``ladder=`` override, else the default).

    Unknown rung names fail with the list of valid names.
    """
    extra = [f"ladder={ladder}"] if ladder else []
    if rung is not None:
        name = ladder or _ladder_override(overrides) or rungs.DEFAULT_LADDER
        rungs.load_ladder(name).resolve(rung)  # clear error for unknown names
        extra.append(f"+rung={rung}")
    with _fresh_hydra():
        cfg = compose("train", overrides=searchpath_overrides() + extra + list(overrides),
                      return_hydra_config=return_hydra_config)
    return apply_proxy(cfg, overrides)


def override_keys(overrides: Sequence[str]) -> set[str]:
    """The dotted keys a list of Hydra overrides sets (``+recipe.lr=1`` -> ``recipe.lr``)."""
    return {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o or o.startswith("~")}


def apply_proxy(cfg: DictConfig, overrides: Sequence[str] = ()) -> DictConfig:
    """Apply the proxy preset's settings for the config's recipe (``proxy.by_recipe.<recipe>``,
    conf/proxy/rules.yaml) to ``cfg`` in place and return it; a key the ``overrides`` (the
    command line) set keeps the command line's value. A key the schema does not have fails
    with its name."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    from ladder.nets.config import ConfigError
    from ladder.ladders.schema import PROXY_SECTIONS

    recipe = OmegaConf.select(cfg, "recipe.name", default=None)
    own = OmegaConf.select(cfg, f"proxy.by_recipe.{recipe}", default=None) if recipe else None
    if not own:
        return cfg
    given = override_keys(overrides)
    for section, values in OmegaConf.to_container(own, resolve=True).items():
        if section not in PROXY_SECTIONS or not isinstance(values, dict):
            raise ConfigError(f"proxy.by_recipe.{recipe}.{section} is not valid; allowed values: "
                              f"a mapping under one of {', '.join(PROXY_SECTIONS)}")
        for key, value in values.items():
            dotted = f"{section}.{key}"
            if dotted in given:
                continue
            try:
                OmegaConf.update(cfg, dotted, value, merge=False)
            except (ConfigAttributeError, ConfigKeyError) as err:
                raise ConfigError(f"proxy.by_recipe.{recipe}.{dotted} is not valid: {section} "
                                  f"has no key {key!r}") from err
    return cfg


def to_typed(cfg: DictConfig):
    """The typed :class:`ladder.ladders.schema.TrainConfig` of a composed config (every value checked,
    naming the key); a config without ``+rung`` trains its ``backbone`` (ladder/train/subject.py)."""
    from ladder.nets.config import ConfigError

    if OmegaConf.is_missing(cfg, "rung"):
        if not cfg.get("backbone"):
            name = OmegaConf.select(cfg, "ladder.name", default=None) or rungs.DEFAULT_LADDER
            raise ConfigError("no rung chosen: run `python train.py +rung=<name>` (valid names: "
                              + ", ".join(rungs.load_ladder(name).valid_names())
                              + ") or `python train.py backbone=<timm model name>`")
        cfg = cfg.copy()
        cfg.rung = None
    return OmegaConf.to_object(cfg)


@lru_cache(maxsize=None)
def _paper_scale_fields(rung: str, ladder: str | None) -> tuple:
    cfg = compose_config(rung, ["preset=imagenet", "data.root=unused"], ladder=ladder)
    return tuple(OmegaConf.to_container(cfg.model, resolve=True).items())


def rung_net_config(rung: str, ladder: str | None = None, **changes) -> NetConfig:
    """The rung's NetConfig at the paper's scale (width multiplier 1, stem stride 4, 1000
    classes), the rung named in ``ladder`` (default: ConvNeXt's); keyword arguments change
    fields (e.g. ``num_classes=10``). Composed once per rung."""
    model = {k: (list(v) if isinstance(v, list) else v)
             for k, v in _paper_scale_fields(rung, ladder)}
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


def config_diff(rung_a: str, rung_b: str, overrides: Sequence[str] = (),
                ladder: str | None = None) -> dict[str, tuple]:
    """Keys whose composed values differ between two rungs (of ``ladder``, default ConvNeXt's):
    key -> (value in a, value in b)."""
    a = flatten(compose_config(rung_a, overrides, ladder=ladder))
    b = flatten(compose_config(rung_b, overrides, ladder=ladder))
    missing = object()
    return {k: (a.get(k, missing), b.get(k, missing)) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)}


# ----------------------------------------------------------------------------- checking a ladder
def _composed_flat(config_dir: Path, rung: str, ladder: str | None = None
                   ) -> dict[str, object]:
    """``[ladder=<ladder>] +rung=<rung>``'s composed config as dotted keys, minus ``rung``:
    from ``config_dir`` when it is a whole config directory (it has ``train.yaml``), else from
    the package's ``conf/`` with ``config_dir`` added to the search path (a user's own ladder
    and rung files)."""
    whole = (Path(config_dir) / "train.yaml").is_file()
    extra = [] if whole else searchpath_overrides([config_dir, *rungs.search_path()])
    if ladder:
        extra.append(f"ladder={ladder}")
    with _fresh_hydra(config_dir if whole else None):
        flat = flatten(compose("train", overrides=[*extra, f"+rung={rung}"]))
    flat.pop("rung", None)
    return flat


def step_changes(config_dir: Path, rung: str, parent: str, memo: dict | None = None,
                 ladder: str | None = None) -> dict[str, tuple]:
    """Keys (all but ``rung``) whose composed values differ from the parent's; ``memo`` keeps
    composed configs between calls."""
    memo = {} if memo is None else memo
    for name in (rung, parent):
        if name not in memo:
            memo[name] = _composed_flat(config_dir, name, ladder)
    a, b = memo[parent], memo[rung]
    missing = object()
    return {k: (a.get(k, missing), b.get(k, missing)) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)}


def check_ladder(name: str = rungs.DEFAULT_LADDER, search_path: str | Path | None = None,
                 only: Sequence[str] | None = None) -> rungs.Ladder:
    """:func:`ladder.ladders.rungs.load_ladder`, plus what only the composed configs show: every step
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
        changed = step_changes(config_dir, rung.name, rung.parent, memo, ladder.name)
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
