"""The channels-last pointwise layers compute exactly the 1x1 conv -> norm -> activation they
replace, with the same parameters (so state dicts, converters and checkpoints are unchanged)."""
from __future__ import annotations

import pytest
import torch

from ladder.nets.model import ConvNormAct, PointwiseNormAct


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("norm,act", [(None, None), (None, "gelu"), ("batchnorm", "relu"),
                                      ("batchnorm", None), ("layernorm", "gelu")])
def test_pointwise_layer_is_the_1x1_conv_layer(norm, act, channels_last):
    torch.manual_seed(0)
    fast = PointwiseNormAct(8, 16, norm, act).train()
    plain = ConvNormAct(8, 16, 1, 1, 1, norm, act).train()
    with torch.no_grad():
        for p in fast.parameters():
            p.normal_()
    assert {k: v.shape for k, v in fast.state_dict().items()} == \
        {k: v.shape for k, v in plain.state_dict().items()}
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(4, 8, 6, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x_fast, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_fast, out_plain = fast(x_fast), plain(x_plain)
    assert out_fast.shape == out_plain.shape
    assert torch.allclose(out_fast, out_plain, atol=1e-5)
    out_fast.square().sum().backward()
    out_plain.square().sum().backward()
    assert torch.allclose(x_fast.grad, x_plain.grad, atol=1e-4)
    for (name, a), b in zip(fast.named_parameters(), plain.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-3, rtol=1e-4), name
    for (name, a), b in zip(fast.named_buffers(), plain.buffers()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name  # BatchNorm statistics
