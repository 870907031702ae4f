"""The batched device augmentation (ladder/data/augment.py): timm's ops pixel for pixel, timm's
crop and erasing statistics, and no host syncs (it traces whole, and runs on the meta device)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ladder.data import device as dd
from ladder.data.augment import BatchAugment, crop_boxes, erase_boxes
from ladder.data.randaugment import NO_OP, OP, RAND_OPS, RandAugment, RandAugmentSpec
from ladder.ladders.schema import RecipeConfig

MODERN = dict(randaugment="rand-m9-mstd0.5-inc1", random_erasing=0.25, interpolation="bicubic",
              crop_scale_min=0.08)


def _images(n=2, size=32, seed=0) -> torch.Tensor:
    """Smooth, low-contrast RGB images (uint8), each channel its own range and histogram."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 5, 5, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic",
                                        align_corners=False)
    x = x + 0.05 * torch.rand(n, 3, size, size, generator=g)
    lo = torch.tensor([30.0, 60.0, 10.0]).view(1, 3, 1, 1)
    return (lo + 150 * x.clamp(0, 1)).round().to(torch.uint8)


# ----------------------------------------------------------------------------- RandAugment
def _timm_op(name, img, level, sign, increasing, monkeypatch):
    """timm's op (PIL) at magnitude ``level``; ``sign`` -1 where timm negates the argument."""
    from timm.data import auto_augment as aa

    timm_name = name + "Increasing" if increasing and name in (
        "Posterize", "Solarize", "Color", "Contrast", "Brightness", "Sharpness") else name
    monkeypatch.setattr(random, "random", lambda: 1.0 if sign < 0 else 0.0)
    hparams = dict(translate_const=int(img.size[0] * 0.45), img_mean=(124, 116, 104))
    level_fn = aa.LEVEL_TO_ARG[timm_name]
    args = level_fn(level, hparams) if level_fn is not None else ()
    from PIL import Image

    return aa.NAME_TO_OP[timm_name](img, *args, fillcolor=hparams["img_mean"],
                                    resample=Image.BILINEAR)


@pytest.mark.parametrize("increasing", [False, True])
@pytest.mark.parametrize("name", RAND_OPS)
def test_each_randaugment_op_matches_timms_pil_op(name, increasing, monkeypatch):
    from PIL import Image

    x = _images(4)
    levels, signs = torch.tensor([9.0, 9.0, 6.3, 2.7]), torch.tensor([1.0, -1.0, 1.0, -1.0])
    ra = RandAugment(RandAugmentSpec(increasing=increasing), interpolation="bilinear")
    ours = ra.layer(x.float(), torch.full((4,), OP[name]), levels, signs, dense=True)
    for i in range(4):
        img = Image.fromarray(x[i].permute(1, 2, 0).numpy())
        ref = np.asarray(_timm_op(name, img, float(levels[i]), float(signs[i]), increasing,
                                  monkeypatch)).astype(np.int64)
        diff = np.abs(ours[i].permute(1, 2, 0).numpy().astype(np.int64) - ref)
        if name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
            # the same bilinear taps; pixels next to the fill edge may round the other way
            assert (diff > 1).mean() < 0.03 and diff.mean() < 0.5, (i, diff.max(), diff.mean())
        else:
            assert diff.max() <= (1 if name in ("Color", "Sharpness") else 0), (i, diff.max())
    assert not torch.equal(ours, x.float()) or name == "AutoContrast"


