"""Attention correctness (Liu et al., 2017) on constructed maps whose answer is known by hand."""

from __future__ import annotations

import math

import pytest
import torch

from seq2seq_attn.captioning.correctness import attention_correctness, mean_attention_correctness


def one_hot(h: int, w: int, i: int, j: int) -> torch.Tensor:
    m = torch.zeros(h, w)
    m[i, j] = 1.0
    return m


def test_all_mass_in_the_box_none_outside_and_none_for_no_box():
    # a 4x8 grid over a 40x80 image: cells are 10x10 pixels
    maps = torch.stack([one_hot(4, 8, 1, 2), one_hot(4, 8, 3, 7), one_hot(4, 8, 0, 0)])
    boxes = [(20.0, 10.0, 30.0, 20.0), (0.0, 0.0, 40.0, 20.0), None]  # cell (1, 2) exactly; the top left quarter
    got = attention_correctness(maps, boxes, (40, 80))
    assert got[0].item() == pytest.approx(1.0) and got[1].item() == 0.0 and math.isnan(got[2].item())


def test_partly_covered_cells_count_with_their_covered_area():
    # a 2x2 grid over a 20x20 image (cells 10x10); the box covers the left half of cell (0, 1) and a quarter of
    # cell (1, 1): mass 0.4 * 0.5 + 0.6 * 0.25 = 0.35
    maps = torch.tensor([[[0.0, 0.4], [0.0, 0.6]]])
    got = attention_correctness(maps, [(10.0, 0.0, 15.0, 15.0)], (20, 20))
    assert got.item() == pytest.approx(0.4 * 0.5 + 0.6 * 0.25)


def test_uniform_attention_gives_the_box_area_share_and_non_divisible_grids():
    # uniform attention: the share is the box's share of the image, whatever the grid (here 7 cells over 30 px)
    maps = torch.full((2, 3, 7), 1 / 21)
    boxes = [(0.0, 0.0, 30.0, 12.0), (3.0, 2.0, 11.0, 9.5)]
    got = attention_correctness(maps, boxes, (12, 30))
    assert got.tolist() == pytest.approx([1.0, (8.0 * 7.5) / (12 * 30)])
    # a box beyond the image counts only its part inside
    assert attention_correctness(maps[:1], [(-5.0, -5.0, 15.0, 40.0)], (12, 30)).item() == pytest.approx(0.5)


def test_random_maps_match_a_pixel_level_computation():
    gen = torch.Generator().manual_seed(0)
    maps = torch.rand(5, 3, 4, generator=gen)
    maps = maps / maps.sum(dim=(1, 2), keepdim=True)
    boxes = [(1.0, 2.0, 13.0, 8.0), (0.0, 0.0, 16.0, 12.0), (5.0, 5.0, 6.0, 6.0), (15.0, 3.0, 16.0, 12.0),
             (4.0, 0.0, 4.0, 12.0)]
    got = attention_correctness(maps, boxes, (12, 16))  # cells are 4x4 pixels
    pixels = maps.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2) / 16  # (T, 12, 16), sums to 1
    want = [float(pixels[t, int(y0):int(y1), int(x0):int(x1)].sum()) for t, (x0, y0, x1, y1) in enumerate(boxes)]
    assert got.tolist() == pytest.approx(want, abs=1e-6)
    assert got[1].item() == pytest.approx(1.0) and got[4].item() == 0.0  # whole image; an empty box


def test_mean_over_the_words_with_boxes_and_errors():
    mean, words = mean_attention_correctness([torch.tensor([1.0, math.nan, 0.5]), torch.tensor([0.0])])
    assert mean == pytest.approx(0.5) and words == 3
    mean, words = mean_attention_correctness([torch.tensor([math.nan])])
    assert math.isnan(mean) and words == 0
    with pytest.raises(ValueError, match="2 attention maps but 1 boxes"):
        attention_correctness(torch.zeros(2, 2, 2), [None], (4, 4))
    with pytest.raises(ValueError, match="x0 <= x1"):
        attention_correctness(torch.zeros(1, 2, 2), [(3.0, 0.0, 1.0, 2.0)], (4, 4))
    with pytest.raises(ValueError, match=r"\(T, h, w\)"):
        attention_correctness(torch.zeros(2, 4), [None, None], (4, 4))
