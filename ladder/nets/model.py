"""One parameterized network that builds every rung of the ConvNeXt roadmap.

``LadderNet(NetConfig())`` is torchvision's ResNet-50; ``LadderNet`` with the ``micro`` rung's
config is timm's ``convnext_tiny``. Every step between is a point in the same space (see
:class:`ladder.nets.config.NetConfig`). Names follow timm: ``stem / stages / head``,
``forward_features / forward_head``. The "Bag of Tricks" ResNet-50 variants (He et al. 2019)
are points too: ``stride_layer="first"`` (the original ResNet-50), ``stem="deep"`` (timm's
``resnet50c``), plus ``shortcut_pool=True`` (``resnet50d``).

Bias rule (derived, not configured): a conv has a bias unless a BatchNorm directly follows it.
That gives torchvision's bias-free ResNet and timm's all-bias ConvNeXt, and a sensible middle.
"""
# No ``from __future__ import annotations``: torch.fx copies the forward methods' annotations
# into the code it generates, and TorchScript cannot read them back as strings (timm's
# fx + torchscript test fails on "_torch_Tensor_").

from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import (DropPath, LayerNorm2d, SelectAdaptivePool2d, calculate_drop_path_rates,
                         trunc_normal_)
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices

from ladder.nets.config import NetConfig


def make_norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm2d (torchvision's eps 1e-5) or LayerNorm over channels (ConvNeXt's eps 1e-6)."""
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    return LayerNorm2d(channels, eps=1e-6)


def make_act(kind: str) -> nn.Module:
    return nn.ReLU(inplace=True) if kind == "relu" else nn.GELU()


class ConvNormAct(nn.Module):
    """conv -> optional norm -> optional activation: one layer of a block."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int, groups: int,
                 norm: str | None, act: str | None):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding=kernel_size // 2,
                              groups=groups, bias=norm != "batchnorm")
        self.norm = make_norm(norm, out_chs) if norm else nn.Identity()
        self.act = make_act(act) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class PointwiseNormAct(nn.Module):
    """A 1x1, stride-1 conv -> optional norm -> optional activation, computed over the
    channels-last pixels: the conv as a matrix product, LayerNorm and the activation on the
    (N, H, W, C) tensor, as timm's ConvNeXt does with ``nn.Linear``.

    The parameters and their names are those of :class:`ConvNormAct` (a 1x1 ``nn.Conv2d``;
    LayerNorm's weight and bias), so state dicts, inits, converters and FLOP counts do not
    change; only the kernels do. Why (measured on a 2-core CPU, fp32): PyTorch runs 1x1 convs
    through its generic im2col kernel (``_slow_conv2d``), and GELU on a channels-last NCHW view
    is slower than on the same memory seen as a contiguous NHWC tensor. With this layer the
    ``micro`` rung's training step went from 1.13x to 0.91x timm's ``convnext_tiny`` (CPU
    time, batch 8, 128 px, channels-last, both with stochastic depth 0.1); ``resnet50`` stayed
    at 0.95x torchvision's. BatchNorm stays an ``nn.BatchNorm2d`` on the NCHW view
    (SyncBatchNorm conversion keeps working). On a channels-last input every permute is a free
    view; an NCHW-contiguous input is copied once, by the first product.
    """

    def __init__(self, in_chs: int, out_chs: int, norm: str | None, act: str | None):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=norm != "batchnorm")
        self.batchnorm = norm == "batchnorm"
        if norm == "layernorm":
            self.norm = nn.LayerNorm(out_chs, eps=1e-6)  # over the last (channel) dim
        else:
            self.norm = make_norm(norm, out_chs) if norm else nn.Identity()
        self.act = make_act(act) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(x)

    def pointwise(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's computation (a method, so subclasses can call it: TorchScript has no
        ``super().forward``)."""
        x = F.linear(x.permute(0, 2, 3, 1), self.conv.weight.flatten(1), self.conv.bias)
        if self.batchnorm:
            x = self.norm(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        else:
            x = self.norm(x)
        return self.act(x).permute(0, 3, 1, 2)


class PooledProjection(PointwiseNormAct):
    """ResNet-D's projection shortcut (He et al. 2019; timm's ``downsample_avg``): a 2x2/2
    average pool (``ceil_mode``, padding not counted), then the 1x1 stride-1 conv and its norm.

    Its parameters and their names (``conv``, ``norm``) are those of the strided 1x1 shortcut it
    replaces; the pool has none. So ResNet-B and ResNet-D state dicts have the same keys.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int, norm: str | None):
        super().__init__(in_chs, out_chs, norm, None)
        self.pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.pool(x))


