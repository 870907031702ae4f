"""The pixel store (ladder/data/store.py, ladder/data/prepare.py) on folders the tests write:
the stored pixels, the layouts, unreadable files, an interrupted prepare, the checks against
the config, and runs from a store."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import typed_config, write_image_folder
from ladder.data import prepare
from ladder.data.common import DataError
from ladder.data.layout import ILSVRC, find_source
from ladder.data.loaders import build_loaders
from ladder.data.store import Store
from ladder.train.trainer import train

QUIET = dict(log=lambda m: None)


def _store(root: Path, dest: Path, size: int = 24, **kw) -> Path:
    prepare.build_store(dest, find_source(root), prepare.prepared_rules(size), **QUIET, **kw)
    return dest


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_stored_pixels_are_each_file_decoded_by_the_rule(tmp_path):
    """Big JPEGs are decoded at a reduced size (draft), then resized and cropped exactly as
    torchvision's Resize + CenterCrop do; shards written by two processes."""
    from torchvision import transforms as T

    root = write_image_folder(tmp_path / "f", train=5, val=2, size=200)
    dest = _store(root, tmp_path / "store", workers=2, shard_images=4)
    store, source = Store(dest), find_source(root)
    assert [s["images"] for s in store.manifest["splits"]["train"]["shards"]] == [4, 4, 4, 3]
    assert store.manifest["splits"]["train"]["counts"] == [5, 5, 5]
    for split, crop, drafted in (("train", 1.0, 50), ("val", 0.875, 100)):
        stored = store.split(split).resident(None, torch.device("cpu"))
        resize = T.Compose([T.Resize(int(24 / crop), T.InterpolationMode.BICUBIC),
                            T.CenterCrop(24)])
        for (path, label), pixels, y in zip(source.splits[split], stored,
                                            store.split(split).labels):
            im = Image.open(path)
            im.draft("RGB", (2 * int(24 / crop),) * 2)
            assert im.size == (drafted, drafted)  # 1/4 (1/2) of 200 px: >= 2 x 24 (27) px
            expected = np.asarray(resize(im.convert("RGB"))).transpose(2, 0, 1)
            assert np.array_equal(pixels.numpy(), expected) and int(y) == label
    full = prepare.decode_file(source.splits["train"][0][0], prepare.Rule(24, draft_gap=0))
    assert not np.array_equal(full, prepare.decode_file(source.splits["train"][0][0],
                                                        prepare.Rule(24, draft_gap=2)))


def test_the_manifest_says_what_made_the_store(tmp_path):
    root = write_image_folder(tmp_path / "f", size=30)
    m = Store(_store(root, tmp_path / "store")).manifest
    assert m["format"] == "ladder.store/1" and m["size"] == 24 and m["classes"] == ["a", "b", "c"]
    assert m["source"]["layout"] == "class-folders" and m["source"]["files"] == {"train": 18,
                                                                                  "val": 9}
    assert m["rule"]["train"]["crop_pct"] == 1.0 and m["rule"]["val"]["crop_pct"] == 0.875
    assert m["rule"]["train"]["interpolation"] == "bicubic"
    assert {"Pillow", "libjpeg", "numpy"} <= set(m["versions"])
    stored = np.load(tmp_path / "store" / "train-00000.npy", mmap_mode="r")
    assert isinstance(stored, np.memmap) and stored.dtype == np.uint8


@pytest.mark.parametrize("content", [b"not an image at all", "truncated"])
def test_an_unreadable_file_is_named_and_fails_or_is_skipped(tmp_path, capsys, content):
    root = write_image_folder(tmp_path / "f", size=60)
    good = root / "train" / "b" / "0.jpg"
    bad = root / "train" / "b" / "broken.jpg"
    bad.write_bytes(good.read_bytes()[:400] if content == "truncated" else content)
    with pytest.raises(DataError, match=r"cannot read image .*broken\.jpg.*data\.bad_images=skip"):
        _store(root, tmp_path / "store")
    m = Store(_store(root, tmp_path / "store", bad_images="skip")).manifest
    assert m["splits"]["train"]["images"] == 18 and m["splits"]["train"]["counts"] == [6, 6, 6]
    assert [p for p, _ in m["splits"]["train"]["skipped"]] == ["train/b/broken.jpg"]
    assert "broken.jpg" in capsys.readouterr().err


