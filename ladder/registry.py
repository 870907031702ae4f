"""Every rung as a timm model: ``timm.create_model("ladder_<rung>", ...)``.

The architecture comes from the rung's config file (composed with Hydra on first use), so timm's
train and benchmark scripts see exactly the network ``train.py +rung=<rung>`` trains.
"""
from __future__ import annotations

from timm.models import register_model

from ladder import rungs
from ladder.model import LadderNet


def _rung_fields(name: str) -> dict:
    from ladder.compose import rung_net_config  # Hydra only when a model is built

    return rung_net_config(name).to_dict()


def _make_entrypoint(name: str):
    def entrypoint(pretrained: bool = False, **kwargs) -> LadderNet:
        if pretrained:
            raise ValueError(f"ladder_{name} has no pretrained weights; train it with "
                             f"`python train.py +rung={name}`")
        from ladder.config import NetConfig

        fields = _rung_fields(name)
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)
        if "in_chans" in kwargs:
            fields["in_chans"] = kwargs.pop("in_chans")
        if "num_classes" in kwargs:
            fields["num_classes"] = kwargs.pop("num_classes")
        if "drop_path_rate" in kwargs:
            fields["drop_path_rate"] = kwargs.pop("drop_path_rate")
        fields.update(kwargs)  # any NetConfig field, validated by NetConfig
        return LadderNet(NetConfig(**fields))

    entrypoint.__name__ = f"ladder_{name}"
    entrypoint.__qualname__ = entrypoint.__name__
    entrypoint.__doc__ = f"The ladder's {name!r} rung (ConvNeXt roadmap)."
    entrypoint.__module__ = __name__
    return entrypoint


_REGISTERED = False


def register_timm_models() -> None:
    """Register ``ladder_<name>`` for each rung and milestone alias (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    for name in rungs.valid_names():
        fn = _make_entrypoint(rungs.resolve(name).name)
        fn.__name__ = fn.__qualname__ = f"ladder_{name}"
        globals()[fn.__name__] = fn  # timm registers by module attribute name
        register_model(fn)
    _REGISTERED = True
