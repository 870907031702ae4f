"""The lr / wd schedules and parameter groups, as pure functions."""
from __future__ import annotations

import math

import pytest
import torch

from ladder.nets.config import ConfigError, NetConfig
from ladder.nets.model import LadderNet
from ladder.train.optim import Budget, build_optimizer, lr_at, make_budget, param_groups
from ladder.ladders.schema import RecipeConfig, TrainerConfig

MODERN = RecipeConfig(name="modern", optimizer="adamw", lr=4e-3, lr_ref_batch=4096, batch_size=4096,
                      weight_decay=0.05, decay_norm_and_bias=False, epochs=300, warmup_epochs=20,
                      schedule="cosine", min_lr=1e-6)
TORCHVISION = RecipeConfig()  # the schema's defaults are torchvision's recipe


def test_paper_budget_is_the_recipe():
    b = make_budget(MODERN, TrainerConfig(batch_size=128), world_size=32)
    assert (b.global_batch, b.per_device_batch, b.accum_steps) == (4096, 128, 1)
    assert b.lr == pytest.approx(4e-3) and b.epochs == 300 and b.warmup_epochs == 20


def test_accumulation_reaches_the_effective_batch():
    b = make_budget(MODERN, TrainerConfig(batch_size=128), world_size=8)
    assert b.accum_steps == 4 and b.global_batch == 4096  # the paper's 8 GPUs x 128 x 4
    one_gpu = make_budget(MODERN, TrainerConfig(batch_size=64), world_size=1)
    assert one_gpu.accum_steps == 64


def test_lr_scales_linearly_with_the_effective_batch():
    b = make_budget(MODERN, TrainerConfig(batch_size=128, global_batch=1024))
    assert b.lr == pytest.approx(4e-3 * 1024 / 4096)
    b = make_budget(TORCHVISION, TrainerConfig(batch_size=64, global_batch=512))
    assert b.lr == pytest.approx(0.2) and b.accum_steps == 8


def test_epoch_scale_keeps_the_recipes_proportions():
    t = TrainerConfig(epoch_scale=0.04)
    modern, tv = make_budget(MODERN, t), make_budget(TORCHVISION, t)
    assert (modern.epochs, tv.epochs) == (12, 4)  # 300 x 0.04, ceil(90 x 0.04)
    assert modern.warmup_epochs == pytest.approx(20 * 12 / 300)
    assert tv.step_epochs == pytest.approx(30 * 4 / 90)


def test_indivisible_batch_names_the_keys():
    with pytest.raises(ConfigError, match="trainer.global_batch=100 .*trainer.batch_size=64"):
        make_budget(MODERN, TrainerConfig(batch_size=64, global_batch=100))


def test_warmup_then_cosine_per_step():
    b = make_budget(MODERN, TrainerConfig(batch_size=128))
    spe = 10
    assert lr_at(0, spe, b, MODERN) == 0.0
    assert lr_at(100, spe, b, MODERN) == pytest.approx(4e-3 * 100 / 200)  # half-way through warmup
    assert lr_at(200, spe, b, MODERN) == pytest.approx(4e-3)  # peak right after warmup
    mid = 200 + (3000 - 200) // 2
    assert lr_at(mid, spe, b, MODERN) == pytest.approx(1e-6 + 0.5 * (4e-3 - 1e-6), rel=1e-3)
    assert lr_at(3000, spe, b, MODERN) == pytest.approx(1e-6)
    lrs = [lr_at(s, spe, b, MODERN) for s in range(200, 3000)]
    assert all(x >= y for x, y in zip(lrs, lrs[1:]))  # monotone decay after warmup


def test_step_decay_every_30_epochs():
    b = make_budget(TORCHVISION, TrainerConfig(batch_size=256))
    spe = 5
    assert lr_at(0, spe, b, TORCHVISION) == pytest.approx(0.1)
    assert lr_at(30 * spe - 1, spe, b, TORCHVISION) == pytest.approx(0.1)
    assert lr_at(30 * spe, spe, b, TORCHVISION) == pytest.approx(0.01)
    assert lr_at(60 * spe, spe, b, TORCHVISION) == pytest.approx(0.001)
    assert lr_at(90 * spe - 1, spe, b, TORCHVISION) == pytest.approx(0.001)


def _tiny(**kw) -> LadderNet:
    return LadderNet(NetConfig(width_multiplier=0.125, **kw))


def test_no_weight_decay_on_norms_biases_and_layer_scale():
    model = LadderNet(NetConfig(width_multiplier=0.125, norm="layernorm", layer_scale_init=1e-6,
                                spatial_position="first", block="inverted_bottleneck",
                                spatial_conv="depthwise", downsample="separate"))
    groups = param_groups(model, 0.05, decay_norm_and_bias=False)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    norm_params = {id(p) for m in model.modules() if isinstance(m, (torch.nn.LayerNorm,
                   torch.nn.BatchNorm2d)) for p in m.parameters()}
    assert norm_params
    for n, p in model.named_parameters():
        exempt = n.endswith(".bias") or id(p) in norm_params or n.endswith("gamma")
        assert (id(p) in decayed) == (not exempt), n
    assert sum(len(g["params"]) for g in groups) == len(names)


