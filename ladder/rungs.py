"""The ladder's single ordered list: every rung's name, milestone and the paper's numbers.

Everything else (the report, ``ladder.inspect``, the timm registry, the tests) reads this list.
The architecture of each rung lives in ``conf/rung/<name>.yaml``; this module only names them.

Numbers are Table 10 of Liu et al., "A ConvNet for the 2020s" (CVPR 2022): ImageNet-1K top-1
(mean of 3 seeds, std where the paper gives one) and GFLOPs (multiply-accumulates of conv and
linear layers at 224x224).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """One step of the roadmap.

    Args:
        name: the rung's config name (``conf/rung/<name>.yaml``), also its timm name suffix.
        step: the paper's name for the step.
        parent: the rung this one changes (``None`` for the root). Side branches (kernel 5/9/11)
            have a parent that is not the rung listed just before them.
        milestone: the chapter's milestone this rung completes, if any.
        paper_top1: Table 10 top-1 (%).
        paper_top1_std: Table 10 seed std (%), ``None`` where the paper gives none.
        paper_gflops: Table 10 GFLOPs (GMACs of conv + linear layers at 224 px).
    """

    name: str
    step: str
    parent: str | None
    milestone: str | None
    paper_top1: float
    paper_top1_std: float | None
    paper_gflops: float

    @property
    def side_branch(self) -> bool:
        """True for kernel 9/11: off the main line, so measured against their parent."""
        return self.name in SIDE_BRANCHES


RUNGS: tuple[Rung, ...] = (
    Rung("resnet50", "ResNet-50 (torchvision, 90 ep)", None, "resnet50", 76.13, None, 4.09),
    Rung("recipe", "ResNet-50, modern recipe", "resnet50", "recipe", 78.82, 0.07, 4.09),
    Rung("stage_ratio", "stage ratio", "recipe", None, 79.36, 0.07, 4.53),
    Rung("patchify", '"patchify" stem', "stage_ratio", "macro", 79.51, 0.18, 4.42),
    Rung("depthwise_conv", "depthwise conv", "patchify", None, 78.28, 0.08, 2.35),
    Rung("width", "increase width", "depthwise_conv", "depthwise", 80.50, 0.02, 5.27),
    Rung("inverted_bottleneck", "inverting dimensions", "width", "inverted_bottleneck", 80.64, 0.03, 4.64),
    Rung("move_up", "move up depthwise conv", "inverted_bottleneck", None, 79.92, 0.08, 4.07),
    Rung("kernel5", "kernel size -> 5", "move_up", None, 80.35, 0.08, 4.10),
    Rung("kernel7", "kernel size -> 7", "kernel5", "large_kernel", 80.57, 0.14, 4.15),
    Rung("kernel9", "kernel size -> 9", "kernel7", None, 80.57, 0.06, 4.21),
    Rung("kernel11", "kernel size -> 11", "kernel7", None, 80.47, 0.11, 4.29),
    Rung("gelu", "ReLU -> GELU", "kernel7", None, 80.62, 0.14, 4.15),
    Rung("fewer_activations", "fewer activations", "gelu", None, 81.27, 0.06, 4.15),
    Rung("fewer_norms", "fewer norms", "fewer_activations", None, 81.41, 0.09, 4.15),
    Rung("layernorm", "BN -> LN", "fewer_norms", None, 81.47, 0.09, 4.46),
    Rung("separate_downsampling", "separate d.s. conv (ConvNeXt-T)", "layernorm", "micro", 81.97, 0.06, 4.49),
)

_BY_NAME = {r.name: r for r in RUNGS}


def _ancestors(name: str) -> list[str]:
    chain = [name]
    while _BY_NAME[chain[-1]].parent:
        chain.append(_BY_NAME[chain[-1]].parent)
    return chain


# Rungs off the path from the root to ConvNeXt-T (kernel 9 and 11 branch off kernel7; the micro
# steps build on kernel7 again). Derived from the parents, not listed by hand.
SIDE_BRANCHES: frozenset[str] = frozenset(set(_BY_NAME) - set(_ancestors(RUNGS[-1].name)))

# The chapter's milestones in order (plus the root), each the rung that completes that stage.
MILESTONES: dict[str, str] = {r.milestone: r.name for r in RUNGS if r.milestone}

SWIN_T_TOP1 = 81.30  # the target line of the paper's Figure 2 (ImageNet only)

RUNG_NAMES: tuple[str, ...] = tuple(r.name for r in RUNGS)


def valid_names() -> list[str]:
    """Every name ``+rung=`` accepts: the 17 rungs, then the milestone aliases."""
    return list(RUNG_NAMES) + [m for m in MILESTONES if m not in _BY_NAME]


def resolve(name: str) -> Rung:
    """Return the rung for a rung or milestone name; unknown names fail listing the valid ones."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name in MILESTONES:
        return _BY_NAME[MILESTONES[name]]
    raise ValueError(f"unknown rung {name!r}; valid rungs: {', '.join(RUNG_NAMES)}; "
                     f"milestones: {', '.join(MILESTONES)}")


def index(name: str) -> int:
    """Position of a rung (or milestone) in ladder order."""
    return RUNG_NAMES.index(resolve(name).name)
