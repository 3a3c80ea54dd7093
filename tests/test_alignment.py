"""Word alignments: subword pieces merged to words, Pharaoh pairs from a known attention matrix, the choice of
layer and head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seq2seq_attn.translation.alignment import pharaoh, select_attention, word_alignment, word_index

SRC = ["▁Anna", "▁hat", "▁zwei", "▁Äp", "fel", "▁gekauft", "▁."]  # words 0..5 (Äp+fel = word 3)
TGT = ["▁Anna", "▁bought", "▁two", "▁app", "les", "▁."]  # words 0..4 (app+les = word 3)


def test_word_index_merges_subwords() -> None:
    assert word_index(SRC) == [0, 1, 2, 3, 3, 4, 5]
    assert word_index(TGT) == [0, 1, 2, 3, 3, 4]
    assert word_index(["▁", "W", "hite", "▁men"]) == [0, 0, 0, 1]  # a bare "▁" opens the word "White"
    assert word_index(["es", "▁a"]) == [0, 1]  # a first piece without "▁" still starts word 0


def test_known_alignment_in_pharaoh_format() -> None:
    # One row per output piece + EOS, one column per source piece + EOS; the crossing verb is the point.
    attends = [0, 5, 2, 3, 4, 6]  # Anna->Anna, bought->gekauft, two->zwei, app->Äp, les->fel, .->.
    attention = torch.full((len(TGT) + 1, len(SRC) + 1), 0.01)
    for j, i in enumerate(attends):
        attention[j, i] = 0.9
    attention[:, -1] = 0.02  # source EOS: never chosen, even when a row favours it (next line)
    attention[len(TGT), -1] = 0.99
    pairs = word_alignment(attention, SRC, TGT)
    assert pharaoh(pairs) == "0-0 2-2 3-3 4-1 5-4"
    # A piece attending to the source EOS most is aligned to its best real source piece.
    attention[0, -1] = 5.0
    assert word_alignment(attention, SRC, TGT)[0] == (0, 0)
    assert word_alignment(attention, SRC, []) == [] and pharaoh([]) == ""
    with pytest.raises(ValueError, match="smaller than"):
        word_alignment(attention[:2], SRC, TGT)


def test_select_attention_layer_and_head() -> None:
    rng = np.random.default_rng(0)
    maps = {f"decoder_layers.{i}.multihead_attn": rng.random((4, 3, 5)).astype(np.float32) for i in range(2)}
    maps["encoder_layers.0.self_attn"] = rng.random((4, 5, 5)).astype(np.float32)
    last = torch.from_numpy(maps["decoder_layers.1.multihead_attn"])
    torch.testing.assert_close(select_attention(maps, None, None), last.mean(0))
    first = torch.from_numpy(maps["decoder_layers.0.multihead_attn"])
    torch.testing.assert_close(select_attention(maps, 0, 2), first[2])
    with pytest.raises(ValueError, match="--align-layer 2 is out of range: the model has 2 decoder layers"):
        select_attention(maps, 2, None)
    with pytest.raises(ValueError, match="--align-head 4 is out of range: the model has 4 heads"):
        select_attention(maps, -1, 4)
    with pytest.raises(ValueError, match="multi-head cross-attention"):
        select_attention({"decoder.attention": np.zeros((1, 3, 5), np.float32)}, 0, None)