def test_torchvision_recipe_decays_everything():
    model = _tiny()
    groups = param_groups(model, 1e-4, decay_norm_and_bias=True)
    assert len(groups) == 1 and len(groups[0]["params"]) == len(list(model.parameters()))
    opt = build_optimizer(model, TORCHVISION, 0.1)
    assert isinstance(opt, torch.optim.SGD) and not opt.defaults["nesterov"]
    assert opt.defaults["momentum"] == 0.9


def test_adamw_betas():
    opt = build_optimizer(_tiny(), MODERN, 1e-3)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.9, 0.999)


@pytest.mark.parametrize("recipe,cls", [(MODERN, "AdamW"), (TORCHVISION, "SGD")])
def test_fused_kernels_on_cuda_and_the_default_elsewhere(monkeypatch, recipe, cls):
    built = []

    class Recorder:
        def __init__(self, params, **kwargs):
            built.append(kwargs)

    monkeypatch.setattr(torch.optim, cls, Recorder)
    build_optimizer(_tiny(), recipe, 0.1, device=torch.device("cuda", 0))
    build_optimizer(_tiny(), recipe, 0.1)  # the parameters' device: the CPU
    assert built[0]["fused"] is True and "fused" not in built[1]
    monkeypatch.undo()
    opt = build_optimizer(_tiny(), recipe, 0.1)  # a real one on the CPU: not fused
    assert not opt.defaults["fused"]


@pytest.mark.parametrize("kw,key", [
    ({"lr": -0.1}, "recipe.lr"), ({"batch_size": 0}, "recipe.batch_size"),
    ({"optimizer": "lamb"}, "recipe.optimizer"), ({"schedule": "poly"}, "recipe.schedule"),
])
def test_invalid_recipe_values_name_the_key(kw, key):
    with pytest.raises(ConfigError, match=key):
        RecipeConfig(**kw)


def test_invalid_trainer_values_name_the_key():
    with pytest.raises(ConfigError, match="trainer.batch_size"):
        TrainerConfig(batch_size=0)
    with pytest.raises(ConfigError, match="trainer.precision"):
        TrainerConfig(precision="fp8")


def test_budget_dataclass_is_frozen():
    b = Budget(16, 8, 2, 0.1, 1, 0.0, 1.0)
    with pytest.raises(Exception):
        b.lr = 1.0  # type: ignore[misc]
    assert math.isclose(b.lr, 0.1)


def test_a_preset_can_budget_each_recipe_apart():
    t = TrainerConfig(batch_size=128, global_batch=128, lr_scaling="none", epochs=8,
                      by_recipe={"torchvision": {"epochs": 24, "lr_scaling": "linear"}})
    modern, tv = make_budget(MODERN, t), make_budget(TORCHVISION, t)
    assert (modern.epochs, modern.lr) == (8, pytest.approx(4e-3))
    assert (tv.epochs, tv.lr) == (24, pytest.approx(0.1 * 128 / 256))
    assert tv.step_epochs == pytest.approx(8)  # step decay at 1/3 and 2/3 of its own run


@pytest.mark.parametrize("by_recipe, named", [
    ({"torchvision": {"momentum": 0.5}}, "trainer.by_recipe.torchvision"),
    ({"torchvision": {"lr_scaling": "cubic"}}, "trainer.by_recipe.torchvision.lr_scaling"),
    ({"modern": {"epochs": 0}}, "trainer.by_recipe.modern.epochs"),
])
def test_bad_by_recipe_entries_name_the_key(by_recipe, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        TrainerConfig(by_recipe=by_recipe)


def test_proxy_init_switches_apply_to_every_rung_alike():
    convnext = dict(width_multiplier=0.25, norm="layernorm", layer_scale_init=1e-6,
                    weight_init="trunc_normal", block="inverted_bottleneck")
    paper = LadderNet(NetConfig(**convnext))
    proxy = LadderNet(NetConfig(**convnext, weight_init_override="kaiming"))
    w_paper = paper.stages[0].blocks[0].layers[0].conv.weight
    w_proxy = proxy.stages[0].blocks[0].layers[0].conv.weight
    assert w_paper.std() < 0.03 < w_proxy.std()  # trunc-normal 0.02 vs kaiming fan-out
    resnet = LadderNet(NetConfig(width_multiplier=0.25, zero_init_residual=True))
    last_norms = [b.layers[-1].norm.weight for s in resnet.stages for b in s.blocks]
    assert all(bool((w == 0).all()) for w in last_norms)
    # blocks with layer scale keep their norms: the layer scale closes their branches already
    gated = LadderNet(NetConfig(width_multiplier=0.25, layer_scale_init=1e-6, zero_init_residual=True))
    assert all(bool((b.layers[-1].norm.weight == 1).all()) for s in gated.stages for b in s.blocks)