def test_an_interrupted_prepare_resumes_to_the_same_store(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "f", size=30)
    whole = _store(root, tmp_path / "whole", shard_images=4)
    written = []
    real = prepare._write_shard

    def stop_after_two(folder, name, *args):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(name)
        real(folder, name, *args)

    monkeypatch.setattr(prepare, "_write_shard", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        _store(root, tmp_path / "resumed", shard_images=4)
    partial = tmp_path / "resumed.partial"
    assert not (tmp_path / "resumed").exists() and (partial / "train-00001.json").exists()
    (partial / "train-00002.npy.tmp123").write_bytes(b"half a shard")  # a write cut short
    monkeypatch.setattr(prepare, "_write_shard", real)
    logged = []
    prepare.build_store(tmp_path / "resumed", find_source(root), prepare.prepared_rules(24),
                        shard_images=4, log=logged.append)
    assert "2 finished shards kept" in logged[0] and "decoding 19 images" in logged[0]
    assert _files(tmp_path / "resumed") == _files(whole)


def test_a_partial_store_planned_for_other_files_starts_again(tmp_path):
    root = write_image_folder(tmp_path / "f", size=30)
    partial = tmp_path / "s.partial"
    partial.mkdir()
    (partial / "plan.json").write_text(json.dumps({"id": "another"}))
    (partial / "train-00000.json").write_text("{}")
    logged = []
    prepare.build_store(tmp_path / "s", find_source(root), prepare.prepared_rules(24),
                        log=logged.append)
    assert "starting it again" in logged[0] and Store(tmp_path / "s").split("train")


# ----------------------------------------------------------------------------- layouts
def write_ilsvrc(root: Path, classes=("n01440764", "n01443537", "n01484850"), train=4,
                 size=40) -> Path:
    """The ILSVRC2012 localization release's layout: train in class folders, val flat with
    its CSV of boxes, and the synset mapping."""
    rng = np.random.default_rng(1)
    data = root / "ILSVRC" / "Data" / "CLS-LOC"
    rows = ["ImageId,PredictionString"]
    for i, wnid in enumerate(classes):
        (data / "train" / wnid).mkdir(parents=True)
        for j in range(train):
            arr = rng.integers(0, 60, (size, size + 8, 3)) + 60 * i
            Image.fromarray(arr.astype("uint8")).save(data / "train" / wnid / f"{wnid}_{j}.JPEG")
    (data / "val").mkdir(parents=True)
    for k in range(2 * len(classes)):
        wnid = classes[(k * 2) % len(classes)]  # not in class order
        name = f"ILSVRC2012_val_{k + 1:08d}"
        arr = rng.integers(0, 60, (size, size, 3)) + 60 * classes.index(wnid)
        Image.fromarray(arr.astype("uint8")).save(data / "val" / f"{name}.JPEG")
        rows.append(f"{name},{wnid} 1 2 30 30 {wnid} 3 4 20 20 ")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    (root / "LOC_synset_mapping.txt").write_text(
        "".join(f"{c} some name, another name\n" for c in classes))
    return root


def test_the_ilsvrc_release_is_recognised_and_prepared(tmp_path, tiny):
    root = write_ilsvrc(tmp_path / "loc")
    source = find_source(root)
    assert source.layout == ILSVRC and source.classes == ["n01440764", "n01443537", "n01484850"]
    assert source.counts("train") == [4, 4, 4] and source.counts("val") == [2, 2, 2]
    for path, label in source.splits["val"]:
        pixel = np.asarray(Image.open(path))[20, 20].mean()
        assert 60 * label <= pixel < 60 * label + 60  # labelled by LOC_val_solution.csv
    m = Store(_store(root, tmp_path / "store")).manifest
    assert m["source"]["layout"] == ILSVRC and m["splits"]["val"]["counts"] == [2, 2, 2]
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
               "data.image_size=24", "data.pipeline=loader")
    loaders = build_loaders(cfg.data, cfg.recipe, 4, 1, 0)  # the loader path reads it too
    assert loaders.val_size == 6 and next(iter(loaders.val))[0].shape == (4, 3, 24, 24)


def test_an_unknown_layout_is_one_sentence_naming_both(tmp_path):
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "labels.txt").write_text("x")
    with pytest.raises(DataError) as err:
        find_source(tmp_path / "d")
    text = str(err.value)
    assert "images/, labels.txt" in text and "train/<class>/" in text and "LOC_val_solution" in text
    assert "\n" not in text


