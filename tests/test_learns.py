"""The ladder's two ends learn on a reduced demo budget: the demo preset's proxy rules (kaiming
init for every rung, the 300-epoch augmentation off, AdamW 4e-3 as given, SGD at the linear
rule, zero-init residual branches for resnet50) at an eighth of the width, 2,000 images and
10 epochs for the modern recipe and 24 for the torchvision recipe's step decay. Chance is 10%; each end must reach 2.5x chance (the report's
floor), which a budget that leaves a rung at chance (as the old demo budget did) fails."""
from __future__ import annotations

import pytest

from ladder.trainer import train

REDUCED = ["model.width_multiplier=0.125", "data.train_per_class=200", "data.val_per_class=40",
           "trainer.batch_size=64", "trainer.global_batch=64", "trainer.epochs=10",
           "trainer.by_recipe.torchvision.epochs=24", "data.num_workers=0"]


@pytest.mark.slow
@pytest.mark.parametrize("rung", ["resnet50", "micro"])
def test_both_ends_learn_on_a_reduced_demo_budget(rung, cache_dir, tmp_path):
    from omegaconf import OmegaConf

    from ladder.compose import compose_config

    cfg = OmegaConf.to_object(compose_config(rung, ["logger=none", "trainer.progress=false",
                                                    f"data.root={cache_dir}", *REDUCED]))
    result = train(cfg, tmp_path)
    top1 = result["metrics"]["top1"]
    assert top1 >= 25.0, f"{rung} ended at {top1:.1f}% top-1 (chance 10%): it did not learn"
