"""The recipe's training augmentation as whole-batch tensor ops on the training device.

timm's per-image pipeline (random-resized crop, flip, RandAugment, random erasing) re-expressed
so that a batch of B images costs a fixed number of batched kernels, whatever B is:

* crop + flip: one ``grid_sample`` on a per-sample grid (each box's axis-aligned map); the boxes
  are drawn as timm / torchvision's RandomResizedCrop draws them (area fraction uniform in
  ``[crop_scale_min, 1]``, log-uniform aspect in [3/4, 4/3], the first of 10 tries that fits,
  else the center crop), 10 candidates per sample at once;
* RandAugment (timm's ``rand-`` op set, ``inc1`` variants, per-sample op choice, each of ``n``
  layers applied with probability ``p``, magnitude noise ``mstd``): per layer, the op drawn for
  each sample is one of three batched paths: a per-sample, per-channel 256-entry lookup table
  (AutoContrast, Equalize, Invert, Posterize, Solarize, SolarizeAdd, Contrast, Brightness), a
  blend with a degenerate image (Color, Sharpness), or one affine warp (Rotate, ShearX/Y,
  TranslateX/YRel, filled with timm's mean colour), each the identity for the other samples,
  so every path runs on every sample. Pixels are rounded to integers 0..255 after each op, as
  the PIL images between timm's ops are uint8; the tables and blends round as PIL does;
* random erasing (timm's ``RandomErasing`` after normalization: probability, 1..count boxes,
  area 2%..1/3, aspect 0.3..3.3, 10 tries; fill per pixel / per box / zero by
  ``random_erasing_mode``): a box mask per sample, one ``torch.where``.

Nothing reads data back to the host (no ``.item()``, no ``if tensor.any()``, no boolean
indexing), so on CUDA the host never waits for the device, and the module compiles with
``torch.compile(fullgraph=True)`` (tests/test_augment.py). Only on the CPU, where there is no
device to wait for, RandAugment's paths and the erasing run on their own samples only
(``nonzero``): the same arithmetic, the same pixels, less work (``dense=True`` forces the
batched way there too).

Randomness: every draw for a global batch of G rows is made first, in a fixed order and with
fixed shapes, from the global RNG (the loader forks and seeds it per batch); ``forward(x, rank,
world)`` augments only rows ``rank, rank + world, ...`` of that batch with those rows' draws, so a
sample's pixels do not depend on the number of ranks, and each rank does 1/world of the work.

Left different from timm: interpolation is ``grid_sample``'s (its cubic kernel has a = -0.75,
PIL's resize -0.5; taps past the edge are clamped, not renormalized as PIL's resize does);
``random_erasing_mode=pixel`` boxes of one image share one noise draw where they overlap.
"""

import math

import torch
import torch.nn.functional as F

from ladder.data.randaugment import (IMAGENET_MEAN, IMAGENET_STD, RandAugment, RandAugmentSpec,
                                _dense, _grid_mode)

CROP_RATIO = (3 / 4, 4 / 3)


def _first_fit(ok: torch.Tensor, *values: torch.Tensor):
    """Per row: whether any of the tries fits, and each value at the first try that does."""
    first = ok.float().argmax(-1, keepdim=True)  # argmax returns the first maximal index
    return (ok.any(-1), *(v.gather(-1, first).squeeze(-1) for v in values))


