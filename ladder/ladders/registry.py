"""Every rung of every built-in ladder as a timm model: ``timm.create_model("<prefix><rung>")``,
the prefix being the ladder's (``ladder_micro`` for ConvNeXt's, ``tricks_resnet50d`` for Bag of
Tricks').

Each rung (and milestone alias) is registered with a pretrained config (input size, mean/std,
interpolation and crop of its recipe's evaluation, first conv, classifier, pooled size) and is
built by timm's own ``build_model_with_cfg``, so everything timm does around a model works:
``timm.data.resolve_data_config(model=model)``, ``features_only=True`` / ``out_indices`` /
``feature_cls``, ``pretrained_cfg_overlay``, timm's train script. There are no pretrained
weights (``url`` is empty): ``pretrained=True`` fails and says how to train the rung.

The architecture comes from the rung's config file (composed with Hydra on first use), so timm's
scripts see exactly the network ``train.py +rung=<rung>`` trains. Keyword arguments change any
:class:`ladder.nets.config.NetConfig` field (``width_multiplier=0.25``, ``stem_stride=2``, ...) plus
timm's head options ``global_pool`` and ``drop_rate``, and ``device`` / ``dtype``.
"""
from __future__ import annotations

import math
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from ladder.ladders import rungs
from ladder.nets.config import NetConfig
from ladder.nets.model import LadderNet
from ladder.ladders.schema import DataConfig, RecipeConfig

CONF_DIR = rungs.CONF_DIR
LADDER = rungs.LADDER  # the default ladder (ConvNeXt's): its rungs as ladder_<name>


def builtin_ladders() -> list[rungs.Ladder]:
    """The package's ladders (``conf/ladder/*.yaml``), the default first: each registered under
    its own prefix."""
    names = sorted(p.stem for p in (CONF_DIR / "ladder").glob("*.yaml"))
    names.sort(key=lambda n: n != rungs.DEFAULT_LADDER)
    return [rungs.load_ladder(n, ()) for n in names]
NET_FIELDS = tuple(f.name for f in fields(NetConfig))
HEAD_ARGS = ("global_pool", "drop_rate")  # timm's head options (LadderNet's own arguments)


