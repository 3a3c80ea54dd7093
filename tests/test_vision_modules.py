"""Contract tests for every module in the vision attention registry (``vision.list_attention()``).

Each registered module maps (B, C, H, W) to the same shape for any H, W (non-square, 1x1, batch 1), trains
(gradients reach every parameter), runs under bf16 autocast on the CPU, and exposes its attention map through
the core's ``capture_attention``. Small sizes keep the whole file fast on two cores.
"""

from __future__ import annotations

import pytest
import torch
from _vision_runs import randomize_zero_parameters
from torch import nn

from seq2seq_attn.attention import capture_attention
from vision import create_attention, list_attention

NAMES = list_attention()
CHANNELS = 16


def build(name: str, channels: int = CHANNELS) -> nn.Module:
    """The module with its zero-initialised parameters made random: output scales such as Non-local's last BN
    or DA's gamma start at zero so that a block starts as the identity, which would hide the attention path
    from these tests (no effect on the output, no gradient to the parameters before them)."""
    torch.manual_seed(0)
    return randomize_zero_parameters(create_attention(name, channels))


def inputs(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, CHANNELS, height, width, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_the_gating_family_and_rejects_unknown_names():
    for name in ("se", "eca", "cbam", "cbam_channel", "cbam_spatial", "bam", "cse", "sse", "scse", "ge_theta_minus",
                 "ge_theta", "ge_theta_plus", "sk", "spa", "fca", "gsop", "coord", "residual_attention"):
        assert name in NAMES
    assert isinstance(create_attention(None, CHANNELS), nn.Identity)
    with pytest.raises(ValueError, match="unknown attention module 'nope'"):
        create_attention("nope", CHANNELS)


@pytest.mark.parametrize("name", NAMES)
def test_shape_preserved_on_non_square_input(name):
    module = build(name)
    x = inputs(2, 5, 7)
    y = module(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert not torch.allclose(y, x), "the module should change its input"


@pytest.mark.parametrize("name", NAMES)
def test_one_by_one_input_forward_and_backward(name):
    module = build(name)
    x = inputs(2, 1, 1).requires_grad_()
    y = module(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_one_matches_the_same_sample_in_a_batch(name):
    """Inference on a batch of one (eval mode: batch norms use running statistics) gives the same result as
    that sample inside a larger batch, i.e. no information leaks across the batch."""
    module = build(name).eval()
    x = inputs(3, 6, 5)
    with torch.no_grad():
        full = module(x)
        single = module(x[1:2])
    assert single.shape == (1, CHANNELS, 6, 5)
    torch.testing.assert_close(single, full[1:2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    module = build(name).train()
    x = inputs(2, 6, 5).requires_grad_()
    y = module(x)
    (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in module.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", NAMES)
def test_autocast_matches_float32(name, dtype):
    module = build(name).eval()
    x = inputs(2, 6, 5)
    with torch.no_grad():
        reference = module(x)
        with torch.autocast("cpu", dtype=dtype):
            low = module(x)
    assert low.shape == x.shape and torch.isfinite(low).all()
    # bf16 keeps ~3 significant digits; a few layers deep, errors stay within a few percent of the scale
    scale = reference.abs().max()
    assert (low.float() - reference).abs().max() <= 0.05 * scale, f"{name}: {dtype} output far from float32"


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_training_step(name):
    module = build(name).train()
    x = inputs(2, 6, 5).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(x)
    y.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", NAMES)
def test_attention_map_is_captured(name):
    """Inside a model, every module records its map(s) under its own name, the same number of times per call
    (once, or once per recurrence), detached; recording does not change the output; nothing is recorded after
    the block."""
    model = nn.Sequential(nn.Identity(), build(name)).eval()
    x = inputs(2, 5, 7)
    with torch.no_grad():
        expected = model(x)
    with capture_attention(model) as maps:
        y = model(x.requires_grad_())
        per_call = {key: len(recorded) for key, recorded in maps.items()}
        model(x)
    torch.testing.assert_close(y.detach(), expected)
    assert maps, f"{name}: nothing was recorded"
    for key, recorded in maps.items():
        assert key == "1" or key.startswith("1."), key
        assert per_call[key] >= 1 and len(recorded) == 2 * per_call[key], f"{name}/{key}: {len(recorded)} maps"
        for weights in recorded:
            assert weights.shape[0] == 2 and not weights.requires_grad and torch.isfinite(weights).all()
    with torch.no_grad():
        model(x)
    assert all(len(recorded) == 2 * per_call[key] for key, recorded in maps.items())
