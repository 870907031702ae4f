"""Every ``ladder_<rung>`` keeps timm's model contract: a pretrained config that timm's data
helpers read, ``num_classes`` / ``num_features`` / ``feature_info``, ``features_only``,
``forward_intermediates``, ``reset_classifier``, grad checkpointing, torch.fx and TorchScript,
and the keyword arguments timm's train.py passes. Tiny widths and 64 px inputs keep it fast;
timm's own tests/test_models.py is run against the ladder from outside the repo (README)."""
from __future__ import annotations

import pytest
import timm
import torch
from omegaconf import OmegaConf
from timm.models import get_pretrained_cfg

from ladder.ladders import rungs
from ladder.ladders.compose import compose_config
from ladder.nets.model import LadderNet
from ladder.ladders.registry import rung_recipe

NAMES = rungs.valid_names()
ENDS_AND_MIDDLE = ["resnet50", "width", "micro"]
TINY = dict(width_multiplier=0.0625)  # paper-scale stem and stages, 1/16 of the widths
SIZE = 64


def _tiny(name: str, **kwargs) -> torch.nn.Module:
    return timm.create_model(f"ladder_{name}", **{**TINY, **kwargs}).eval()


def _x(batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_cfg_is_the_rungs_recipe_at_paper_scale(name):
    """The registered config carries the data settings of the recipe the rung trains with
    (read from the YAML files at import), checked against the Hydra-composed config."""
    composed = compose_config(name, ["preset=imagenet", "data.root=unused"])
    cfg = get_pretrained_cfg(f"ladder_{name}").to_dict()
    assert rung_recipe(rungs.resolve(name).name) == composed.recipe.name
    size = composed.data.image_size
    reduction = composed.model.stem_stride * 2 ** (len(composed.model.depths) - 1)
    assert cfg["input_size"] == (3, size, size)
    assert cfg["pool_size"] == (size // reduction, size // reduction)
    assert cfg["interpolation"] == composed.recipe.interpolation
    assert cfg["crop_pct"] == composed.recipe.eval_crop_ratio
    assert cfg["mean"] == timm.data.IMAGENET_DEFAULT_MEAN
    assert cfg["std"] == timm.data.IMAGENET_DEFAULT_STD
    assert (cfg["num_classes"], cfg["first_conv"], cfg["classifier"]) == (1000, "stem.0", "fc")
    assert cfg["url"] == "" and not get_pretrained_cfg(f"ladder_{name}").has_weights


def test_the_two_recipes_differ_where_the_paper_does():
    cfg = {n: get_pretrained_cfg(f"ladder_{n}") for n in ("resnet50", "recipe", "micro")}
    assert cfg["resnet50"].interpolation == "bilinear"  # torchvision's recipe
    assert cfg["recipe"].interpolation == cfg["micro"].interpolation == "bicubic"


@pytest.mark.parametrize("name", NAMES)
def test_model_contract(name):
    model = _tiny(name, num_classes=5)
    state = model.state_dict()
    assert isinstance(model, LadderNet)
    assert model.pretrained_cfg["architecture"] == f"ladder_{name}"
    assert f"{model.pretrained_cfg['first_conv']}.weight" in state
    assert f"{model.pretrained_cfg['classifier']}.weight" in state
    assert model.num_classes == 5 and model.get_classifier().out_features == 5
    assert model.num_features == model.head_hidden_size == model.feature_info[-1]["num_chs"]
    assert len(model.feature_info) == 4

    x = _x()
    final, feats = model.forward_intermediates(x)
    assert torch.equal(final, model.forward_features(x))
    for info, feat in zip(model.feature_info, feats):
        assert feat.shape[1:] == (info["num_chs"], SIZE // info["reduction"],
                                  SIZE // info["reduction"])
    assert model.forward_intermediates(x, indices=2, intermediates_only=True)[0].shape == \
        feats[2].shape
    pre_logits = model.forward_head(final, pre_logits=True)
    assert pre_logits.shape == (1, model.head_hidden_size)
    assert model(x).shape == (1, 5)

    model.reset_classifier(0)
    assert model.num_classes == 0 and torch.equal(model(x), pre_logits)
    model.reset_classifier(0, "")
    assert model(x).shape == final.shape
    model.reset_classifier(7, "avg")
    assert model(x).shape == (1, 7)


@pytest.mark.parametrize("name", NAMES)
def test_features_only(name):
    torch.manual_seed(0)
    model = _tiny(name, features_only=True)
    feats = model(_x())
    assert [f.shape[1] for f in feats] == model.feature_info.channels()
    assert [SIZE // f.shape[-1] for f in feats] == model.feature_info.reduction()
    # the same taps as forward_intermediates of the full network (same seed, same weights)
    torch.manual_seed(0)
    full = _tiny(name)
    for got, expected in zip(feats, full.forward_intermediates(_x(), intermediates_only=True)):
        assert torch.allclose(got, expected)


@pytest.mark.parametrize("feature_cls", ["list", "getter", "fx", "hook"])
def test_features_only_variants_and_out_indices(feature_cls):
    model = _tiny("micro", features_only=True, out_indices=(1, 3), feature_cls=feature_cls)
    feats = model(_x())
    feats = list(feats.values()) if isinstance(feats, dict) else feats
    assert [f.shape[1] for f in feats] == model.feature_info.channels() == [12, 48]
    assert model.feature_info.reduction() == [8, 32]


def test_classifier_free_and_pool_free_build():
    model = _tiny("width", num_classes=0, global_pool="")
    assert model.num_classes == 0 and model(_x()).dim() == 4
    with pytest.raises(ValueError, match="needs num_classes=0"):
        _tiny("width", global_pool="")
    with pytest.raises(ValueError, match="global_pool='catavgmax' is not valid"):
        _tiny("width", global_pool="catavgmax")


@pytest.mark.parametrize("name", ENDS_AND_MIDDLE)
def test_grad_checkpointing_keeps_outputs_and_gradients(name):
    torch.manual_seed(0)
    model = _tiny(name, num_classes=3)
    x = _x(2)
    plain = model(x)
    plain.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.set_grad_checkpointing()
    assert all(stage.grad_checkpointing for stage in model.stages)
    checkpointed = model(x)
    checkpointed.sum().backward()
    assert torch.allclose(plain, checkpointed, atol=1e-6)
    for before, p in zip(grads, model.parameters()):
        assert torch.allclose(before, p.grad, atol=1e-5)


@pytest.mark.parametrize("name", ENDS_AND_MIDDLE)
def test_torch_fx_and_torchscript(name):
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    from timm.models import get_notrace_functions, get_notrace_modules

    model = _tiny(name)
    x = _x()
    with torch.no_grad():
        expected = model(x)
        tracer_kwargs = dict(leaf_modules=get_notrace_modules(),
                             autowrap_functions=get_notrace_functions())
        _, eval_nodes = get_graph_node_names(model, tracer_kwargs=tracer_kwargs)
        traced = create_feature_extractor(model, return_nodes=[eval_nodes[-1]],
                                          tracer_kwargs=tracer_kwargs)
        assert torch.equal(next(iter(traced(x).values())), expected)
        assert torch.allclose(torch.jit.script(traced)(x)[eval_nodes[-1]], expected, atol=1e-5)
        assert torch.allclose(torch.jit.script(model)(x), expected, atol=1e-5)


def test_timm_train_script_arguments():
    """What timm's train.py does with a model (its create_model call, --grad-checkpointing,
    --layer-decay, resolve_data_config), without the script."""
    from timm.optim import create_optimizer_v2

    model = timm.create_model("ladder_micro", pretrained=False, in_chans=3, num_classes=10,
                              drop_rate=0.0, drop_path_rate=0.1, global_pool="avg",
                              scriptable=False, checkpoint_path=None,
                              width_multiplier=0.0625, stem_stride=2)
    assert model.num_classes == 10 and model.cfg.drop_path_rate == 0.1
    model.set_grad_checkpointing(enable=True)
    data = timm.data.resolve_data_config({"input_size": (3, 32, 32)}, model=model)
    assert data["input_size"] == (3, 32, 32) and data["interpolation"] == "bicubic"
    assert model.pretrained_cfg["pool_size"] == (14, 14)  # stem stride 2: 224 / 16
    opt = create_optimizer_v2(model, "adamw", lr=1e-3, layer_decay=0.8)
    grouped = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert grouped == sum(p.numel() for p in model.parameters())
    assert len({g["lr_scale"] for g in opt.param_groups}) > 4  # depth-wise lr scales
    loss = model.train()(torch.randn(2, 3, 32, 32)).logsumexp(1).mean()
    loss.backward()
    opt.step()


def test_unknown_arguments_and_pretrained_fail_clearly():
    with pytest.raises(TypeError, match="no argument 'drop_block_rate'.*allowed: the NetConfig"):
        timm.create_model("ladder_width", drop_block_rate=0.1)
    with pytest.raises(ValueError, match="no pretrained weights.*train.py \\+rung=width"):
        timm.create_model("ladder_width", pretrained=True)


def test_overlay_and_data_config_reach_the_model():
    model = _tiny("resnet50", pretrained_cfg_overlay=dict(crop_pct=1.0))
    data = timm.data.resolve_data_config(model=model)
    assert data["crop_pct"] == 1.0 and data["interpolation"] == "bilinear"
    assert data["input_size"] == (3, 224, 224)


def test_composed_net_config_is_what_timm_builds():
    for name in ENDS_AND_MIDDLE:
        composed = compose_config(name, ["preset=imagenet", "data.root=unused"])
        model = timm.create_model(f"ladder_{name}", **TINY)
        fields = OmegaConf.to_container(composed.model, resolve=True)
        fields.update(TINY)
        built = model.cfg.to_dict()
        assert {k: built[k] for k in fields} == fields
