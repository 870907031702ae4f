"""The network's typed schema: one dataclass whose fields cover every axis the roadmap changes.

The defaults are torchvision's ResNet-50 (the ladder's root); each ``conf/rung/*.yaml`` changes a
few fields. Invalid values or combinations fail when the config is built (``__post_init__`` runs
both for direct construction and for ``OmegaConf.to_object``), naming the field and the allowed
values. Hydra's ConfigStore registration lives in :mod:`ladder.ladders.schema`, so this module has no
Hydra import.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, List, Optional

# "deep" last: the error message lists "resnet, patchify" first (tests/test_ladder.py reads it).
STEMS = ("resnet", "patchify", "deep")
SPATIAL_CONVS = ("dense", "depthwise")
BLOCKS = ("bottleneck", "inverted_bottleneck")
SPATIAL_POSITIONS = ("middle", "first")
ACTIVATIONS = ("relu", "gelu")
COUNTS = ("all", "one")
NORMS = ("batchnorm", "layernorm")
DOWNSAMPLES = ("strided", "separate")
STRIDE_LAYERS = ("spatial", "first")
WEIGHT_INITS = ("kaiming", "trunc_normal")
STEM_STRIDES = (4, 2, 1)


class ConfigError(ValueError):
    """An invalid model or training config value; the message names the key and allowed values."""


def _choice(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; allowed values: "
                          f"{', '.join(map(str, allowed))}")


@dataclass
class NetConfig:
    """Every architectural axis of the ConvNeXt roadmap.

    Widths: ``widths[i]`` is stage i's *base* width. For ``block=bottleneck`` it is the inner
    width of the bottleneck and the block outputs ``widths[i] * expansion`` channels (ResNet-50:
    64..512 inner, 256..2048 out). For ``block=inverted_bottleneck`` it is the block's in/out
    width and the hidden width is ``widths[i] * expansion`` (ConvNeXt-T: 96..768, hidden 4x).
    So the "inverting dimensions" rung changes only ``block``. The stem outputs ``widths[0]``.

    Args:
        depths: blocks per stage.
        widths: base width per stage (see above).
        width_multiplier: scales every width uniformly (small-scale proxies); rounded, >= 1.
        stem: ``resnet`` (7x7/2 conv + norm + act + 3x3/2 max-pool), ``deep`` (ResNet-C of He et
            al. 2019, timm's ``resnet50c``: three 3x3 convs, the first stride 2, each with norm
            and act, widths stem_width, stem_width, widths[0], then the 3x3/2 max-pool) or
            ``patchify`` (k x k / k conv, non-overlapping patches).
        stem_width: width of the deep stem's first two convs (scaled like ``widths``); only the
            ``deep`` stem reads it.
        stem_stride: the stem's total downsampling: 4 (the paper), or 2 / 1 for low-resolution
            inputs (resnet, deep: no max-pool / also a stride-1 first conv; patchify: 2x2/2 /
            1x1 patches). One switch, applied identically to every rung.
        spatial_conv: ``dense`` or ``depthwise`` (groups = channels) k x k conv in each block.
        block: ``bottleneck`` (1x1 reduce, k x k, 1x1 expand) or ``inverted_bottleneck``
            (1x1 expand, k x k, 1x1 reduce).
        expansion: bottleneck out/inner ratio, or inverted-bottleneck hidden/in ratio.
        spatial_position: ``middle`` (between the 1x1 convs) or ``first`` (the block's first
            layer, before both 1x1 convs: the "move up" step).
        kernel_size: spatial conv kernel, odd.
        activation: ``relu`` or ``gelu``.
        activations_per_block: ``all`` (after every norm'd layer but the last, and after the
            residual add, as in ResNet) or ``one`` (only after the block's second layer: between
            the two 1x1 convs when the spatial conv is first).
        norms_per_block: ``all`` (after every conv) or ``one`` (only after the spatial conv).
        norm: ``batchnorm`` or ``layernorm`` (over channels at each position, eps 1e-6).
        downsample: ``strided`` (stride 2 in each stage's first block, projection shortcut
            conv + norm) or ``separate`` (norm + 2x2/2 conv between stages, plus a norm after
            the stem and after global pooling).
        stride_layer: which layer of a strided block carries the stride: ``spatial`` (the k x k
            conv: torchvision's ResNet-50, He et al. 2019's ResNet-50-B; every rung) or
            ``first`` (the block's first layer: the original ResNet-50 of He et al. 2016, stride
            2 on the first 1x1 conv). With ``spatial_position=first`` both are the same layer.
        shortcut_pool: the strided projection shortcut is a 2x2/2 average pool, then the 1x1
            conv at stride 1 and its norm (ResNet-D of He et al. 2019, timm's ``resnet50d``);
            a stride-1 projection (only the width changes) has no pool. Needs
            ``downsample=strided``.
        layer_scale_init: initial per-channel scale of each residual branch; 0 disables it.
        drop_path_rate: stochastic depth rate of the last block, linear in depth from 0.
        weight_init: ``kaiming`` (torchvision's ResNet init) or ``trunc_normal`` (timm's
            ConvNeXt init: std 0.02, zero bias).
        weight_init_override: a preset's init for every rung alike (null: each rung's own
            ``weight_init``). Rung files set ``weight_init``, and a rung's keys are merged after
            the preset's, so a budget that needs another init for all rungs sets this instead.
        zero_init_residual: start each residual branch closed by zero-initializing its last
            BatchNorm's weight (torchvision's ``zero_init_residual``, Goyal et al. 2017), in
            blocks without layer scale (which closes the branch already). Off in the paper.
        num_classes: classifier outputs (0: none; the network ends at the pooled features).
        in_chans: input channels.
    """

    depths: List[int] = field(default_factory=lambda: [3, 4, 6, 3])
    widths: List[int] = field(default_factory=lambda: [64, 128, 256, 512])
    width_multiplier: float = 1.0
    stem: str = "resnet"
    stem_width: int = 32
    stem_stride: int = 4
    spatial_conv: str = "dense"
    block: str = "bottleneck"
    expansion: int = 4
    spatial_position: str = "middle"
    kernel_size: int = 3
    activation: str = "relu"
    activations_per_block: str = "all"
    norms_per_block: str = "all"
    norm: str = "batchnorm"
    downsample: str = "strided"
    stride_layer: str = "spatial"
    shortcut_pool: bool = False
    layer_scale_init: float = 0.0
    drop_path_rate: float = 0.0
    weight_init: str = "kaiming"
    weight_init_override: Optional[str] = None
    zero_init_residual: bool = False
    num_classes: int = 1000
    in_chans: int = 3

    def __post_init__(self) -> None:
        self.depths = list(self.depths)
        self.widths = list(self.widths)
        if len(self.depths) != len(self.widths) or not self.depths:
            raise ConfigError(f"model.depths ({len(self.depths)} stages) and model.widths "
                              f"({len(self.widths)} stages) must have the same, non-zero length")
        for key, values in (("model.depths", self.depths), ("model.widths", self.widths)):
            for v in values:
                if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                    raise ConfigError(f"{key}={values} is not valid; allowed values: "
                                      f"positive integers")
        if not self.width_multiplier > 0:
            raise ConfigError(f"model.width_multiplier={self.width_multiplier!r} is not valid; "
                              f"allowed values: a number > 0")
        _choice("model.stem", self.stem, STEMS)
        _choice("model.stem_stride", self.stem_stride, STEM_STRIDES)
        _choice("model.spatial_conv", self.spatial_conv, SPATIAL_CONVS)
        _choice("model.block", self.block, BLOCKS)
        _choice("model.spatial_position", self.spatial_position, SPATIAL_POSITIONS)
        _choice("model.activation", self.activation, ACTIVATIONS)
        _choice("model.activations_per_block", self.activations_per_block, COUNTS)
        _choice("model.norms_per_block", self.norms_per_block, COUNTS)
        _choice("model.norm", self.norm, NORMS)
        _choice("model.downsample", self.downsample, DOWNSAMPLES)
        _choice("model.stride_layer", self.stride_layer, STRIDE_LAYERS)
        if not isinstance(self.shortcut_pool, bool):
            raise ConfigError(f"model.shortcut_pool={self.shortcut_pool!r} is not valid; allowed "
                              f"values: True, False")
        _choice("model.weight_init", self.weight_init, WEIGHT_INITS)
        if self.weight_init_override is not None:
            _choice("model.weight_init_override", self.weight_init_override, WEIGHT_INITS)
        if not isinstance(self.stem_width, int) or isinstance(self.stem_width, bool) \
                or self.stem_width < 1:
            raise ConfigError(f"model.stem_width={self.stem_width!r} is not valid; allowed "
                              f"values: an integer >= 1")
        if not isinstance(self.expansion, int) or self.expansion < 1:
            raise ConfigError(f"model.expansion={self.expansion!r} is not valid; allowed values: "
                              f"an integer >= 1")
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(f"model.kernel_size={self.kernel_size!r} is not valid; allowed "
                              f"values: odd integers >= 1 (3, 5, 7, ...) so padding keeps the size")
        if self.layer_scale_init < 0:
            raise ConfigError(f"model.layer_scale_init={self.layer_scale_init!r} is not valid; "
                              f"allowed values: 0 (off) or a positive number")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ConfigError(f"model.drop_path_rate={self.drop_path_rate!r} is not valid; "
                              f"allowed values: 0 <= rate < 1")
        if self.num_classes < 0:
            raise ConfigError(f"model.num_classes={self.num_classes!r} is not valid; allowed "
                              f"values: an integer >= 0 (0: no classifier, timm's convention)")
        if self.in_chans < 1:
            raise ConfigError(f"model.in_chans={self.in_chans!r} is not valid; allowed values: "
                              f"an integer >= 1")
        # A block with only one norm or activation must have the spatial conv where the paper
        # puts it: "one" is defined relative to the block's layer order.
        if self.activations_per_block == "one" and self.spatial_position != "first":
            raise ConfigError("model.activations_per_block='one' needs model.spatial_position="
                              "'first': the one activation sits between the two 1x1 convs, which "
                              "are adjacent only when the spatial conv comes first; allowed "
                              "with spatial_position='middle': 'all'")

        if self.shortcut_pool and self.downsample != "strided":
            raise ConfigError(f"model.shortcut_pool=True needs model.downsample='strided' (got "
                              f"model.downsample={self.downsample!r}): under separate "
                              f"downsampling the 2x2/2 convs between stages downsample and no "
                              f"block has a strided projection shortcut to pool")

    def _scaled(self, width: int) -> int:
        return max(1, round(width * self.width_multiplier))

    def scaled_widths(self) -> list[int]:
        """Base widths after the uniform width multiplier (at least 1 channel)."""
        return [self._scaled(w) for w in self.widths]

    def scaled_stem_width(self) -> int:
        """The deep stem's ``stem_width`` after the width multiplier (at least 1 channel)."""
        return self._scaled(self.stem_width)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
