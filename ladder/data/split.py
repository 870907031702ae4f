"""A held-out part of the training images (``data.holdout=<fraction>``): class-balanced, fixed
by its own seed (``data.holdout_seed``, not the run's), so every rung and every run seed of a
study trains on the same images and is scored on the same held-out ones.

Proxy settings are chosen on this split, never on the validation set, which stays untouched and
is still reported. The split is part of the data's identity (``result.json``'s ``data``), so
runs on two different splits never share a report section.
"""
from __future__ import annotations

import numpy as np

from ladder.data.common import DataError


def holdout_indices(labels: list[int], fraction: float, seed: int,
                    classes: list[str]) -> tuple[list[int], list[int]]:
    """(kept, held out) positions into ``labels``: from each class, ``round(fraction * n)`` of
    its ``n`` images, drawn by a generator seeded with ``seed`` alone; both lists sorted.

    Every class keeps at least one image on each side, else one sentence names the class."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"data.holdout={fraction!r} is not valid; allowed values: a fraction "
                        f"in (0, 1) of each class's training images")
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    held: list[int] = []
    for label, name in enumerate(classes):
        members = np.flatnonzero(labels_arr == label)
        n_hold = int(round(fraction * len(members)))
        if n_hold == 0 or n_hold == len(members):
            raise DataError(
                f"data.holdout={fraction} holds out {n_hold} of class {name!r}'s "
                f"{len(members)} training images; every class needs at least one image on "
                f"each side: choose a fraction between {1 / max(1, len(members)):.3g} and "
                f"{1 - 1 / max(1, len(members)):.3g}")
        held.extend(int(i) for i in rng.permutation(members)[:n_hold])
    held_set = set(held)
    kept = [i for i in range(len(labels)) if i not in held_set]
    return kept, sorted(held)


def split_holdout(train, holdout, fraction: float, seed: int) -> dict:
    """Restrict two views of one training folder in place: ``train`` (the training transform)
    to the kept images and ``holdout`` (the evaluation transform) to the held-out ones. Both
    are :class:`ladder.data.loaders.ImageFolderDataset` over the same files. Returns the
    split's record for ``result.json``."""
    if [s for s in train.samples] != [s for s in holdout.samples]:
        raise DataError("the held-out view and the training view list different files")
    kept, held = holdout_indices([label for _, label in train.samples], fraction, seed,
                                 train.classes)
    samples = train.samples
    train.samples = [samples[i] for i in kept]
    holdout.samples = [samples[i] for i in held]
    return {"fraction": fraction, "seed": seed, "train_images": len(kept),
            "holdout_images": len(held)}
