"""Load reference models' weights into the ladder's two ends.

* :func:`load_torchvision_resnet50` maps a ``torchvision.models.resnet50()`` state_dict onto
  the ``resnet50`` rung.
* :func:`load_timm_convnext` maps a ``timm.create_model("convnext_tiny")`` state_dict onto the
  ``separate_downsampling`` (``micro``) rung; timm's 1x1 layers are ``nn.Linear`` on
  channels-last tensors, ours are 1x1 convs, so their weights gain two unit dimensions.

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


def load_torchvision_resnet50(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy a torchvision ``resnet50`` state_dict into the ``resnet50`` rung (in place).

    Example::

        net = LadderNet(rung_net_config("resnet50"))
        load_torchvision_resnet50(net, torchvision.models.resnet50().state_dict())
    """
    _load_mapped(model, state_dict, _resnet_key, "torchvision resnet50")


def load_timm_convnext(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy a timm ``convnext_tiny`` state_dict into the ``micro`` rung (in place)."""
    _load_mapped(model, state_dict, _convnext_key, "timm convnext")
