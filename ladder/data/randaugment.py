"""timm's RandAugment (``rand-`` strings) on whole batches: each sample its own ops, the
arithmetic of timm's PIL ops (lookup tables, blends, affine warps); see ladder/data/augment.py."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# timm's RandAugment op list ('rand-'); with inc1 the six level-dependent ones use the
# variants whose strength increases with the magnitude.
RAND_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize",
            "SolarizeAdd", "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY",
            "TranslateXRel", "TranslateYRel")
OP = {name: i for i, name in enumerate(RAND_OPS)}
NO_OP = -1
_GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
_BLEND = ("Color", "Sharpness")
_LOOKUP = tuple(name for name in RAND_OPS if name not in _GEOMETRIC + _BLEND)


@dataclass(frozen=True)
class RandAugmentSpec:
    """A timm RandAugment string such as ``rand-m9-mstd0.5-inc1``, parsed as timm parses it."""

    layers: int = 2
    magnitude: float = 10.0
    magnitude_std: float = 0.0  # inf: uniform in [0, magnitude]
    magnitude_max: float = 10.0
    prob: float = 0.5
    increasing: bool = False

    @classmethod
    def parse(cls, spec: str) -> "RandAugmentSpec":
        parts = spec.split("-")
        if parts[0] != "rand":
            raise ValueError(f"RandAugment spec {spec!r} must start with 'rand'")
        kw: dict = {}
        for part in parts[1:]:
            match = re.fullmatch(r"(mstd|mmax|inc|m|n|p)(\d.*)", part)
            if match is None:
                raise ValueError(f"unknown RandAugment section {part!r} in {spec!r}; known: "
                                 f"m, n, p, mstd, mmax, inc")
            key, val = match.groups()
            if key == "mstd":
                std = float(val)
                kw["magnitude_std"] = math.inf if std > 100 else std
            elif key == "mmax":
                kw["magnitude_max"] = float(val)
            elif key == "inc":
                kw["increasing"] = bool(int(val))
            elif key == "m":
                kw["magnitude"] = float(val)
            elif key == "n":
                kw["layers"] = int(val)
            else:
                kw["prob"] = float(val)
        return cls(**kw)


def _theta(a00, a01, b0, a10, a11, b1) -> torch.Tensor:
    return torch.stack([torch.stack([a00, a01, b0], -1), torch.stack([a10, a11, b1], -1)], 1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L (ITU-R 601-2, fixed point, rounded) of integer-valued pixels; exact in
    float32 (every partial sum is an integer below 2**24)."""
    r, g, b = x.unbind(1)
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536).unsqueeze(1)


def smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageFilter.SMOOTH (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1 over 13, rounded; the border
    rows and columns copied)."""
    rows = x[..., :-2] + x[..., 1:-1] + x[..., 2:]  # exact: sums of integers
    total = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    out = x.clone()
    out[:, :, 1:-1, 1:-1] = torch.floor_divide(total + 4 * x[:, :, 1:-1, 1:-1] + 6, 13)
    return out


def _grid_mode(interpolation: str) -> str:
    return interpolation if interpolation in ("bicubic", "nearest") else "bilinear"


class RandAugment(torch.nn.Module):
    """timm's RandAugment on integer-valued float batches [B, 3, H, W] in 0..255.

    Each layer is three stages, each the identity for the samples whose op is not its own:
    lookup tables, blends, affine warps. ``dense`` (the default off the CPU) runs every stage
    on every sample: no data-dependent shapes, no host syncs. On the CPU, where there is no
    device to wait for, each stage runs on its own samples only (picked with ``nonzero``), with
    the same per-sample arithmetic, so both give the same pixels (tests/test_augment.py)."""

    def __init__(self, spec: RandAugmentSpec, interpolation: str = "bicubic",
                 fill: tuple[float, ...] = tuple(min(255, round(255 * m)) for m in IMAGENET_MEAN),
                 dense: bool | None = None):
        super().__init__()
        self.spec, self.mode, self.dense = spec, _grid_mode(interpolation), dense
        self.register_buffer("fill", torch.tensor(fill).view(1, 3, 1, 1), persistent=False)

    def draw(self, n: int, device=None) -> dict[str, torch.Tensor]:
        """Per sample and layer: the op (``NO_OP`` where the layer is skipped), its magnitude on
        timm's 0..10 scale and the sign of the signed ops; all [n, layers]."""
        s = self.spec
        u = torch.rand(n, s.layers, 4, device=device)
        z = torch.randn(n, s.layers, device=device)
        op = torch.floor(u[..., 1] * len(RAND_OPS)).long().clamp_(max=len(RAND_OPS) - 1)
        level = (u[..., 3] * s.magnitude if math.isinf(s.magnitude_std)
                 else s.magnitude + s.magnitude_std * z)
        return {"ra_op": torch.where(u[..., 0] <= s.prob, op, NO_OP),
                "ra_level": level.clamp(0, s.magnitude_max),
                "ra_sign": torch.where(u[..., 2] > 0.5, -1.0, 1.0)}

    def forward(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        dense = _dense(self.dense, x)
        if not dense:
            x = x.clone()  # the sparse stages write their rows in place
        for i in range(self.spec.layers):
            x = self.layer(x, params["ra_op"][:, i], params["ra_level"][:, i],
                           params["ra_sign"][:, i], dense)
        return x

    def layer(self, x: torch.Tensor, op: torch.Tensor, level: torch.Tensor, sign: torch.Tensor,
              dense: bool = True) -> torch.Tensor:
        """One layer: sample i gets op ``op[i]`` (or none) at magnitude ``level[i]``. The ops'
        arguments are computed as timm computes them, in double; PIL blends in float."""
        level = level.double()
        if self.spec.increasing:
            factor = torch.clamp(1.0 + sign * ((level / 10) * 0.9), min=0.1).float()
        else:
            factor = ((level / 10) * 1.8 + 0.1).float()
        for names, stage in ((_LOOKUP, self._lookup), (_BLEND, self._blend),
                             (_GEOMETRIC, self._warp)):
            if dense:
                x = stage(x, op, level, sign, factor)
            else:  # the same arithmetic on this stage's rows only
                rows = _isin(op, names).nonzero().squeeze(1)
                if len(rows):
                    picked = (t.index_select(0, rows) for t in (x, op, level, sign, factor))
                    x.index_copy_(0, rows, stage(*picked))
        return x

    def _lookup(self, x, op, level, sign, factor) -> torch.Tensor:
        """The per-channel lookup-table ops; a sample with another op gets the identity table."""
        b, c, h, w = x.shape
        index = x.long().view(b, c, h * w)
        v = torch.arange(256, device=x.device, dtype=torch.float32)
        hist = torch.zeros(b, c, 256, device=x.device).scatter_add_(
            2, index, torch.ones((), device=x.device).expand(index.shape))
        op, level, factor = op.view(b, 1, 1), level.view(b, 1, 1), factor.view(b, 1, 1)
        # AutoContrast: each channel's lowest .. highest value stretched to 0 .. 255
        present = hist > 0
        lo = present.float().argmax(-1, keepdim=True).float()
        hi = 255 - present.flip(-1).float().argmax(-1, keepdim=True).float()
        scale = torch.full_like(hi, 255.0, dtype=torch.float64) / (hi - lo).clamp(min=1)
        stretched = torch.trunc(v.double() * scale - lo * scale).clamp(0, 255).float()
        tables = {"AutoContrast": torch.where(hi > lo, stretched, v), "Invert": 255 - v}
        # Equalize (PIL): step = (pixels - count of the top value) // 255, lut from the cdf
        counts = hist.long()
        top = counts.gather(-1, hi.long())
        step = (counts.sum(-1, keepdim=True) - top) // 255
        before = torch.cumsum(counts, -1) - counts
        equal = torch.div(step // 2 + before, step.clamp(min=1), rounding_mode="floor")
        tables["Equalize"] = torch.where(step > 0, equal.clamp(max=255).float(), v)
        bits = torch.floor((level / 10) * 4)
        thresh = torch.clamp(torch.floor((level / 10) * 256), max=256)
        if self.spec.increasing:
            bits, thresh = 4 - bits, 256 - thresh
        q = torch.pow(2.0, 8 - bits.clamp(0, 8)).float()
        tables["Posterize"] = torch.floor(v / q) * q
        tables["Solarize"] = torch.where(v < thresh.float(), v, 255 - v)
        add = torch.clamp(torch.floor((level / 10) * 110), max=128).float()
        tables["SolarizeAdd"] = torch.where(v < 128, torch.clamp(v + add, max=255), v)
        total = luma(x).to(torch.int32).sum(dim=(1, 2, 3)).view(b, 1, 1)
        mean = torch.floor(total.double() / (h * w) + 0.5).float()  # PIL: the rounded mean of L
        tables["Contrast"] = (mean + factor * (v - mean)).clamp(0, 255).floor()
        tables["Brightness"] = (factor * v).clamp(0, 255).floor()
        lut = v.expand(b, c, 256)
        for name, table in tables.items():
            lut = torch.where(op == OP[name], table, lut)
        return torch.gather(lut, 2, index).view_as(x)

    def _blend(self, x, op, level, sign, factor) -> torch.Tensor:
        """Color / Sharpness: PIL's blend (truncated) of a degenerate image and the image; the
        factor is 1 (the identity, exactly) for a sample with another op."""
        col = lambda t: t.view(-1, 1, 1, 1)  # noqa: E731
        blends = _isin(op, _BLEND)
        degenerate = torch.where(col(op == OP["Color"]), luma(x), smooth(x))
        f = col(torch.where(blends, factor, 1.0))
        return (degenerate + f * (x - degenerate)).clamp_(0, 255).floor_()

    def _warp(self, x, op, level, sign, factor) -> torch.Tensor:
        """Rotate / shear / translate as PIL's affine transform maps them (output pixel center
        -> input point, in pixel units with centers at k + 0.5; shear about the top-left
        corner, rotation about the center), filled with the mean colour outside the image; the
        identity (exactly, after rounding) for a sample with another op."""
        b, _, h, w = x.shape
        one, zero = torch.ones_like(level), torch.zeros_like(level)
        angle = -torch.deg2rad((level / 10) * 30 * sign)
        cos, sin = torch.cos(angle), torch.sin(angle)
        shear, shift = (level / 10) * 0.3 * sign, (level / 10) * 0.45 * sign
        rot = op == OP["Rotate"]
        m00, m11 = torch.where(rot, cos, one), torch.where(rot, cos, one)
        m01 = torch.where(rot, sin, torch.where(op == OP["ShearX"], shear, zero))
        m10 = torch.where(rot, -sin, torch.where(op == OP["ShearY"], shear, zero))
        cx, cy = w / 2, h / 2
        t0 = torch.where(rot, cx - m00 * cx - m01 * cy,
                         torch.where(op == OP["TranslateXRel"], shift * w, zero))
        t1 = torch.where(rot, cy - m10 * cx - m11 * cy,
                         torch.where(op == OP["TranslateYRel"], shift * h, zero))
        # to affine_grid's normalized coordinates: p = (n + 1) * size / 2
        theta = _theta(m00, m01 * h / w, (m00 * cx + m01 * cy + t0) / cx - 1,
                       m10 * w / h, m11, (m10 * cx + m11 * cy + t1) / cy - 1).to(x.dtype)
        grid = F.affine_grid(theta, [b, 3, h, w], align_corners=False)
        inside = (grid.abs().amax(-1) < 1).unsqueeze(1)  # PIL fills what maps off the image
        out = F.grid_sample(x, grid, mode=self.mode, padding_mode="border", align_corners=False)
        return torch.where(inside, out.clamp_(0, 255).round_(), self.fill)


def _isin(op: torch.Tensor, names) -> torch.Tensor:
    hit = torch.zeros_like(op, dtype=torch.bool)
    for name in names:
        hit = hit | (op == OP[name])
    return hit


def _dense(setting: bool | None, x: torch.Tensor) -> bool:
    """Run every path on every sample: asked for, or by default anywhere but on the CPU."""
    return setting if setting is not None else x.device.type != "cpu"
