"""Load reference models' weights into the ladder's two ends.

* :func:`load_torchvision_resnet50` maps a ``torchvision.models.resnet50()`` state_dict onto
  the ``resnet50`` rung.
* :func:`load_timm_convnext` maps a ``timm.create_model("convnext_tiny")`` state_dict onto the
  ``separate_downsampling`` (``micro``) rung; timm's 1x1 layers are ``nn.Linear`` on
  channels-last tensors, ours are 1x1 convs, so their weights gain two unit dimensions.
* :func:`load_timm_resnet` maps timm's ``resnet50`` / ``resnet50c`` / ``resnet50d`` (He et
  al. 2019's ResNet-50-B, -C, -D) onto ``NetConfig()``, ``NetConfig(stem="deep")`` and
  ``NetConfig(stem="deep", shortcut_pool=True)``.

Both check that every key on both sides is used and every shape matches, so a load that
"succeeds" is a full, exact transfer. The fidelity tests use them to show that the rungs *are*
those models (eval outputs equal to 1e-4 in fp32).
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

import torch
import torch.nn as nn


def _resnet_key(key: str) -> str | None:
    if m := re.fullmatch(r"conv1\.(.+)", key):
        return f"stem.0.{m[1]}"
    if m := re.fullmatch(r"bn1\.(.+)", key):
        return f"stem.1.{m[1]}"
    if m := re.fullmatch(r"layer(\d)\.(\d+)\.conv(\d)\.(.+)", key):
        return f"stages.{int(m[1]) - 1}.blocks.{m[2]}.layers.{int(m[3]) - 1}.conv.{m[4]}"
    if m := re.fullmatch(r"layer(\d)\.(\d+)\.bn(\d)\.(.+)", key):
        return f"stages.{int(m[1]) - 1}.blocks.{m[2]}.layers.{int(m[3]) - 1}.norm.{m[4]}"
    if m := re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([01])\.(.+)", key):
        part = "conv" if m[3] == "0" else "norm"
        return f"stages.{int(m[1]) - 1}.blocks.{m[2]}.shortcut.{part}.{m[4]}"
    if m := re.fullmatch(r"fc\.(.+)", key):
        return f"fc.{m[1]}"
    return None


def _timm_resnet_key(deep: bool, pooled: bool) -> Callable[[str], str | None]:
    """timm's ResNet keys: torchvision's, plus the deep stem (``conv1.{0,1,3,4,6}`` and ``bn1``
    are our ``stem.{0,1,3,4,6}`` and ``stem.7``) and the pooled shortcut (timm's ``downsample``
    is pool, conv, norm: the parameter-free pool shifts the conv to index 1, the norm to 2)."""

    def map_key(key: str) -> str | None:
        if m := re.fullmatch(r"conv1\.([01346])\.(.+)", key):
            return f"stem.{m[1]}.{m[2]}"
        if deep and (m := re.fullmatch(r"bn1\.(.+)", key)):
            return f"stem.7.{m[1]}"
        if m := re.fullmatch(r"layer(\d)\.(\d+)\.downsample\.([012])\.(.+)", key):
            part = {0: "conv", 1: "norm"}.get(int(m[3]) - pooled)
            if part is None:
                return None
            return f"stages.{int(m[1]) - 1}.blocks.{m[2]}.shortcut.{part}.{m[4]}"
        return _resnet_key(key)

    return map_key


def _convnext_key(key: str) -> str | None:
    if re.fullmatch(r"stem\.[01]\.\w+|stages\.\d\.downsample\.[01]\.\w+", key):
        return key
    if m := re.fullmatch(r"stages\.(\d)\.blocks\.(\d+)\.(.+)", key):
        prefix, rest = f"stages.{m[1]}.blocks.{m[2]}", m[3]
        table = {"conv_dw": "layers.0.conv", "norm": "layers.0.norm",
                 "mlp.fc1": "layers.1.conv", "mlp.fc2": "layers.2.conv"}
        if rest == "gamma":
            return f"{prefix}.layer_scale.gamma"
        module, _, param = rest.rpartition(".")
        if module in table:
            return f"{prefix}.{table[module]}.{param}"
        return None
    if m := re.fullmatch(r"head\.norm\.(\w+)", key):
        return f"head_norm.{m[1]}"
    if m := re.fullmatch(r"head\.fc\.(\w+)", key):
        return f"fc.{m[1]}"
    return None


def _load_mapped(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                 map_key: Callable[[str], str | None], source: str) -> None:
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        new = map_key(key)
        if new is None or new not in target:
            unknown.append(key)
            continue
        if value.dim() == 2 and target[new].dim() == 4:  # Linear -> 1x1 conv
            value = value[:, :, None, None]
        if value.shape != target[new].shape:
            raise ValueError(f"{source} key {key!r} has shape {tuple(value.shape)} but the "
                             f"ladder's {new!r} has {tuple(target[new].shape)}: wrong rung or "
                             f"num_classes?")
        mapped[new] = value
    missing = sorted(set(target) - set(mapped))
    if unknown or missing:
        raise ValueError(f"{source} state_dict does not match this network: "
                         f"{len(unknown)} unused keys (first: {unknown[:3]}), "
                         f"{len(missing)} ladder keys not filled (first: {missing[:3]})")
    model.load_state_dict(mapped, strict=True)


def _check_resnet_variant(model: nn.Module, pooled: bool, source: str) -> None:
    """The ResNet variants with equal keys and shapes: where the stride sits, whether the
    shortcut pools. A transfer between them would "succeed" and compute another network."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        return
    if cfg.stride_layer != "spatial":
        raise ValueError(f"{source} strides on the 3x3 conv, this network on its blocks' first "
                         f"layer (model.stride_layer={cfg.stride_layer!r}); build it with "
                         f"stride_layer='spatial'")
    if cfg.shortcut_pool != pooled:
        raise ValueError(f"{source} {'has' if pooled else 'has no'} average pool in its "
                         f"projection shortcuts but this network has "
                         f"model.shortcut_pool={cfg.shortcut_pool}; build it with "
                         f"shortcut_pool={pooled}")


def load_torchvision_resnet50(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy a torchvision ``resnet50`` state_dict into the ``resnet50`` rung (in place).

    Example::

        net = LadderNet(rung_net_config("resnet50"))
        load_torchvision_resnet50(net, torchvision.models.resnet50().state_dict())
    """
    _check_resnet_variant(model, False, "torchvision resnet50")
    _load_mapped(model, state_dict, _resnet_key, "torchvision resnet50")


def load_timm_convnext(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy a timm ``convnext_tiny`` state_dict into the ``micro`` rung (in place)."""
    _load_mapped(model, state_dict, _convnext_key, "timm convnext")


def load_timm_resnet(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy a timm ResNet state_dict into the ladder network of the matching config (in place):
    ``resnet50`` -> ``NetConfig()``, ``resnet50c`` -> ``NetConfig(stem="deep")``,
    ``resnet50d`` -> ``NetConfig(stem="deep", shortcut_pool=True)`` (same ``num_classes``).

    Example::

        net = LadderNet(NetConfig(stem="deep", shortcut_pool=True))
        load_timm_resnet(net, timm.create_model("resnet50d").state_dict())
    """
    # timm's avg_down builds every projection as pool, conv, norm (an Identity pool at stride 1).
    pooled = any(re.fullmatch(r"layer\d\.\d+\.downsample\.2\..+", key) for key in state_dict)
    _check_resnet_variant(model, pooled, "timm resnet")
    _load_mapped(model, state_dict, _timm_resnet_key("conv1.0.weight" in state_dict, pooled),
                 "timm resnet")