# ----------------------------------------------------------------------------- training from it
def _store_cfg(tiny, root, store, *extra):
    return tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
                "data.image_size=24", "data.store_size=24", f"data.store={store}", *extra)


def test_a_run_from_the_store_matches_the_run_from_the_folder(tiny, tmp_path):
    root = write_image_folder(tmp_path / "f", size=30)
    store = _store(root, tmp_path / "store")
    one = ("trainer.epochs=1", "trainer.max_steps_per_epoch=1")
    folder = train(tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
                        "data.image_size=24", *one), tmp_path / "a")["history"][0]
    stored = train(_store_cfg(tiny, root, store, *one), tmp_path / "b")
    assert stored["data_pipeline"] == "device"
    row = stored["history"][0]
    assert row["train_loss"] == folder["train_loss"] and row["top1"] == folder["top1"]
    assert row["val_loss"] == folder["val_loss"]


@pytest.mark.parametrize("placement", ["device", "host"])
def test_batches_are_the_same_wherever_the_store_lives(tiny, tmp_path, capsys, placement):
    root = write_image_folder(tmp_path / "f", train=8, size=30)
    store = _store(root, tmp_path / "store", shard_images=5)
    ref = build_loaders(**_args(tiny("micro", "data=imagefolder", f"data.root={root}",
                                     "data.num_classes=3", "data.image_size=24")))
    cfg = _store_cfg(tiny, root, store, f"data.store_placement={placement}", "data.holdout=0.25")
    got = build_loaders(**_args(cfg))
    out = capsys.readouterr().out
    assert f"18 train + 9 val + 6 held-out images x 3 x 24 x 24 B = 0.00 GB" in out
    assert ("the whole store in cpu memory" if placement == "device" else "memory-mapped") in out
    assert isinstance(got.train.images, torch.Tensor) == (placement == "device")
    assert got.identity("imagefolder")["store"]["size"] == 24
    hold = torch.cat([y for _, y in got.holdout])
    assert hold.tolist() == [0, 0, 1, 1, 2, 2]
    for loaders in (ref, got):
        loaders.train_sampler.set_epoch(2)
    ref_val = torch.cat([x for x, _ in ref.val])
    assert torch.equal(torch.cat([x for x, _ in got.val]), ref_val)
    plain = build_loaders(**_args(_store_cfg(tiny, root, store, "data.store_placement=host")))
    plain.train_sampler.set_epoch(2)
    for (x, y), (xr, yr) in zip(plain.train, ref.train):
        assert torch.equal(x, xr) and torch.equal(y, yr)


def _args(cfg, **kw):
    return dict(data=cfg.data, recipe=cfg.recipe, batch_size=4, accum_steps=1, seed=cfg.seed, **kw)


def test_two_ranks_read_the_store_as_one_process_does(tiny, tmp_path):
    root = write_image_folder(tmp_path / "f", classes=("a", "b", "c", "d"), train=8, size=30)
    store = _store(root, tmp_path / "store", shard_images=7)
    cfg = tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=4",
               "data.image_size=24", "data.store_size=24", f"data.store={store}",
               "data.store_placement=host", "recipe.randaugment=rand-m9-mstd0.5-inc1")

    def batches(batch, rank, world):
        loaders = build_loaders(cfg.data, cfg.recipe, batch, 1, cfg.seed, rank=rank,
                                world_size=world, log=lambda m: None)
        loaders.train_sampler.set_epoch(1)
        return list(loaders.train), torch.cat([y for _, y in loaders.val])

    one, val = batches(8, 0, 1)
    ranks = [batches(4, r, 2) for r in range(2)]
    for b, (x, y) in enumerate(one):
        for r in range(2):
            xr, yr = ranks[r][0][b]
            assert torch.equal(xr, x[r::2]) and torch.equal(yr, y[r::2])
    assert torch.equal(torch.cat([ranks[0][1], ranks[1][1]]), val)


