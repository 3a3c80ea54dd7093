"""The vision backbones: CIFAR ResNets (He et al., 2016), ResNet-18, the small MNIST ResNet, attention insertion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seq2seq_attn.attention import capture_attention
from vision import list_attention
from vision.models import BasicBlock, PadShortcut, ResNet, build_resnet, mnist_resnet, resnet18, resnet20


def cifar_param_formula(n: int, num_classes: int = 10) -> int:
    """He et al.'s CIFAR ResNet with option A shortcuts: 3x3 convs without bias, BN (2 per channel), linear."""
    total = 3 * 16 * 9 + 2 * 16  # stem conv + BN
    c_in = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += 9 * c_in * width + 2 * width + 9 * width * width + 2 * width
            c_in = width
    return total + 64 * num_classes + num_classes


@pytest.mark.parametrize("arch,n", [("resnet20", 3), ("resnet56", 9), ("resnet110", 18)])
def test_cifar_resnet_parameter_counts_match_the_paper(arch, n):
    model = build_resnet(arch)
    assert sum(p.numel() for p in model.parameters()) == cifar_param_formula(n)
    # The paper's Table 6: 0.27M, 0.85M, 1.7M parameters.
    expected = {"resnet20": 0.27e6, "resnet56": 0.85e6, "resnet110": 1.7e6}[arch]
    assert abs(sum(p.numel() for p in model.parameters()) - expected) / expected < 0.02
    depth = 2 + 2 * sum(1 for m in model.modules() if isinstance(m, BasicBlock))
    assert depth == int(arch[len("resnet"):])


def test_option_a_shortcut_subsamples_and_zero_pads():
    x = torch.randn(2, 4, 6, 5)
    out = PadShortcut(4, 8, stride=2)(x)
    assert out.shape == (2, 8, 3, 3)
    assert torch.equal(out[:, 2:6], x[:, :, ::2, ::2])
    assert out[:, :2].abs().sum() == 0 and out[:, 6:].abs().sum() == 0
    with pytest.raises(ValueError, match="cannot reduce"):
        PadShortcut(8, 4, 1)


def test_option_b_uses_projections_and_a_has_no_shortcut_parameters():
    a = build_resnet("resnet20", shortcut="A")
    b = build_resnet("resnet20", shortcut="B")
    projections = [m for m in b.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(projections) == 2  # one per stage transition
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in a.modules())
    extra = sum(p.numel() for p in b.parameters()) - sum(p.numel() for p in a.parameters())
    assert extra == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_resnet18_cifar_stem_and_shapes():
    model = resnet18(num_classes=7)
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert abs(sum(p.numel() for p in model.parameters()) - 11.17e6) < 0.01e6
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 16, 16))
        assert feats.shape == (1, 512, 2, 2)  # stride 1 stem, then three stride-2 stages
        assert model(torch.randn(1, 3, 16, 16)).shape == (1, 7)


def test_mnist_resnet_gray_non_square_batch_one():
    model = mnist_resnet(widths=[8, 16], blocks=[1, 2])
    assert model.stem[0].in_channels == 1
    model.eval()
    assert model(torch.randn(1, 1, 28, 20)).shape == (1, 10)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown arch"):
        build_resnet("resnet7")
    with pytest.raises(ValueError, match="attention_stages"):
        build_resnet("resnet20", attention="se", attention_stages=[4])
    with pytest.raises(ValueError, match="small"):
        build_resnet("resnet20", widths=[8, 8, 8])


def test_attention_goes_on_the_residual_branch_before_the_addition():
    block = BasicBlock(8, 8)

    class Zero(nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    block.attn = Zero()  # the residual branch vanishes: only relu(shortcut) is left
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(block(x), torch.relu(x))


needs_se = pytest.mark.skipif("se" not in list_attention(), reason="the se module is not registered yet")


@needs_se
def test_block_position_puts_one_module_in_every_block_of_the_chosen_stages():
    full = resnet20(attention="se")
    assert len(full.attention_modules()) == 9
    some = resnet20(attention="se", attention_stages=[2, 3])
    assert len(some.attention_modules()) == 6
    assert all(isinstance(b.attn, nn.Identity) for b in some.stages[0])
    plain = resnet20()
    assert plain.attention_modules() == []
    assert sum(p.numel() for p in full.parameters()) > sum(p.numel() for p in some.parameters()) > \
        sum(p.numel() for p in plain.parameters())


@needs_se
def test_stage_position_puts_one_module_after_each_chosen_stage():
    model = resnet20(attention="se", attention_position="stage", attention_stages=[2, 3])
    mods = model.attention_modules()
    assert len(mods) == 2
    assert model.stages[1][-1] is mods[0] and model.stages[2][-1] is mods[1]
    assert all(isinstance(b.attn, nn.Identity) for s in model.stages for b in s if isinstance(b, BasicBlock))


@needs_se
def test_backbone_init_leaves_attention_modules_alone_and_maps_are_captured():
    torch.manual_seed(0)
    model = ResNet([1, 1], [16, 32], attention="se")
    model.eval()
    with capture_attention(model) as maps:
        model(torch.randn(2, 3, 8, 8))
    recorded = [name for name, calls in maps.items() if calls]
    assert len(recorded) >= 2 and all(name.startswith("stages.") for name in recorded)


# Every registered module inside a small backbone (SE-style position): forward, backward, batch of one.
@pytest.mark.parametrize("name", list_attention())
def test_every_module_trains_inside_the_backbone(name):
    torch.manual_seed(0)
    model = ResNet([1, 1], [16, 32], num_classes=5, attention=name)
    assert len(model.attention_modules()) == 2
    model.train()
    logits = model(torch.randn(2, 3, 10, 8))
    assert logits.shape == (2, 5)
    logits.logsumexp(-1).sum().backward()
    grads = [p.grad for m in model.attention_modules() for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    assert model(torch.randn(1, 3, 7, 7)).shape == (1, 5)
