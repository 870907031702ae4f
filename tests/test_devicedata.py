"""The in-memory device data path and the Imagenette downloader/cache, on folders the tests write."""
from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest
import torch

from conftest import write_image_folder
from ladder.data.loaders import DataError, build_loaders
from ladder.train.trainer import train


def _loaders(cfg, batch=4, **kw):
    return build_loaders(cfg.data, cfg.recipe, batch, 1, cfg.seed, **kw)


def _folder_cfg(tiny, root, *extra):
    return tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
                "data.image_size=24", *extra)


def test_device_path_decodes_once_and_rebuilds_when_a_file_changes(tiny, tmp_path, cache_dir, capsys):
    root = write_image_folder(tmp_path / "f", size=30)
    cfg = _folder_cfg(tiny, root)
    first = _loaders(cfg)
    assert first.pipeline == "device"
    assert capsys.readouterr().out.count("decoding") == 2  # train and val, once
    again = _loaders(cfg)
    assert "decoding" not in capsys.readouterr().out  # from the tensor cache
    assert torch.equal(first.val.images, again.val.images)
    assert first.train.images.shape == (18, 3, 24, 24) and first.train.images.dtype == torch.uint8
    assert not list((cache_dir / "tensors").glob("*.tmp*"))  # written atomically
    target = root / "train" / "b" / "0.jpg"
    os.utime(target, ns=(1, 1))
    _loaders(cfg)
    assert capsys.readouterr().out.count("decoding") == 1  # train only: its key changed


def test_tensor_cache_is_keyed_on_the_transform_that_made_the_pixels(tmp_path):
    """The eval copy of a bicubic recipe is not the bilinear recipe's: one store each, and each
    holds what timm's eval transform makes of every file."""
    import numpy as np
    from timm.data import create_transform

    from ladder.data import device as dd
    from ladder.data.layout import find_source
    from ladder.ladders.schema import RecipeConfig

    root = write_image_folder(tmp_path / "f", size=30)
    source = find_source(root)
    cache = tmp_path / "cache"
    decoded = {}
    for interpolation, stores in (("bilinear", 1), ("bicubic", 2), ("bilinear", 2)):
        recipe = RecipeConfig(interpolation=interpolation)
        rule = dd.cache_rules(24, recipe)[1]
        part = dd.cached_split(root, source.classes, source.splits["val"], "val", rule,
                               cache_dir=cache, log=lambda m: None)
        assert len(list(cache.glob("val-24px-*/manifest.json"))) == stores  # 3rd: the 1st's
        images = part.resident(None, torch.device("cpu"))
        assert torch.equal(images, decoded.setdefault(interpolation, images))
        timm_eval = create_transform(24, is_training=False, interpolation=interpolation,
                                     crop_pct=recipe.eval_crop_ratio)
        for (path, _), stored in zip(source.splits["val"], images):
            from PIL import Image

            expected = timm_eval.transforms[1](timm_eval.transforms[0](
                Image.open(path).convert("RGB")))
            assert np.array_equal(np.asarray(expected).transpose(2, 0, 1), stored.numpy())
    assert not torch.equal(decoded["bilinear"], decoded["bicubic"])


def test_device_batches_are_a_function_of_seed_epoch_and_position(tiny, tmp_path):
    root = write_image_folder(tmp_path / "f", size=30)
    cfg = _folder_cfg(tiny, root)
    a, b = _loaders(cfg), _loaders(cfg)
    rng_before = torch.get_rng_state()
    a.train_sampler.set_epoch(1)
    full = list(a.train)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the trainer's RNG is untouched
    b.train_sampler.set_epoch(1, start=8)  # a resumed run: two batches of 4 already seen
    resumed = list(b.train)
    assert len(full) == 4 and len(resumed) == 2
    for (x, y), (xr, yr) in zip(full[2:], resumed):
        assert torch.equal(x, xr) and torch.equal(y, yr)
    a.train_sampler.set_epoch(2)
    assert not torch.equal(next(iter(a.train))[0], full[0][0])  # a new epoch, new draws
    x, y = full[0]
    assert x.shape == (4, 3, 24, 24) and x.dtype == torch.float32 and y.dtype == torch.long
    assert -3 < x.mean() < 3  # normalized, not 0..255


