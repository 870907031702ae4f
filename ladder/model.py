"""One parameterized network that builds every rung of the ConvNeXt roadmap.

``LadderNet(NetConfig())`` is torchvision's ResNet-50; ``LadderNet`` with the ``micro`` rung's
config is timm's ``convnext_tiny``. Every step between is a point in the same space (see
:class:`ladder.config.NetConfig`). Names follow timm: ``stem / stages / head``,
``forward_features / forward_head``.

Bias rule (derived, not configured): a conv has a bias unless a BatchNorm directly follows it.
That gives torchvision's bias-free ResNet and timm's all-bias ConvNeXt, and a sensible middle.
"""
from __future__ import annotations


import torch
import torch.nn as nn
from timm.layers import DropPath, LayerNorm2d, calculate_drop_path_rates, trunc_normal_

from ladder.config import NetConfig


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
        cfg: the network config (layer order, norms, activations, kernel).
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
            shapes = [(in_chs, inner_chs, 1, 1), (inner_chs, inner_chs, k, stride),
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
            layers.append(ConvNormAct(cin, cout, ks, s, groups, norm,
                                      cfg.activation if has_act else None))
        self.layers = nn.Sequential(*layers)
        self.layer_scale = (LayerScale(out_chs, cfg.layer_scale_init)
                            if cfg.layer_scale_init > 0 else nn.Identity())
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        if in_chs != out_chs or stride != 1:
            self.shortcut = ConvNormAct(in_chs, out_chs, 1, stride, 1, cfg.norm, None)
        else:
            self.shortcut = nn.Identity()
        self.post_act = make_act(cfg.activation) if cfg.activations_per_block == "all" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.drop_path(self.layer_scale(self.layers(x)))
        return self.post_act(self.shortcut(x) + branch)


class Stage(nn.Module):
    def __init__(self, downsample: nn.Module, blocks: list[nn.Module]):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


def make_stem(cfg: NetConfig, out_chs: int) -> nn.Sequential:
    """ResNet stem (7x7/2 conv, norm, act, 3x3/2 max-pool) or patchify (k x k / k conv).

    ``stem_stride`` < 4 shrinks the stem for low-resolution inputs, the same way for every rung.
    """
    separate = cfg.downsample == "separate"
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


class LadderNet(nn.Module):
    """The ladder's network: any rung from ResNet-50 to ConvNeXt-T, built from a NetConfig."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        widths = cfg.scaled_widths()
        inverted = cfg.block == "inverted_bottleneck"
        stage_out = [w if inverted else w * cfg.expansion for w in widths]
        stage_inner = [w * cfg.expansion if inverted else w for w in widths]
        separate = cfg.downsample == "separate"

        self.stem = make_stem(cfg, widths[0])
        rates = calculate_drop_path_rates(cfg.drop_path_rate, cfg.depths, stagewise=True)
        stages = []
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
        self.stages = nn.Sequential(*stages)
        self.num_features = in_chs
        self.head_norm = make_norm(cfg.norm, in_chs) if separate else nn.Identity()
        self.fc = nn.Linear(in_chs, cfg.num_classes)
        self.init_weights()

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

    # timm's model interface, so timm's train/benchmark scripts work with the ladder.
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3), keepdim=True)
        x = self.head_norm(x).flatten(1)
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



