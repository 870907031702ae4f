"""The ladder's two ends learn on a (reduced) demo budget: the demo preset as it is (its data,
batch 128, kaiming init for every rung, the 300-epoch augmentation off, AdamW 4e-3 as given,
SGD 0.05 by the linear rule, zero-init residual branches for resnet50, 24 torchvision epochs),
with 40 val images per class; micro at an eighth of the width and 10 epochs, resnet50 at the
demo's own quarter width.

Each end must reach the report's floor, 2.5x chance (25% on 10 classes), which a budget that
leaves a rung at chance (as the old demo budget did: 10.0 for both ends) fails. Measured on
the 2-core dev machine, top-1 %: micro at x0.125, 49 (seed 0, 200 train images per class);
resnet50 at x0.25 (the demo, results/demo), 43.0 / 41.5 (seeds 0 / 1). resnet50 at x0.125 is
not a stable test: over seeds and machines the torchvision recipe there either takes off
before its first lr decay (epoch 8) or stays near 16%: 15.8 / 36.8 / 29.3 / 16.3 at 200 images
per class, 28.0 / 30.3 / 28.8 at 260, 22.5 on the CI machine at batch 64.
"""
from __future__ import annotations

import pytest

from ladder.train.trainer import train

REDUCED = {"resnet50": ["data.val_per_class=40"],
           "micro": ["model.width_multiplier=0.125", "data.val_per_class=40", "trainer.epochs=10"]}


@pytest.mark.slow
@pytest.mark.parametrize("rung", ["resnet50", "micro"])
def test_both_ends_learn_on_a_reduced_demo_budget(rung, cache_dir, tmp_path):
    from omegaconf import OmegaConf

    from ladder.ladders.compose import compose_config

    cfg = OmegaConf.to_object(compose_config(rung, ["logger=none", "trainer.progress=false",
                                                    f"data.root={cache_dir}", "data.num_workers=0",
                                                    *REDUCED[rung]]))
    result = train(cfg, tmp_path)
    top1 = result["metrics"]["top1"]
    assert top1 >= 25.0, f"{rung} ended at {top1:.1f}% top-1 (chance 10%): it did not learn"
