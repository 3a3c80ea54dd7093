"""Itti-Koch-Niebur saliency: colour and orientation pop-out, N(.), shapes and ranges, batching."""

from __future__ import annotations

import pytest
import torch

from vision.saliency import conspicuity_maps, gaussian_pyramid, itti_koch_saliency, normalize_maps

CELL = 16  # a 4 x 4 grid of items on a 64 x 64 image


def _grid(draw, odd: tuple[int, int], channels: int) -> tuple[torch.Tensor, tuple[int, int]]:
    img = torch.zeros(channels, 4 * CELL, 4 * CELL)
    for i in range(4):
        for j in range(4):
            draw(img, CELL // 2 + CELL * i, CELL // 2 + CELL * j, (i, j) == odd)
    return img, (CELL // 2 + CELL * odd[0], CELL // 2 + CELL * odd[1])


def coloured_disks(odd: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Green disks and one red disk of the same intensity (r + g + b equal) on black."""
    yy, xx = torch.meshgrid(torch.arange(4.0 * CELL), torch.arange(4.0 * CELL), indexing="ij")

    def draw(img, cy, cx, is_odd):
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
        img[0 if is_odd else 1, disk] = 1.0

    return _grid(draw, odd, 3)


def oriented_bars(odd: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Horizontal 8 x 2 bars and one vertical bar of the same size and brightness (grey image)."""

    def draw(img, cy, cx, is_odd):
        if is_odd:
            img[0, cy - 4:cy + 4, cx - 1:cx + 1] = 1.0
        else:
            img[0, cy - 1:cy + 1, cx - 4:cx + 4] = 1.0

    return _grid(draw, odd, 1)


def peak(saliency: torch.Tensor) -> tuple[int, int]:
    return divmod(int(saliency.flatten().argmax()), saliency.shape[-1])


@pytest.mark.parametrize("make", [coloured_disks, oriented_bars])
def test_the_odd_item_pops_out(make):
    for odd in ((2, 1), (0, 3)):
        img, (cy, cx) = make(odd)
        s = itti_koch_saliency(img[None])[0]
        py, px = peak(s)
        assert abs(py - cy) <= 3 and abs(px - cx) <= 3, (make.__name__, odd, (py, px), (cy, cx))


def test_colour_and_orientation_maps_carry_the_pop_out():
    """The disks differ only in colour, so intensity alone cannot find the odd one; the colour map does.
    Likewise the bars differ only in orientation."""
    img, (cy, cx) = coloured_disks((2, 1))
    maps = conspicuity_maps(img[None])
    assert set(maps) == {"intensity", "colour", "orientation"}
    scale = img.shape[-1] // maps["colour"].shape[-1]
    py, px = peak(maps["colour"][0])
    assert abs(py * scale - cy) <= scale and abs(px * scale - cx) <= scale
    bars, (cy, cx) = oriented_bars((2, 1))
    maps = conspicuity_maps(bars[None])
    assert set(maps) == {"intensity", "orientation"}  # a grey image has no colour map
    py, px = peak(maps["orientation"][0])
    assert abs(py * scale - cy) <= scale and abs(px * scale - cx) <= scale


def test_shape_range_batching_and_dtypes():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 24, 40), dtype=torch.uint8)
    s = itti_koch_saliency(images, base=128)  # a 128 x 213 working size keeps the test fast
    assert s.shape == (3, 24, 40) and s.dtype == torch.float32
    assert torch.allclose(s.amin(dim=(1, 2)), torch.zeros(3)) and torch.allclose(s.amax(dim=(1, 2)), torch.ones(3))
    torch.testing.assert_close(itti_koch_saliency(images[1:2], base=128)[0], s[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(itti_koch_saliency(images.float() / 255, base=128), s, rtol=1e-4, atol=1e-5)
    assert torch.isfinite(itti_koch_saliency(torch.zeros(1, 3, 16, 16))).all()  # a blank image: no NaN
    with pytest.raises(ValueError, match=r"images \(B, 1 or 3, H, W\), got shape \(2, 32, 32\)"):
        itti_koch_saliency(torch.zeros(2, 32, 32))


def test_normalization_promotes_one_peak_over_many():
    one = torch.zeros(1, 1, 16, 16)
    one[..., 4, 4] = 2.0
    one[..., 11, 11] = 0.5  # one weaker local maximum: weight (1 - 0.25)^2
    many = torch.zeros(1, 1, 16, 16)
    many[..., 4, 4] = many[..., 11, 11] = many[..., 4, 11] = 2.0  # equal peaks: weight (1 - 1)^2 = 0
    torch.testing.assert_close(normalize_maps(one).amax(), torch.tensor(0.75 ** 2))
    assert normalize_maps(many).abs().max() == 0
    assert normalize_maps(torch.full((1, 1, 8, 8), 3.0)).abs().max() == 0


def test_pyramid_has_nine_levels_down_to_one_pixel():
    levels = gaussian_pyramid(torch.rand(2, 1, 256, 256))
    assert [lvl.shape[-1] for lvl in levels] == [256, 128, 64, 32, 16, 8, 4, 2, 1]
    flat = gaussian_pyramid(torch.full((1, 1, 64, 64), 0.5), 4)
    assert all(torch.allclose(lvl, torch.full_like(lvl, 0.5)) for lvl in flat)  # the blur keeps the mean


def test_shown_beside_the_learned_maps(tmp_path):
    """The explore page data carry each image's saliency map (scaled to [0, 1], the image's size), and the
    attention-map figure draws it as its own group."""
    from types import SimpleNamespace

    from PIL import Image

    from seq2seq_attn.explore.page import dequantize
    from seq2seq_attn.explore.vision import vision_data
    from vision.attention_maps import plot_attention_maps
    from vision.data import Normalize
    from vision.models.vit import VisionTransformer

    img, _ = coloured_disks((1, 2))
    pixels = (img * 255).to(torch.uint8)
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(tmp_path / "disks.png")
    model = VisionTransformer(2, 3, (64, 64), patch=16, dim=8, depth=1, heads=2).eval()
    normalize = Normalize([0.5] * 3, [0.25] * 3)
    run = SimpleNamespace(inputs=SimpleNamespace(classes=["a", "b"], image_shape=(3, 64, 64)), model=model,
                          device=torch.device("cpu"), prepare_inputs=normalize)
    entry = vision_data(run, [tmp_path / "disks.png"])["images"][0]
    shown = dequantize(entry["saliency"], (64, 64))
    expected = itti_koch_saliency(pixels[None])[0].numpy()
    assert abs(shown - expected).max() <= 1 / 255 + 1e-6
    assert [e["name"] for e in entry["entries"]] == ["layers.0.self_attn", "rollout"]
    plot_attention_maps(pixels[None], {}, tmp_path / "maps.png")
    with Image.open(tmp_path / "maps.png") as figure:
        assert figure.size[0] > 150  # input and Itti-Koch side by side