def test_a_store_that_does_not_match_is_refused_in_one_sentence(tiny, tmp_path):
    root = write_image_folder(tmp_path / "f", size=30)
    store = _store(root, tmp_path / "store")
    cases = [(("data.store_size=32",), "holds 24 px images but data.store_size=32"),
             (("data.num_classes=4",), "has 3 classes but data.num_classes=4")]
    for extra, words in cases:
        cfg = _store_cfg(tiny, root, store, *extra)
        with pytest.raises(DataError, match=words) as err:
            build_loaders(**_args(cfg))
        assert "\n" not in str(err.value)
    shutil.copy(root / "train" / "a" / "0.jpg", root / "train" / "a" / "new.jpg")
    with pytest.raises(DataError, match=r"does not match data.root=.*18 train files then, 19 now"):
        build_loaders(**_args(_store_cfg(tiny, root, store)))
    with pytest.raises(DataError, match=r"no pixel store at .*nowhere; build it once with "
                                        r"python -m ladder.data.prepare"):
        build_loaders(**_args(_store_cfg(tiny, root, tmp_path / "nowhere")))


def test_the_prepare_command_and_a_preset_run_from_its_store(tiny, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))
    root = write_ilsvrc(tmp_path / "loc", size=40)
    args = [f"data.root={root}", "data.store_size=32", "--workers", "2", "--no-progress"]
    assert prepare.main(args) == 0
    out = capsys.readouterr().out
    assert "ilsvrc2012-loc layout, 3 classes, 12 train, 6 val images; 32 px" in out
    dest = next(p for p in (tmp_path / "cache" / "stores").glob("loc-32px-*") if p.is_dir())
    assert (dest / "manifest.json").exists() and "data.store=" in out
    assert prepare.main(args) == 0 and "is prepared already" in capsys.readouterr().out
    assert prepare.main([f"data.root={root}", "data.store_size=32", f"data.store={dest}",
                         "--draft-gap", "0"]) == 2
    assert "does not match this one (another resize rule" in capsys.readouterr().err
    cfg = typed_config("micro", [
        "preset=imagenet64", f"data.root={root}", "data.num_classes=3", "data.image_size=32",
        "data.store_size=32", "model.width_multiplier=0.0625", "trainer.batch_size=4",
        "trainer.global_batch=4", "trainer.epochs=1", "trainer.max_steps_per_epoch=2",
        "logger=none", "trainer.progress=false"])
    result = train(cfg, tmp_path / "run")
    assert result["status"] == "completed" and result["data_pipeline"] == "device"
    assert "pixel store" in capsys.readouterr().out


def test_the_throughput_of_each_input_path_is_measured(tmp_path, cache_dir):
    """What scripts/gpu_check.sh runs on a GPU (python -m ladder.data.throughput), on the CPU."""
    from ladder.data import throughput

    root = write_image_folder(tmp_path / "f", size=30)
    out = tmp_path / "rates.json"
    assert throughput.main([
        "logger=none", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
        "data.image_size=24", "data.store_size=24", "data.num_workers=0", "trainer.batch_size=4",
        "trainer.device=cpu", "--store", str(tmp_path / "store"), "--prepare", "--batches", "3",
        "--warmup", "1", "--json", str(out)]) == 0
    rates = json.loads(out.read_text())
    assert rates["prepare_images"] == 27 and rates["prepare_img_per_cpu_s"] > 0
    for path in throughput.PATHS:
        assert rates[f"{path}_img_per_s"] > 0
    assert rates["folder_loader_workers"] == 0 and rates["batch"] == 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_store_in_pinned_host_memory_gives_the_device_copys_batches(tiny, tmp_path,
                                                                                 capsys):
    root = write_image_folder(tmp_path / "f", train=8, size=30)
    store = _store(root, tmp_path / "store", shard_images=5)

    def loaders(*extra):
        got = build_loaders(**_args(_store_cfg(tiny, root, store, *extra), device="cuda"))
        got.train_sampler.set_epoch(1)
        return got, capsys.readouterr().out

    on_gpu, said = loaders("data.device_reserve_mb=0")  # auto: 0 GB + 0 GB reserve fits
    assert "free on cuda:0: the whole store in cuda:0 memory" in said
    assert on_gpu.train.images.device.type == "cuda"
    pinned, said = loaders("data.device_reserve_mb=100000000")  # auto: more than any card
    assert "pinned memory and copied asynchronously" in said
    assert not isinstance(pinned.train.images, torch.Tensor)
    for _ in range(2):  # two epochs: each pinned buffer reused after its copy is done
        for (x, y), (xg, yg) in zip(pinned.train, on_gpu.train):
            assert x.device.type == "cuda" and torch.equal(x, xg) and torch.equal(y, yg)
    val = [torch.cat([x for x, _ in got.val]) for got in (pinned, on_gpu)]
    assert torch.equal(*val)