def test_randaugment_draws_follow_timms_spec():
    spec = RandAugmentSpec.parse("rand-m9-mstd0.5-inc1")
    assert spec == RandAugmentSpec(layers=2, magnitude=9, magnitude_std=0.5, increasing=True)
    assert RandAugmentSpec.parse("rand-n3-m7-p0.8-mmax12").magnitude_max == 12
    with pytest.raises(ValueError, match="unknown RandAugment section"):
        RandAugmentSpec.parse("rand-m9-tweights")
    torch.manual_seed(0)
    p = RandAugment(spec).draw(20000)
    op, level = p["ra_op"], p["ra_level"]
    assert op.shape == (20000, 2)
    assert abs((op == NO_OP).float().mean() - 0.5) < 0.02  # each layer applied with p = 0.5
    counts = torch.bincount(op[op >= 0], minlength=len(RAND_OPS)).float()
    assert (counts / counts.sum() - 1 / len(RAND_OPS)).abs().max() < 0.01  # uniform choice
    assert abs(level.mean() - 9) < 0.02 and abs(level.std() - 0.5) < 0.03 and level.max() <= 10
    assert abs((p["ra_sign"] < 0).float().mean() - 0.5) < 0.02


# ----------------------------------------------------------------------------- crop, erasing
def test_crop_boxes_follow_torchvisions_random_resized_crop():
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    n, size, scale, ratio = 20000, 32, (0.08, 1.0), (3 / 4, 4 / 3)
    top, left, h, w = crop_boxes(n, size, size, scale).unbind(-1)
    area, aspect = h * w / size ** 2, w / h
    assert ((top >= 0) & (left >= 0) & (top + h <= size) & (left + w <= size)).all()
    # the bounds up to the rounding of h and w to whole pixels
    assert area.min() >= scale[0] * 0.75 and area.max() <= 1.0
    assert aspect.min() >= ratio[0] * 0.85 and aspect.max() <= ratio[1] / 0.85
    img = torch.zeros(1, size, size)
    ref = torch.tensor([RandomResizedCrop.get_params(img, list(scale), list(ratio))
                        for _ in range(4000)], dtype=torch.float32)
    ref_area = ref[:, 2] * ref[:, 3] / size ** 2
    assert abs(area.mean() - ref_area.mean()) < 0.015
    assert abs((area == 1).float().mean() - (ref_area == 1).float().mean()) < 0.02
    assert abs(torch.log(aspect).mean() - torch.log(ref[:, 3] / ref[:, 2]).mean()) < 0.02
    flips = BatchAugment(size, RecipeConfig()).draw(n, size, size)["flip"].float().mean()
    assert abs(flips - 0.5) < 0.02


@pytest.mark.parametrize("flip", [False, True])
def test_crop_resamples_the_box_like_torchvisions_resized_crop(flip):
    from torchvision.transforms import functional as TF

    x = _images(1, size=40)
    box = torch.tensor([[5.0, 9.0, 21.0, 27.0]])  # top, left, h, w
    aug = BatchAugment(32, RecipeConfig(interpolation="bilinear"))
    ours = aug.apply(x, {"crop": box, "flip": torch.tensor([flip])})
    ours = ours * aug.std + aug.mean  # back to 0..255
    ref = TF.resized_crop(x.float(), 5, 9, 21, 27, [32, 32],
                          TF.InterpolationMode.BILINEAR, antialias=False)
    if flip:
        ref = ref.flip(-1)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # edges: taps clamp differently
    assert (ours[inner] - ref[inner]).abs().max() <= 0.51


def test_erasing_boxes_follow_timms_random_erasing():
    torch.manual_seed(0)
    n, size = 20000, 32
    boxes = erase_boxes(n, 1, size, size, prob=0.25)
    top, left, h, w = boxes[:, 0].unbind(-1)
    erased = h * w > 0
    assert abs(erased.float().mean() - 0.25) < 0.015
    area = (h * w / size ** 2)[erased]
    assert area.min() >= 0.02 * 0.6 and area.max() <= 1 / 3 * 1.2 and 0.15 < area.mean() < 0.2
    assert ((top + h <= size) & (left + w <= size) & (h < size) & (w < size)).all()
    two = erase_boxes(n, 2, size, size)  # 1 or 2 boxes, each of half the area when 2
    second = two[:, 1, 2] * two[:, 1, 3] > 0
    assert abs(second.float().mean() - 0.5) < 0.02


