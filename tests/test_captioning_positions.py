"""Where the annotations are: the 2-D positions (sinusoidal against a hand computation, learned tables that
train), the row RNN, and what they change in the encoder's output (identical CNN features, different
positions -> different annotations)."""

from __future__ import annotations

import math

import pytest
import torch
from _caption_tiny import tiny_set
from safetensors.torch import save_file
from torch import nn

from seq2seq_attn.captioning.config import CaptionModelConfig, DecoderConfig, EncoderConfig
from seq2seq_attn.captioning.model import CaptionEncoder, build_caption_model
from seq2seq_attn.layers import GridPositionalEncoding
from seq2seq_attn.translation.search import search
from seq2seq_attn.translation.subwords import BOS, EOS


def tiny_model(seed: int = 0, **encoder) -> nn.Module:
    torch.manual_seed(seed)
    cfg = CaptionModelConfig(EncoderConfig(widths=[8, 16], **encoder), DecoderConfig(emb_dim=8, hidden=16))
    return build_caption_model(cfg, 9, (1, 16, 48), [0.2], [0.4])


def feature_passthrough(encoder: CaptionEncoder) -> CaptionEncoder:
    """The encoder with its CNN replaced by the identity: a float input (B, D, h, w) is its feature map."""
    encoder.stem, encoder.stages = nn.Identity(), nn.Identity()
    return encoder


def test_sinusoidal_grid_positions_are_the_hand_computation():
    # D = 8: rows in channels 0-3, columns in 4-7, each [sin p, cos p, sin(p / 100), cos(p / 100)]
    # (d = 4 per axis: frequencies 10000^(-0/4) = 1 and 10000^(-2/4) = 1/100)
    table = GridPositionalEncoding(8, (2, 3), "sinusoidal")(2, 3)
    assert table.shape == (6, 8)
    for i in range(6):
        r, c = i // 3, i % 3
        expected = [f(p / s) for p in (r, c) for s in (1, 100) for f in (math.sin, math.cos)]
        torch.testing.assert_close(table[i], torch.tensor(expected))


def test_learned_grid_positions_have_one_table_per_axis_and_refuse_a_larger_grid():
    pos = GridPositionalEncoding(6, (2, 4), "learned")
    assert pos.rows.embedding.weight.shape == (2, 3) and pos.cols.embedding.weight.shape == (4, 3)
    table = pos(2, 4)  # (8, 6)
    torch.testing.assert_close(table[5], torch.cat([pos.rows.embedding.weight[1], pos.cols.embedding.weight[1]]))
    with pytest.raises(ValueError, match="max_positions"):
        pos(3, 4)
    with pytest.raises(ValueError, match="even"):
        GridPositionalEncoding(5, (2, 4))
    with pytest.raises(ValueError, match="unknown positions"):
        GridPositionalEncoding(6, (2, 4), "rotary")


@pytest.mark.parametrize("options", [{"position": "sinusoidal"}, {"position": "learned"},
                                     {"row_rnn": True, "position": "learned"}])
def test_positions_tell_identical_features_apart(options):
    features = torch.ones(2, 16, 4, 6)  # the same CNN vector at all 24 positions
    plain = feature_passthrough(tiny_model().encoder).eval()
    assert torch.equal(plain(features), features.flatten(2).transpose(1, 2))  # no options: unchanged
    encoder = feature_passthrough(tiny_model(**options).encoder).eval()
    annotations = encoder(features)[0]  # (24, 16)
    assert annotations.shape == (24, 16)
    assert torch.cdist(annotations, annotations).add(torch.eye(24)).min() > 1e-4  # 24 distinct vectors


def test_row_rnn_alone_knows_the_column_not_the_row():
    encoder = feature_passthrough(tiny_model(row_rnn=True).encoder).eval()
    grid = encoder(torch.ones(1, 16, 4, 6))[0].view(4, 6, 16)  # (h, w, D)
    torch.testing.assert_close(grid[0], grid[3])  # every row is the same sequence
    assert (grid[0, :-1] - grid[0, 1:]).abs().amax(-1).min() > 1e-4  # but each column is different


def test_model_with_positions_and_row_rnn_shapes_gradients_and_search():
    model = tiny_model(row_rnn=True, position="learned", freeze=True)
    images = tiny_set(3).images
    mask = model.source_mask(images)
    assert model.encoder(images).shape == (3, 8 * 24, 16) and mask.shape == (3, 8 * 24)
    logits, alphas = model(images, mask, torch.tensor([[BOS, 4, 5, 6]] * 3), return_attention=True)
    assert logits.shape == (3, 4, 9) and alphas.shape == (3, 4, 8 * 24)
    logits.logsumexp(-1).sum().backward()
    encoder = model.encoder
    assert all(p.grad is None for p in encoder.stages.parameters())  # the frozen CNN
    for table in (encoder.position.rows.embedding.weight, encoder.position.cols.embedding.weight,
                  *encoder.row_rnn.parameters()):
        assert table.grad is not None and table.grad.abs().sum() > 0
    model.eval()
    hyps = search(model, images, mask, BOS, EOS, 4, beam_size=1)
    assert len(hyps) == 3 and all(h[0].attention.shape[1] == 8 * 24 for h in hyps)


def test_sinusoidal_positions_are_not_saved_and_load_cnn_keeps_the_new_parts(tmp_path):
    model = tiny_model(row_rnn=True, position="learned")
    assert not any(k.startswith("position.") for k in tiny_model(position="sinusoidal").encoder.state_dict())
    cnn = tiny_model(seed=1).encoder.state_dict() | {"fc.weight": torch.zeros(1, 16), "fc.bias": torch.zeros(1)}
    save_file(cnn, str(tmp_path / "cnn.safetensors"))
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model.encoder.load_cnn(str(tmp_path / "cnn.safetensors"))
    after = model.encoder.state_dict()
    for k, v in after.items():
        expected = before[k] if k.startswith(("row_rnn.", "position.")) else cnn[k]
        assert torch.equal(v, expected), k


def test_encoder_options_errors():
    cfg = EncoderConfig(widths=[8, 15], position="sinusoidal")
    with pytest.raises(ValueError, match="even number of channels"):
        CaptionEncoder(cfg, 1, [0.2], [0.4], (16, 48))
    with pytest.raises(ValueError, match="image size"):
        CaptionEncoder(EncoderConfig(widths=[8, 16], position="learned"), 1, [0.2], [0.4])