def test_two_ranks_see_the_pixels_of_one_process(tiny, tmp_path):
    """Under torchrun each rank's batch is its rows of the single-process global batch, with
    the very same augmentation (the modern recipe's RandAugment and erasing included)."""
    root = write_image_folder(tmp_path / "f", classes=("a", "b", "c", "d"), train=8, size=30)
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=4",
               "data.image_size=24", "data.pipeline=device",
               "recipe.randaugment=rand-m9-mstd0.5-inc1", "recipe.random_erasing=0.25")

    def batches(batch, rank, world, start=0):
        loaders = build_loaders(cfg.data, cfg.recipe, batch, 1, cfg.seed, rank=rank,
                                world_size=world)
        assert loaders.pipeline == "device"
        loaders.train_sampler.set_epoch(3, start=start)
        return list(loaders.train)

    one = batches(8, 0, 1)
    ranks = [batches(4, r, 2) for r in range(2)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 4
    for b, (x, y) in enumerate(one):
        for r in range(2):
            assert torch.equal(ranks[r][b][0], x[r::2]) and torch.equal(ranks[r][b][1], y[r::2])
    resumed = batches(4, 1, 2, start=8)  # rank 1 resumed after two of its batches
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed, ranks[1][2:]))


def test_modern_recipe_augments_each_sample_differently(tiny, tmp_path):
    root = write_image_folder(tmp_path / "f", classes=("a",), train=8, val=2, size=30)
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=1",
               "data.image_size=24")
    loaders = _loaders(cfg, batch=8)
    loaders.train_sampler.set_epoch(0)
    x, _ = next(iter(loaders.train))
    assert len({round(float(v), 4) for v in x.flatten(1).std(1)}) == 8


def test_auto_falls_back_to_the_loader_over_the_size_limit(tiny, tmp_path):
    root = write_image_folder(tmp_path / "f", size=30)
    assert _loaders(_folder_cfg(tiny, root, "data.device_max_mb=0")).pipeline == "loader"
    assert _loaders(_folder_cfg(tiny, root, "data.pipeline=loader")).pipeline == "loader"
    assert _loaders(_folder_cfg(tiny, root, "data.pipeline=device",
                                "data.device_max_mb=0")).pipeline == "device"


def test_unreadable_image_on_the_device_path_names_the_file(tiny, tmp_path):
    root = write_image_folder(tmp_path / "f", size=30)
    bad = root / "train" / "a" / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg"):
        _loaders(_folder_cfg(tiny, root))


# ----------------------------------------------------------------------------- Imagenette
def _fake_torchvision_release(base: Path) -> Path:
    """What torchvision's Imagenette(size="160px") extracts: imagenette2-160/{train,val}/<wnid>/
    JPEGs with a 160 px short side (here 3 classes of non-square images)."""
    src = base / "imagenette2-160"
    write_image_folder(src, classes=("n01440764", "n02102040", "n02979186"), train=4, val=2,
                       size=160)
    from PIL import Image

    for f in src.rglob("*.jpg"):  # make them 160 x 213 like the real release
        Image.open(f).resize((213, 160)).save(f.with_suffix(".JPEG"))
        f.unlink()
    return src


def test_imagenette_builds_a_low_resolution_cache_once(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path))
    _fake_torchvision_release(tmp_path / "imagenette")
    cfg = tiny("micro", "data=imagenette", "data.root=null", "data.num_classes=3",
               "data.image_size=32", "data.store_size=40", "data.pipeline=loader")
    loaders = _loaders(cfg)
    copy = tmp_path / "imagenette-40px"
    assert Path(loaders.source) == copy and (copy / ".complete").exists()
    from PIL import Image

    files = sorted(copy.rglob("*.JPEG"))
    assert len(files) == 18 and {Image.open(f).size for f in files} == {(40, 40)}
    assert sorted(p.name for p in (copy / "val").iterdir()) == ["n01440764", "n02102040", "n02979186"]


def test_imagenette_offline_without_a_copy_says_how_to_pass_one(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path))
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "Imagenette", offline)
    cfg = tiny("micro", "data=imagenette", "data.root=null", "data.image_size=32")
    with pytest.raises(DataError, match="could not download Imagenette.*data.root=/path/to/imagenette"):
        _loaders(cfg)


def test_imagenette_trains_from_any_imagenet_layout_root(tiny, tmp_path):
    root = write_image_folder(tmp_path / "copy", classes=("n01", "n02"), size=40)
    cfg = tiny("resnet50", "data=imagenette", f"data.root={root}", "data.num_classes=2",
               "data.image_size=32", "trainer.global_batch=8")
    result = train(cfg, tmp_path / "run")
    assert result["dataset"] == "imagenette" and result["history"][0]["val_images"] == 6