def test_pixel_erasing_fills_a_box_with_noise():
    recipe = RecipeConfig(random_erasing=1.0, random_erasing_mode="pixel")
    aug = BatchAugment(32, recipe)
    torch.manual_seed(1)
    params = aug.draw(8, 32, 32)
    params["crop"] = torch.tensor([[0.0, 0.0, 32.0, 32.0]]).repeat(8, 1)
    x = torch.tensor([124, 116, 104], dtype=torch.uint8).view(1, 3, 1, 1).repeat(8, 1, 32, 32)
    out = aug.apply(x, params)
    top, left, h, w = (int(v) for v in params["erase"][0, 0])
    assert h * w > 0
    patch = out[0, :, top:top + h, left:left + w]
    assert torch.equal(patch, params["erase_fill"][0, :, top:top + h, left:left + w])
    assert out[0].abs().lt(0.05).float().mean() > 0.6  # the rest is untouched


# ----------------------------------------------------------------------------- the whole
def _modern(**kw) -> RecipeConfig:
    return RecipeConfig(**{**MODERN, **kw})


@pytest.mark.parametrize("mode", ["pixel", "rand"])
def test_cpu_subset_path_gives_the_dense_paths_pixels_and_ranks_split_the_work(mode):
    recipe = _modern(random_erasing=0.5, random_erasing_count=2, random_erasing_mode=mode)
    x = _images(16, size=32, seed=3)
    torch.manual_seed(7)
    params = BatchAugment(32, recipe).draw(16, 32, 32)
    assert (params["erase"][..., 2] > 0).any() and (params["ra_op"] >= 0).any()
    out = {}
    for dense in (True, False):
        torch.manual_seed(7)
        out[dense] = BatchAugment(32, recipe, dense=dense)(x)
    assert torch.equal(out[True], out[False])
    torch.manual_seed(7)
    half = BatchAugment(32, recipe)(x[1::2], 1, 2)  # rank 1 of 2
    assert torch.equal(half, out[True][1::2])
    torch.manual_seed(8)
    assert not torch.equal(BatchAugment(32, recipe)(x), out[True])


def test_augmentation_has_no_host_sync_on_the_meta_device():
    """On the meta device there is no data: ``.item()``, ``if t.any()`` or a boolean index
    raises. The default path off the CPU must run there."""
    aug = dd.BatchAugment(32, _modern()).to("meta")
    x = torch.empty(8, 3, 32, 32, dtype=torch.uint8, device="meta")
    out = aug(x)
    assert out.shape == (8, 3, 32, 32) and out.device.type == "meta"


def test_augmentation_traces_whole_with_torch_compile():
    """crop + flip + RandAugment + erasing is one graph: no graph break (a host read of data
    would be one)."""
    torch._dynamo.reset()
    aug = BatchAugment(32, _modern(), dense=True)
    compiled = torch.compile(aug, fullgraph=True, backend="eager")
    x = _images(8, size=32)
    torch.manual_seed(0)
    out = compiled(x)
    torch.manual_seed(0)
    assert torch.equal(out, aug(x))


@pytest.mark.slow
def test_augmentation_compiles_to_one_inductor_graph_with_the_eager_pixels():
    """The same, lowered by inductor (about a minute on a 2-core CPU), drawing its random
    numbers as eager does: the compiled pixels are the eager ones. (inductor's own config
    patch, not monkeypatch: undoing a monkeypatch deletes the option from inductor's config
    module, and every later compile in the process then fails.)"""
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    aug = BatchAugment(32, _modern(random_erasing=0.5), dense=True)
    x = _images(8, size=32)
    with inductor_config.patch(fallback_random=True):
        torch.manual_seed(0)
        out = torch.compile(aug, fullgraph=True)(x)
    torch._dynamo.reset()
    torch.manual_seed(0)
    torch.testing.assert_close(out, aug(x), atol=1e-5, rtol=0)
