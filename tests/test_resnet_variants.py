"""The "Bag of Tricks" ResNet-50 variants (He et al., CVPR 2019, Section 4.1 / Figure 2) are
points of the ladder's space: ``stride_layer`` (ResNet-50 vs ResNet-50-B), the deep stem
(ResNet-C) and the average-pooled shortcut (ResNet-D). The C and D variants are timm's
``resnet50c`` / ``resnet50d`` exactly (same parameters, same eval outputs), and the defaults
are still torchvision's / timm's ``resnet50``, key for key."""
from __future__ import annotations

import math

import pytest
import timm
import torch
import torchvision

from ladder.nets.config import ConfigError, NetConfig
from ladder.nets.convert import _resnet_key, load_timm_resnet, load_torchvision_resnet50
from ladder.nets.model import (ConvNormAct, LadderNet, PointwiseNormAct, PooledProjection,
                          count_gmacs, count_params)

VARIANTS = {  # timm model -> the NetConfig fields that build it
    "resnet50": {},
    "resnet50c": dict(stem="deep"),
    "resnet50d": dict(stem="deep", shortcut_pool=True),
}


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial values for every parameter and BN statistic (as tests/test_ladder.py does),
    so equal outputs mean equal networks."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g) if "weight" in name
                        else 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))


def _downsampling_blocks(model: LadderNet) -> list:
    return [stage.blocks[0] for stage in list(model.stages)[1:]]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_is_timm(name):
    # 72 px: stage maps of 18, 9, 5, 3, so the pooled shortcuts meet odd sizes (ceil_mode and
    # count_include_pad matter). Measured (fp32, batch 2): max abs diffs 3.2e-6
    # (resnet50), 1.2e-6 (resnet50c), 1.4e-6 (resnet50d), outputs up to 3.6, 2.1, 2.1.
    torch.manual_seed(0)
    reference = timm.create_model(name, num_classes=10)
    _randomize(reference, 0)
    ours = LadderNet(NetConfig(num_classes=10, **VARIANTS[name]))
    assert count_params(ours) == count_params(reference)
    load_timm_resnet(ours, reference.state_dict())
    x = torch.randn(2, 3, 72, 72, generator=torch.Generator().manual_seed(1))
    reference.eval(), ours.eval()
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert expected.abs().max() > 1e-2  # not two near-zero tensors
    assert (expected - got).abs().max().item() <= 1e-4


def test_converter_refuses_variants_with_the_same_keys():
    """B/C/D and the stride position share keys and shapes: only the converter's check keeps a
    load from computing another network."""
    with pytest.raises(ValueError, match="shortcut_pool"):
        load_timm_resnet(LadderNet(NetConfig(stem="deep", num_classes=10)),
                         timm.create_model("resnet50d", num_classes=10).state_dict())
    with pytest.raises(ValueError, match="shortcut_pool"):
        load_timm_resnet(LadderNet(NetConfig(stem="deep", shortcut_pool=True, num_classes=10)),
                         timm.create_model("resnet50c", num_classes=10).state_dict())
    with pytest.raises(ValueError, match="stride_layer"):
        load_torchvision_resnet50(LadderNet(NetConfig(stride_layer="first")),
                                  torchvision.models.resnet50().state_dict())
    with pytest.raises(ValueError, match="does not match|shape"):  # deep stem vs 7x7 stem
        load_timm_resnet(LadderNet(NetConfig(num_classes=10)),
                         timm.create_model("resnet50c", num_classes=10).state_dict())


def test_default_keeps_its_modules_and_keys():
    reference = torchvision.models.resnet50()
    ours = LadderNet(NetConfig())
    assert {_resnet_key(k) for k in reference.state_dict()} == set(ours.state_dict())
    assert count_params(ours) == count_params(reference) == 25_557_032
    assert not any(isinstance(m, PooledProjection) for m in ours.modules())
    assert [type(m) for m in ours.stem] == [torch.nn.Conv2d, torch.nn.BatchNorm2d,
                                           torch.nn.ReLU, torch.nn.MaxPool2d]
    for block in _downsampling_blocks(ours):
        assert block.layers[0].conv.stride == (1, 1) and block.layers[1].conv.stride == (2, 2)
        assert type(block.shortcut) is ConvNormAct and block.shortcut.conv.stride == (2, 2)
    assert type(ours.stages[0].blocks[0].shortcut) is PointwiseNormAct


