"""data.holdout: a class-balanced, seed-fixed part of the training images kept out of training
and evaluated beside the untouched validation set, on folders the tests write."""
from __future__ import annotations

import pytest
import torch

from conftest import write_image_folder
from ladder.data.loaders import DataError, build_loaders
from ladder.data.split import holdout_indices
from ladder.nets.config import ConfigError

CLASSES = ["a", "b", "c"]


def _loaders(cfg, batch=4, **kw):
    return build_loaders(cfg.data, cfg.recipe, batch, 1, cfg.seed, **kw)


def _folder_cfg(tiny, root, *extra):
    return tiny("micro", "data=imagefolder", f"data.root={root}", "data.num_classes=3",
                "data.image_size=24", *extra)


def test_the_split_is_class_balanced_and_fixed_by_its_own_seed():
    labels = [0] * 10 + [1] * 20 + [2] * 30
    kept, held = holdout_indices(labels, 0.2, seed=0, classes=CLASSES)
    assert sorted(kept + held) == list(range(60)) and not set(kept) & set(held)
    assert [sum(labels[i] == c for i in held) for c in range(3)] == [2, 4, 6]
    assert holdout_indices(labels, 0.2, 0, CLASSES) == (kept, held)  # the same draw every time
    assert holdout_indices(labels, 0.2, 1, CLASSES)[1] != held  # another split seed: another split


@pytest.mark.parametrize("fraction, words", [(0.0, "in (0, 1)"), (1.0, "in (0, 1)"),
                                             (0.01, "class 'a'"), (0.99, "class 'a'")])
def test_a_split_that_leaves_a_side_empty_is_refused_in_one_sentence(fraction, words):
    with pytest.raises(DataError, match="data.holdout") as err:
        holdout_indices([0] * 10 + [1] * 10 + [2] * 10, fraction, 0, CLASSES)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("value", ["1.5", "-0.1", "1.0"])
def test_bad_holdout_values_fail_when_the_config_is_read(tiny, value):
    with pytest.raises(ConfigError, match=rf"data.holdout={value}.*fraction in \[0, 1\)"):
        tiny("micro", f"data.holdout={value}")


def test_synthetic_data_has_nothing_to_hold_out(tiny):
    with pytest.raises(ConfigError, match="data.holdout needs an image folder"):
        tiny("micro", "data=synthetic", "data.holdout=0.2")


@pytest.mark.parametrize("pipeline", ["device", "loader"])
def test_held_out_images_leave_training_and_are_evaluated_as_validation_is(
        tiny, tmp_path, cache_dir, pipeline):
    root = write_image_folder(tmp_path / "f", train=10, size=30)
    plain = _loaders(_folder_cfg(tiny, root, f"data.pipeline={pipeline}"))
    cfg = _folder_cfg(tiny, root, f"data.pipeline={pipeline}", "data.holdout=0.2")
    split = _loaders(cfg)
    assert plain.holdout is None and plain.split is None
    assert split.split == {"fraction": 0.2, "seed": 0, "train_images": 24, "holdout_images": 6}
    assert split.train_size == 24 and split.val_size == plain.val_size == 9  # val untouched
    assert split.train_sampler.size == 24
    # the record is part of the data's identity; no split: the id runs always had
    ident = split.identity("imagefolder")
    assert ident["holdout"] == split.split and ident["id"] != plain.identity("imagefolder")["id"]
    assert "holdout" not in plain.identity("imagefolder")
    other = _loaders(_folder_cfg(tiny, root, f"data.pipeline={pipeline}", "data.holdout=0.2",
                                 "data.holdout_seed=1"))
    assert other.identity("imagefolder")["id"] != ident["id"]
    # the held-out images are scored like validation images: same transform, whole images
    held = [(x, y) for x, y in split.holdout]
    labels = torch.cat([y for _, y in held])
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert held[0][0].shape[1:] == plain.val.__iter__().__next__()[0].shape[1:]


def test_held_out_files_are_disjoint_from_the_training_files(tiny, tmp_path, cache_dir):
    from ladder.data.loaders import ImageFolderDataset
    from ladder.data.split import split_holdout

    root = write_image_folder(tmp_path / "f", train=10, size=30)
    train = ImageFolderDataset(root / "train", CLASSES, transform=None)
    hold = ImageFolderDataset(root / "train", CLASSES, transform=None)
    everything = list(train.samples)
    record = split_holdout(train, hold, 0.3, seed=4)
    assert not {p for p, _ in train.samples} & {p for p, _ in hold.samples}
    assert sorted(train.samples + hold.samples) == sorted(everything)
    assert record == {"fraction": 0.3, "seed": 4, "train_images": 21, "holdout_images": 9}
    with pytest.raises(DataError, match="list different files"):
        split_holdout(ImageFolderDataset(root / "train", CLASSES, None),
                      ImageFolderDataset(root / "val", CLASSES, None), 0.3, 0)


def test_a_run_scores_the_held_out_images_and_records_the_split(tiny, tmp_path, cache_dir):
    import json

    from ladder.report.load import load_results
    from ladder.train.trainer import train

    root = write_image_folder(tmp_path / "f", train=10, size=30)
    cfg = _folder_cfg(tiny, root, "data.holdout=0.2", "data.holdout_seed=3")
    train(cfg, output_dir=tmp_path / "run")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["data"]["holdout"] == {"fraction": 0.2, "seed": 3, "train_images": 24,
                                         "holdout_images": 6}
    assert result["data"]["train_images"] == 24 and result["data"]["val_images"] == 9
    held = result["metrics"]["holdout_top1"]
    assert held is not None and held in {100 * k / 6 for k in range(7)}  # 6 held-out images
    assert all("holdout_top1" in row and "holdout_loss" in row for row in result["history"])
    run = load_results(tmp_path)[0]  # the report reads it as a metric of its own
    assert run.metrics["holdout_top1"] == held
    plain = _folder_cfg(tiny, root)
    train(plain, output_dir=tmp_path / "plain")
    no_split = json.loads((tmp_path / "plain" / "result.json").read_text())
    assert "holdout_top1" not in no_split["metrics"] and "holdout" not in no_split["data"]