def _load(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else {}


def _default_choice(defaults: list, group: str) -> str | None:
    """The option a defaults list picks for ``group`` (``group: x`` or ``override /group: x``)."""
    for entry in defaults:
        if isinstance(entry, dict):
            for key, value in entry.items():
                if key.replace("override", "").strip().lstrip("/") == group:
                    return value
    return None


@lru_cache(maxsize=None)
def rung_recipe(name: str) -> str:
    """The recipe a rung trains with: the nearest ``override /recipe`` up its defaults chain,
    else ``conf/train.yaml``'s default. Read from the YAML files without composing (composing
    all rungs with Hydra at import would take seconds); tests check it against Hydra."""
    defaults = _load(CONF_DIR / "rung" / f"{name}.yaml").get("defaults", [])
    choice = _default_choice(defaults, "recipe")
    if choice is not None:
        return choice
    parents = [e for e in defaults if isinstance(e, str) and e != "_self_"]
    if parents:
        return rung_recipe(parents[0])
    return _default_choice(_load(CONF_DIR / "train.yaml").get("defaults", []), "recipe")


def _paper_input_size() -> int:
    """The paper's image size: what ``preset=imagenet`` (data ``imagenet``) trains at."""
    data = _load(CONF_DIR / "data" / "imagenet.yaml")
    return int(data.get("image_size", DataConfig.image_size))


def pretrained_cfg_for(name: str, ladder: rungs.Ladder = LADDER) -> dict[str, Any]:
    """timm's pretrained config of ``<prefix><name>``: the data settings of the rung's recipe at
    the paper's scale (no weights)."""
    rung = ladder.resolve(name)
    recipe = _load(CONF_DIR / "recipe" / f"{rung_recipe(rung.name)}.yaml")
    size = _paper_input_size()
    paper = NetConfig()  # every rung at the paper's scale: stem stride 4, four stages
    return dict(
        url="",
        num_classes=1000,
        input_size=(paper.in_chans, size, size),
        pool_size=_pool_size(size, paper.stem_stride, len(paper.depths)),
        crop_pct=recipe.get("eval_crop_ratio", RecipeConfig.eval_crop_ratio),
        interpolation=recipe.get("interpolation", RecipeConfig.interpolation),
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        first_conv="stem.0",
        classifier="fc",
        description=f"{ladder.title} step {ladder.index(name)}: {rung.step} "
                    f"(rung {rung.name!r}, recipe {rung_recipe(rung.name)!r})",
        paper_name=ladder.reference.paper or ladder.reference.source,
        paper_ids=f"arXiv:{ladder.reference.arxiv}" if ladder.reference.arxiv else None,
    )


def _pool_size(size: int, stem_stride: int, num_stages: int) -> tuple[int, int]:
    reduction = stem_stride * 2 ** (num_stages - 1)
    return (math.ceil(size / reduction),) * 2


def _rung_fields(name: str, ladder: rungs.Ladder) -> dict:
    from ladder.ladders.compose import rung_net_config  # Hydra only when a model is built

    return rung_net_config(name, ladder=ladder.name).to_dict()


def _build_net(rung_fields: dict, device: Any = None, dtype: torch.dtype | None = None,
               **kwargs) -> LadderNet:
    """The model class timm's builder calls: the rung's fields, changed by ``kwargs``."""
    head = {k: kwargs.pop(k) for k in HEAD_ARGS if k in kwargs}
    unknown = sorted(set(kwargs) - set(NET_FIELDS))
    if unknown:
        raise TypeError(f"ladder models take no argument {', '.join(map(repr, unknown))}; "
                        f"allowed: the NetConfig fields ({', '.join(NET_FIELDS)}), "
                        f"{', '.join(HEAD_ARGS)}, device, dtype")
    model = LadderNet(NetConfig(**{**rung_fields, **kwargs}), **head)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def create_ladder_model(name: str, pretrained: bool = False, ladder: rungs.Ladder = LADDER,
                        **kwargs) -> LadderNet:
    """Build ``<prefix><name>`` with timm's ``build_model_with_cfg`` (what the entry points do)."""
    if pretrained:
        select = "" if ladder.name == rungs.DEFAULT_LADDER else f"ladder={ladder.name} "
        raise ValueError(f"{ladder.prefix}{name} has no pretrained weights; train it with "
                         f"`python train.py {select}+rung={name}`")
    rung_fields = _rung_fields(ladder.resolve(name).name, ladder)
    depths = kwargs.get("depths", rung_fields["depths"])
    stem_stride = kwargs.get("stem_stride", rung_fields["stem_stride"])
    size = _paper_input_size()
    # The pooled size follows the network actually built (a proxy's stem_stride=2 doubles it);
    # a caller's own overlay (timm's train.py --pretrained-path) still wins.
    overlay = {"pool_size": _pool_size(size, stem_stride, len(depths)),
               **(kwargs.pop("pretrained_cfg_overlay", None) or {})}
    return build_model_with_cfg(
        lambda **kw: _build_net(rung_fields, **kw),
        f"{ladder.prefix}{name}",
        pretrained=False,
        pretrained_cfg_overlay=overlay,
        # One feature per stage, like timm's ConvNeXt: every rung has the same four taps.
        feature_cfg=dict(out_indices=tuple(range(len(depths))), flatten_sequential=True),
        **kwargs,
    )


def _make_entrypoint(name: str, ladder: rungs.Ladder):
    def entrypoint(pretrained: bool = False, **kwargs) -> LadderNet:
        return create_ladder_model(name, pretrained=pretrained, ladder=ladder, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = f"{ladder.prefix}{name}"
    rung = ladder.resolve(name)
    entrypoint.__doc__ = f"The ladder's {rung.name!r} rung: {rung.step} ({ladder.title})."
    entrypoint.__module__ = __name__
    return entrypoint


# timm reads a module's ``default_cfgs`` when a model of that module is registered.
default_cfgs: dict = {}
_REGISTERED = False


def register_timm_models() -> None:
    """Register ``<prefix><name>`` for each rung and alias of every built-in ladder
    (``ladder_<name>`` for ConvNeXt's), with its pretrained config (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    ladders = builtin_ladders()
    prefixes = [ladder.prefix for ladder in ladders]
    clash = next((p for i, p in enumerate(prefixes) if p in prefixes[:i]), None)
    if clash is not None:
        raise rungs.LadderError(f"two built-in ladders register under the prefix {clash!r}; "
                                f"each ladder file needs its own prefix")
    for ladder in ladders:
        names = ladder.valid_names()
        default_cfgs.update(generate_default_cfgs(
            {f"{ladder.prefix}{name}": pretrained_cfg_for(name, ladder) for name in names}))
        for name in names:
            fn = _make_entrypoint(name, ladder)
            globals()[fn.__name__] = fn  # timm registers by module attribute name
            register_model(fn)
    _REGISTERED = True