def conv_norm_act(in_chs: int, out_chs: int, kernel_size: int, stride: int, groups: int,
                  norm: str | None, act: str | None) -> nn.Module:
    """One layer: the channels-last :class:`PointwiseNormAct` for 1x1 stride-1 dense convs,
    else :class:`ConvNormAct` (k x k, strided, grouped)."""
    if kernel_size == 1 and stride == 1 and groups == 1:
        return PointwiseNormAct(in_chs, out_chs, norm, act)
    return ConvNormAct(in_chs, out_chs, kernel_size, stride, groups, norm, act)


class LayerScale(nn.Module):
    """Learnable per-channel scale of the residual branch (ConvNeXt's ``gamma``)."""

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(init * torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


class Block(nn.Module):
    """A residual block of any rung: three layers (two 1x1, one k x k) in the configured order.

    Args:
        in_chs / out_chs: residual-stream widths in and out.
        inner_chs: width between the layers (bottleneck inner or inverted-bottleneck hidden).
        stride: 2 in a stage's first block under strided downsampling, else 1.
        cfg: the network config (layer order, norms, activations, kernel, which layer takes the
            stride, pooled shortcut).
        drop_path_rate: this block's stochastic depth rate.
    """

    def __init__(self, in_chs: int, out_chs: int, inner_chs: int, stride: int, cfg: NetConfig,
                 drop_path_rate: float):
        super().__init__()
        k = cfg.kernel_size
        if cfg.spatial_position == "first":
            # d k x k on the input width (it also carries the stride), then 1x1 up, 1x1 down.
            shapes = [(in_chs, in_chs, k, stride), (in_chs, inner_chs, 1, 1),
                      (inner_chs, out_chs, 1, 1)]
            spatial = 0
        else:
            # The stride on the k x k conv (ResNet-B), or on the first 1x1 conv (ResNet-50 of
            # He et al. 2016).
            first = cfg.stride_layer == "first"
            shapes = [(in_chs, inner_chs, 1, stride if first else 1),
                      (inner_chs, inner_chs, k, 1 if first else stride),
                      (inner_chs, out_chs, 1, 1)]
            spatial = 1
        last = len(shapes) - 1
        layers = []
        for i, (cin, cout, ks, s) in enumerate(shapes):
            groups = cin if (i == spatial and cfg.spatial_conv == "depthwise") else 1
            if cfg.norms_per_block == "all" or i == spatial:
                norm = cfg.norm
            else:
                norm = None
            # ResNet: an activation after every layer but the last (that one comes after the
            # residual add); "one": only after the second layer.
            has_act = i < last if cfg.activations_per_block == "all" else i == 1
            layers.append(conv_norm_act(cin, cout, ks, s, groups, norm,
                                        cfg.activation if has_act else None))
        self.layers = nn.Sequential(*layers)
        self.layer_scale = (LayerScale(out_chs, cfg.layer_scale_init)
                            if cfg.layer_scale_init > 0 else nn.Identity())
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        if stride != 1 and cfg.shortcut_pool:
            self.shortcut = PooledProjection(in_chs, out_chs, stride, cfg.norm)
        elif in_chs != out_chs or stride != 1:
            self.shortcut = conv_norm_act(in_chs, out_chs, 1, stride, 1, cfg.norm, None)
        else:
            self.shortcut = nn.Identity()
        self.post_act = make_act(cfg.activation) if cfg.activations_per_block == "all" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.drop_path(self.layer_scale(self.layers(x)))
        return self.post_act(self.shortcut(x) + branch)


class Stage(nn.Module):
    """A stage: optional separate downsampling, then its blocks.

    ``grad_checkpointing`` (timm's ``set_grad_checkpointing``) recomputes each block's
    activations in the backward pass instead of storing them. As in timm's ResNets, a
    BatchNorm in a checkpointed block updates its running statistics twice per step.
    """

    def __init__(self, downsample: nn.Module, blocks: list[nn.Module]):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


def make_deep_stem(cfg: NetConfig, out_chs: int) -> nn.Sequential:
    """ResNet-C's deep stem (He et al. 2019; timm's ``resnet50c``): three 3x3 convs of widths
    ``stem_width``, ``stem_width``, ``out_chs``, the first with stride 2, each followed by norm
    and activation, then the 3x3/2 max-pool; ``stem_stride`` as for the ResNet stem.

    One flat Sequential in timm's order: timm's ``conv1.{0,1,3,4,6}`` are ``stem.{0,1,3,4,6}``,
    its ``bn1`` is ``stem.7`` (``act1`` 8, ``maxpool`` 9), and ``stem.0`` is the first conv.
    """
    width = cfg.scaled_stem_width()
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate([(cfg.in_chans, width), (width, width), (width, out_chs)]):
        stride = 2 if i == 0 and cfg.stem_stride > 1 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=cfg.norm != "batchnorm"),
                   make_norm(cfg.norm, cout), make_act(cfg.activation)]
    if cfg.stem_stride == 4:
        layers.append(nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(*layers)


def make_stem(cfg: NetConfig, out_chs: int) -> nn.Sequential:
    """ResNet stem (7x7/2 conv, norm, act, 3x3/2 max-pool), deep stem (:func:`make_deep_stem`)
    or patchify (k x k / k conv).

    ``stem_stride`` < 4 shrinks the stem for low-resolution inputs, the same way for every rung.
    """
    separate = cfg.downsample == "separate"
    if cfg.stem == "deep":
        return make_deep_stem(cfg, out_chs)
    if cfg.stem == "resnet":
        conv_stride = 1 if cfg.stem_stride == 1 else 2
        layers = [nn.Conv2d(cfg.in_chans, out_chs, 7, conv_stride, 3,
                            bias=cfg.norm != "batchnorm"),
                  make_norm(cfg.norm, out_chs), make_act(cfg.activation)]
        if cfg.stem_stride == 4:
            layers.append(nn.MaxPool2d(3, 2, 1))
        return nn.Sequential(*layers)
    p = cfg.stem_stride
    # Under separate downsampling a norm follows the stem (the paper's Section 2.6); before
    # that step the patchify stem is the bare conv that replaced ResNet's stem.
    norm = separate
    layers = [nn.Conv2d(cfg.in_chans, out_chs, p, p, bias=not (norm and cfg.norm == "batchnorm"))]
    if norm:
        layers.append(make_norm(cfg.norm, out_chs))
    return nn.Sequential(*layers)


# Global pools that keep the channel count (the head norm and classifier are sized for it).
GLOBAL_POOLS = ("avg", "max", "avgmax", "fast", "")


class LadderNet(nn.Module):
    """The ladder's network: any rung from ResNet-50 to ConvNeXt-T, built from a NetConfig.

    It follows timm's model interface (``num_classes``, ``num_features``, ``feature_info``,
    ``forward_features / forward_head / forward_intermediates``, ``reset_classifier``,
    ``set_grad_checkpointing``), so ``timm.create_model("ladder_<rung>", features_only=True)``,
    timm's train script and torch.fx feature extraction work on every rung
    (see :mod:`ladder.ladders.registry`).

    Args:
        cfg: the architecture (every rung's axes, ``num_classes`` 0 for no classifier).
        global_pool: timm's pooling choice for the head; ``''`` keeps the spatial map (only
            without a classifier). No rung changes it: the roadmap pools by average.
        drop_rate: dropout before the classifier (timm's ``drop_rate``); 0 in every rung.
    """

    def __init__(self, cfg: NetConfig, global_pool: str = "avg", drop_rate: float = 0.0):
        super().__init__()
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.in_chans = cfg.in_chans
        self.drop_rate = drop_rate
        widths = cfg.scaled_widths()
        inverted = cfg.block == "inverted_bottleneck"
        stage_out = [w if inverted else w * cfg.expansion for w in widths]
        stage_inner = [w * cfg.expansion if inverted else w for w in widths]
        separate = cfg.downsample == "separate"

        self.stem = make_stem(cfg, widths[0])
        rates = calculate_drop_path_rates(cfg.drop_path_rate, cfg.depths, stagewise=True)
        stages = []
        self.feature_info = []
        in_chs = widths[0]
        for i, depth in enumerate(cfg.depths):
            if separate and i > 0:
                downsample = nn.Sequential(make_norm(cfg.norm, in_chs),
                                           nn.Conv2d(in_chs, stage_out[i], 2, 2))
                in_chs = stage_out[i]
            else:
                downsample = nn.Identity()
            blocks = []
            for j in range(depth):
                stride = 2 if (not separate and i > 0 and j == 0) else 1
                blocks.append(Block(in_chs, stage_out[i], stage_inner[i], stride, cfg, rates[i][j]))
                in_chs = stage_out[i]
            stages.append(Stage(downsample, blocks))
            # Every rung halves the resolution at each stage after the stem's stem_stride.
            self.feature_info.append(dict(num_chs=in_chs, reduction=cfg.stem_stride * 2 ** i,
                                          module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = in_chs
        # Head: pool -> norm (separate downsampling only) -> flatten -> dropout -> classifier.
        self.global_pool, self.flatten = self._make_pool(global_pool, cfg.num_classes)
        self.head_norm = make_norm(cfg.norm, in_chs) if separate else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(in_chs, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.init_weights()

    @staticmethod
    def _make_pool(global_pool: str, num_classes: int) -> tuple[nn.Module, nn.Module]:
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool={global_pool!r} is not valid; allowed values: "
                             f"{', '.join(map(repr, GLOBAL_POOLS))} (pools that keep the channel "
                             f"count)")
        if not global_pool and num_classes > 0:
            raise ValueError("global_pool='' (no pooling) needs num_classes=0: the classifier "
                             "takes pooled features")
        pool = SelectAdaptivePool2d(pool_type=global_pool)
        return pool, (nn.Flatten(1) if global_pool else nn.Identity())

    def init_weights(self) -> None:
        init = self.cfg.weight_init_override or self.cfg.weight_init
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if init == "trunc_normal":
                    trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                else:  # torchvision keeps PyTorch's default Linear init for the classifier
                    m.reset_parameters()
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.cfg.zero_init_residual:
            for block in self.modules():
                if (isinstance(block, Block) and isinstance(block.layer_scale, nn.Identity)
                        and isinstance(block.layers[-1].norm, nn.BatchNorm2d)):
                    nn.init.zeros_(block.layers[-1].norm.weight)

    # --- timm's model interface -------------------------------------------------------------

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups by depth, for timm's layer-wise lr decay."""
        return dict(
            stem=r"^stem",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                (r"^head_norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """A fresh classifier for ``num_classes`` (0: none); ``global_pool`` changes the pooling
        (``''``: none, so ``forward`` returns the normed feature map)."""
        if global_pool is None:
            global_pool = self.global_pool.pool_type
        self.global_pool, self.flatten = self._make_pool(global_pool, num_classes)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Each stage's output (timm's feature API).

        Args:
            x: input images, NCHW.
            indices: stages to return: the last n if an int, all if None, else these indices.
            norm: accepted for timm's API; no rung has a norm between the last stage and the
                pooling, so there is nothing to apply.
            stop_early: skip the stages after the last one asked for.
            output_fmt: only ``NCHW``.
            intermediates_only: return only the list of stage outputs.

        Returns:
            The stage outputs, or ``(forward_features(x), stage outputs)``.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt={output_fmt!r} is not valid; allowed values: NCHW")
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        intermediates = []
        x = self.stem(x)
        if torch.jit.is_scripting() or not stop_early:
            stages = self.stages
        else:
            stages = self.stages[:max_index + 1]
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1,
                                  prune_norm: bool = False, prune_head: bool = True) -> List[int]:
        """Drop the stages after the last of ``indices`` (and the head); returns the kept
        indices. ``prune_norm`` is accepted for timm's API (the only norm left is the head's)."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        pruned_end = max_index < len(self.stages) - 1
        self.stages = self.stages[:max_index + 1]
        if pruned_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or pruned_end:
            self.head_norm = nn.Identity()  # sized for (and part of) the removed head
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        x = self.flatten(self.head_norm(x))
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def count_gmacs(model: nn.Module, image_size: int = 224) -> float:
    """Multiply-accumulates (in G) of the conv and linear layers for one image.

    Uses PyTorch's own FlopCounterMode, which counts only convolutions and matrix products
    (2 FLOPs per MAC), so half its total is the paper's "GFLOPs" (torchvision resnet50: 4.09).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    param = next(model.parameters())
    x = torch.zeros(1, 3, image_size, image_size, device=param.device, dtype=param.dtype)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