def test_stride_on_the_first_layer():
    default, first = NetConfig(), NetConfig(stride_layer="first")
    model = LadderNet(NetConfig(stride_layer="first", width_multiplier=0.25, num_classes=10))
    for block in _downsampling_blocks(model):
        assert block.layers[0].conv.stride == (2, 2)  # the first 1x1 conv
        assert block.layers[1].conv.stride == (1, 1)  # the 3x3 conv
        assert block.shortcut.conv.stride == (2, 2)
    assert all(b.layers[0].conv.stride == (1, 1) for s in model.stages for b in list(s.blocks)[1:])
    reference = LadderNet(NetConfig(width_multiplier=0.25, num_classes=10))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert [f.shape for f in model.forward_intermediates(x, intermediates_only=True)] == \
            [f.shape for f in reference.forward_intermediates(x, intermediates_only=True)]
        assert model(x).shape == (2, 10)
    with torch.device("meta"):
        nets = LadderNet(default), LadderNet(first)
    assert count_params(nets[0]) == count_params(nets[1])
    # Measured at 224 px: 4.089 GMACs (default, ResNet-50-B) vs 3.858 (stride on the 1x1,
    # ResNet-50); the paper's Table 5: 4.13 vs 3.86 GFLOPs.
    gmacs = count_gmacs(nets[0], 224), count_gmacs(nets[1], 224)
    assert gmacs[1] < gmacs[0]
    assert gmacs[0] == pytest.approx(4.089, abs=0.001)
    assert gmacs[1] == pytest.approx(3.858, abs=0.001)


def test_deep_and_pooled_counts_match_timm_at_paper_scale():
    # Measured at 224 px: resnet50c and resnet50d both 4.329 GMACs (the pool is no conv) and
    # 25,576,264 parameters; the paper's Table 5: 4.34 (C) and 4.35 (D) GFLOPs.
    for name in ("resnet50c", "resnet50d"):
        with torch.device("meta"):
            ours, reference = LadderNet(NetConfig(**VARIANTS[name])), timm.create_model(name)
        assert count_params(ours) == count_params(reference) == 25_576_264
        assert count_gmacs(ours, 224) == pytest.approx(count_gmacs(reference, 224), abs=1e-6)
        assert count_gmacs(ours, 224) == pytest.approx(4.329, abs=0.001)


@pytest.mark.parametrize("stem_stride", [4, 2, 1])
def test_deep_stem_strides(stem_stride):
    model = LadderNet(NetConfig(stem="deep", stem_stride=stem_stride, width_multiplier=0.25,
                                num_classes=10)).eval()
    convs = [m for m in model.stem if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(1 if stem_stride == 1 else 2,) * 2, (1, 1), (1, 1)]
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in model.stem) == (stem_stride == 4)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.stem(x).shape == (2, 16, 32 // stem_stride, 32 // stem_stride)
        features = model.forward_intermediates(x, intermediates_only=True)
    assert [f.shape[-1] for f in features] == [32 // stem_stride // 2 ** i for i in range(4)]


def test_deep_stem_and_pooled_shortcut_at_quarter_width():
    model = LadderNet(NetConfig(stem="deep", shortcut_pool=True, width_multiplier=0.25,
                                num_classes=10)).eval()
    convs = [m for m in model.stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 8), (8, 8), (8, 16)]
    assert all(c.bias is None for c in convs)  # BatchNorm follows each
    assert isinstance(model.stages[0].blocks[0].shortcut, PointwiseNormAct)
    assert not isinstance(model.stages[0].blocks[0].shortcut, PooledProjection)  # stride 1
    for block in _downsampling_blocks(model):
        assert isinstance(block.shortcut, PooledProjection)
        assert block.shortcut.conv.stride == (1, 1)
        pool = block.shortcut.pool  # timm's downsample_avg pool
        assert (pool.kernel_size, pool.stride, pool.padding) == (2, 2, 0)
        assert pool.ceil_mode and not pool.count_include_pad
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        shapes = [f.shape for f in model.forward_intermediates(x, intermediates_only=True)]
        assert shapes == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]
        assert model(x).shape == (2, 10)
        # An odd size: ceil_mode pools the last row and column alone (timm's downsample_avg).
        assert model(torch.randn(1, 3, 50, 50)).shape == (1, 10)


def test_variants_trace_and_script():
    """torch.fx and TorchScript, as tests/test_timm_contract.py checks for the rungs."""
    model = LadderNet(NetConfig(stem="deep", shortcut_pool=True, stride_layer="first",
                                width_multiplier=0.0625, num_classes=10)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        assert torch.equal(torch.fx.symbolic_trace(model)(x), expected)
        assert torch.allclose(torch.jit.script(model)(x), expected, atol=1e-5)


@pytest.mark.parametrize("fields,key", [
    (dict(stride_layer="middle"), "model.stride_layer"),
    (dict(stem="deeper"), "model.stem"),
    (dict(stem="deep", stem_width=0), "model.stem_width"),
    (dict(stem_width=2.5), "model.stem_width"),
    (dict(shortcut_pool="yes"), "model.shortcut_pool"),
    (dict(shortcut_pool=True, downsample="separate"), "model.shortcut_pool"),
])
def test_bad_values_name_the_field(fields, key):
    with pytest.raises(ConfigError, match=key) as err:
        NetConfig(**fields)
    if "downsample" in fields:
        assert "model.downsample='separate'" in str(err.value)