def crop_boxes(n: int, height: int, width: int, scale: tuple[float, float],
               ratio: tuple[float, float] = CROP_RATIO, device=None) -> torch.Tensor:
    """[n, 4] (top, left, h, w) boxes drawn like timm / torchvision's RandomResizedCrop: per
    try an area fraction uniform in ``scale`` and a log-uniform aspect w/h in ``ratio``, the
    first of 10 tries whose rounded box fits, at a uniform position; else the center crop of the
    closest allowed aspect."""
    u = torch.rand(n, 10, 2, device=device)
    target = height * width * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    w, h = torch.round(torch.sqrt(target * aspect)), torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    found, h, w = _first_fit(ok, h, w)
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        fw, fh = round(height * max(ratio)), height
    else:
        fw, fh = width, height
    pos = torch.rand(n, 2, device=device)
    top = torch.where(found, torch.floor(pos[:, 0] * (height - h + 1)), float((height - fh) // 2))
    left = torch.where(found, torch.floor(pos[:, 1] * (width - w + 1)), float((width - fw) // 2))
    return torch.stack([top, left, torch.where(found, h, float(fh)),
                        torch.where(found, w, float(fw))], -1)


def crop_grid(boxes: torch.Tensor, flip: torch.Tensor, height: int, width: int,
              size: int) -> torch.Tensor:
    """[n, size, size, 2] ``grid_sample`` grid (align_corners=False) that maps the output onto
    each box, mirrored left-right where ``flip``: output pixel centers land where a resize of
    the box puts them. Axis-aligned, so built from a row and a column per sample."""
    top, left, h, w = (t.unsqueeze(1) for t in boxes.unbind(-1))
    n = len(boxes)
    centers = (2 * torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 1) / size - 1
    sx = w / width * (1 - 2 * flip.to(w.dtype).unsqueeze(1))
    gx = sx * centers + (2 * left + w) / width - 1
    gy = h / height * centers + (2 * top + h) / height - 1
    return torch.stack([gx.unsqueeze(1).expand(n, size, size),
                        gy.unsqueeze(2).expand(n, size, size)], -1)


def erase_boxes(n: int, count: int, height: int, width: int, prob: float = 1.0, device=None,
                area=(0.02, 1 / 3), log_aspect=(math.log(0.3), math.log(1 / 0.3))) -> torch.Tensor:
    """[n, count, 4] (top, left, h, w) boxes of timm's RandomErasing, h = w = 0 where there is
    none: an image is erased with probability ``prob``, in ``c`` boxes (c uniform in 1..count;
    each box's area scaled by 1/c), box k existing when k < c and one of its 10 tries fits
    (h < height, w < width)."""
    erased = torch.rand(n, 1, device=device) < prob
    per_image = (torch.floor(torch.rand(n, 1, 1, device=device) * count) + 1
                 if count > 1 else torch.ones(n, 1, 1, device=device))
    u = torch.rand(n, count, 10, 2, device=device)
    target = (area[0] + (area[1] - area[0]) * u[..., 0]) * height * width / per_image
    aspect = torch.exp(log_aspect[0] + (log_aspect[1] - log_aspect[0]) * u[..., 1])
    h, w = torch.round(torch.sqrt(target * aspect)), torch.round(torch.sqrt(target / aspect))
    found, h, w = _first_fit((w < width) & (h < height), h, w)
    pos = torch.rand(n, count, 2, device=device)
    top = torch.floor(pos[..., 0] * (height - h + 1))
    left = torch.floor(pos[..., 1] * (width - w + 1))
    keep = erased & found & (torch.arange(count, device=device) < per_image.view(n, 1))
    return torch.stack([top, left, h * keep, w * keep], -1)


def box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[n, count, H, W] bool: the pixels of each box."""
    top, left, h, w = (t.unsqueeze(-1) for t in boxes.unbind(-1))
    rows = torch.arange(height, device=boxes.device)
    cols = torch.arange(width, device=boxes.device)
    in_rows = (rows >= top) & (rows < top + h)
    in_cols = (cols >= left) & (cols < left + w)
    return in_rows.unsqueeze(-1) & in_cols.unsqueeze(-2)


ERASING_MODES = ("pixel", "rand", "const")


class BatchAugment(torch.nn.Module):
    """The recipe's training augmentation: uint8 [B, 3, S, S] on any device in, normalized float
    [B, 3, size, size] out (crop + flip, RandAugment if ``recipe.randaugment``, random erasing
    if ``recipe.random_erasing`` > 0). Every sample draws its own RandAugment ops, as in timm.
    ``dense``: see :class:`RandAugment`."""

    def __init__(self, size: int, recipe, dense: bool | None = None):
        super().__init__()
        self.size, self.scale, self.dense = size, (recipe.crop_scale_min, 1.0), dense
        self.mode = _grid_mode(recipe.interpolation)
        self.randaugment = (RandAugment(RandAugmentSpec.parse(recipe.randaugment),
                                        recipe.interpolation, dense=dense)
                            if recipe.randaugment else None)
        self.erasing, self.erasing_mode = recipe.random_erasing, recipe.random_erasing_mode
        self.erasing_count = max(1, recipe.random_erasing_count)
        if self.erasing_mode not in ERASING_MODES:
            raise ValueError(f"recipe.random_erasing_mode={self.erasing_mode!r} is not valid; "
                             f"allowed values: {', '.join(ERASING_MODES)}")
        self.register_buffer("mean", 255 * torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", 255 * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def draw(self, n: int, height: int, width: int, device=None) -> dict[str, torch.Tensor]:
        """Every random number of a batch of ``n`` images of ``height`` x ``width``, in a fixed
        order and with shapes fixed by ``n`` and the recipe."""
        params = {"crop": crop_boxes(n, height, width, self.scale, device=device),
                  "flip": torch.rand(n, device=device) < 0.5}
        if self.randaugment is not None:
            params.update(self.randaugment.draw(n, device))
        if self.erasing > 0:
            s, count = self.size, self.erasing_count
            params["erase"] = erase_boxes(n, count, s, s, self.erasing, device=device)
            if self.erasing_mode == "pixel":
                params["erase_fill"] = torch.randn(n, 3, s, s, device=device)
            elif self.erasing_mode == "rand":
                params["erase_fill"] = torch.randn(n, count, 3, 1, 1, device=device)
        return params

    @torch.no_grad()
    def forward(self, x: torch.Tensor, rank: int = 0, world: int = 1) -> torch.Tensor:
        """``x`` holds rows ``rank, rank + world, ...`` of a global batch of ``len(x) * world``
        images; the draws are the global batch's, and these rows' are used."""
        params = self.draw(len(x) * world, x.shape[-2], x.shape[-1], x.device)
        return self.apply(x, {k: v[rank::world] for k, v in params.items()})

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """The augmentation of ``x`` with given draws (deterministic)."""
        grid = crop_grid(params["crop"], params["flip"], x.shape[-2], x.shape[-1], self.size)
        x = F.grid_sample(x.float(), grid, mode=self.mode, padding_mode="border",
                          align_corners=False).clamp_(0, 255).round_()
        if self.randaugment is not None:
            x = self.randaugment(x, params)
        x = torch.addcmul(-self.mean / self.std, x, 1 / self.std)  # (x - mean) / std
        if "erase" in params:
            boxes, fill = params["erase"], params.get("erase_fill")
            if _dense(self.dense, x):
                x = self._erase(x, boxes, fill)
            else:  # the CPU: only the erased rows
                rows = (boxes[..., 2] > 0).any(1).nonzero().squeeze(1)
                if len(rows):
                    x.index_copy_(0, rows, self._erase(
                        x.index_select(0, rows), boxes[rows], None if fill is None else fill[rows]))
        return x

    def _erase(self, x, boxes, fill) -> torch.Tensor:
        masks = box_masks(boxes, self.size, self.size)
        if self.erasing_mode == "rand":
            for k in range(self.erasing_count):
                x = torch.where(masks[:, k:k + 1], fill[:, k], x)
            return x
        return torch.where(masks.any(1, keepdim=True), 0.0 if fill is None else fill, x)
