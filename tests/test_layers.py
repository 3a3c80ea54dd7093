"""The shared building blocks of seq2seq_attn.layers: opener, batcher, positions, Transformer layers."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
import torch

from seq2seq_attn.classification.models import HAN, AttentionClassifier, TransformerClassifier
from seq2seq_attn.layers import PackedRNN, PositionalEncoding, TransformerEncoderLayer, length_batches, open_text
from seq2seq_attn.translation.models.rnn_encoder import RNNEncoder
from seq2seq_attn.translation.models.transformer import TransformerSeq2Seq
from seq2seq_attn.translation.transformer_config import TransformerConfig

# -- open_text ---------------------------------------------------------------------------------------------

def test_open_text_reads_gzip_and_plain_alike(tmp_path) -> None:
    text = "ein Haus\nzwei Häuser\n"
    plain, packed = tmp_path / "a.txt", tmp_path / "a.txt.gz"
    plain.write_text(text, encoding="utf-8")
    with gzip.open(packed, "wt", encoding="utf-8") as fh:
        fh.write(text)
    for path in (plain, packed):
        with open_text(path) as fh:
            assert fh.read() == text
        with open_text(str(path), "rb") as fh:
            assert fh.read() == text.encode("utf-8")


def test_open_text_writes_gzip_when_the_name_says_so(tmp_path) -> None:
    for name in ("b.txt", "b.txt.gz"):
        with open_text(tmp_path / name, "w", encoding="latin-1") as fh:
            fh.write("café\n")
    assert (tmp_path / "b.txt").read_bytes() == "café\n".encode("latin-1")
    assert gzip.decompress((tmp_path / "b.txt.gz").read_bytes()) == "café\n".encode("latin-1")
    with open_text(tmp_path / "b.txt.gz", encoding="latin-1") as fh:
        assert fh.read() == "café\n"


def test_open_text_newline_and_errors(tmp_path) -> None:
    path = tmp_path / "c.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"a\r\nb\r\n")
    with open_text(path, newline="") as fh:  # csv's convention: line endings kept
        assert fh.read() == "a\r\nb\r\n"
    with open_text(path) as fh:  # universal newlines
        assert fh.read() == "a\nb\n"
    with pytest.raises(ValueError, match="mode must be one of"):
        open_text(path, "r+")
    with pytest.raises(FileNotFoundError):
        open_text(tmp_path / "missing.gz")


# -- length_batches ------------------------------------------------------------------------------------------

LENGTHS = [(i * 7919) % 37 + 1 for i in range(300)]


def _padded(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_token_mode_respects_the_budget_and_is_deterministic() -> None:
    def token_batches(**kw):
        return [b.tolist() for b in length_batches(LENGTHS, max_tokens=100, **kw)]

    batches = token_batches(rng=np.random.default_rng(3))
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(len(b) * max(LENGTHS[i] for i in b) <= 100 for b in batches)
    assert batches == token_batches(rng=np.random.default_rng(3))
    assert batches != token_batches(rng=np.random.default_rng(4))
    # Every batch is as full as the budget allows: one more example of the next length would overflow.
    unshuffled = token_batches()
    for batch, following in zip(unshuffled, unshuffled[1:]):
        longest = max(LENGTHS[i] for i in batch + following[:1])
        assert (len(batch) + 1) * longest > 100
    assert _padded(batches, LENGTHS) < 1.15 * sum(LENGTHS)


def test_token_mode_gives_an_overlong_example_its_own_batch() -> None:
    assert [b.tolist() for b in length_batches([3, 50, 4], max_tokens=10)] == [[0, 2], [1]]


def test_sentence_mode_counts_sentences_and_buckets() -> None:
    lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    batches = length_batches(lengths, batch_size=10, rng=np.random.default_rng(1))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) == 10 for b in batches)
    assert np.mean([np.ptp(lengths[b]) for b in batches]) < 0.2 * np.ptp(lengths)
    unbucketed = length_batches(lengths, batch_size=10, rng=np.random.default_rng(1), bucket=False)
    assert np.mean([np.ptp(lengths[b]) for b in unbucketed]) > 0.5 * np.ptp(lengths)
    assert batches == length_batches(lengths, batch_size=10, rng=np.random.default_rng(1))
    # Without a generator (evaluation): the input order, or sorted by length over the whole set (stable).
    assert length_batches(range(25), batch_size=10, bucket=False) == [list(range(10)), list(range(10, 20)),
                                                                      list(range(20, 25))]
    evaluation = length_batches(lengths, batch_size=64)
    assert [i for b in evaluation for i in b] == sorted(range(1000), key=lambda i: lengths[i])
    assert [len(b) for b in evaluation] == [64] * 15 + [40]


def test_length_batches_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one of batch_size and max_tokens"):
        length_batches([1, 2], batch_size=2, max_tokens=10)
    with pytest.raises(ValueError, match="exactly one"):
        length_batches([1, 2])
    with pytest.raises(ValueError, match="max_tokens must be positive"):
        length_batches([1, 2], max_tokens=0)
    assert length_batches([], batch_size=4, rng=np.random.default_rng(0)) == []


# -- positions -------------------------------------------------------------------------------------------------

def test_sinusoidal_table_is_the_formula_and_computed_once() -> None:
    pe = PositionalEncoding(6, 20)
    table = pe.table
    for pos in (0, 1, 7, 19):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert pe(0, 20)[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe(0, 20)[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert pe(5, 3).data_ptr() == table[5:8].data_ptr()  # a view of the cached table, not a new one
    assert "table" not in pe.state_dict()  # a function of the shape: never in a checkpoint
    with pytest.raises(ValueError, match="longer than max_positions"):
        pe(15, 6)


def test_unbounded_sinusoidal_table_grows_and_keeps_its_values() -> None:
    pe = PositionalEncoding(8, None)
    first = pe(0, 10).clone()
    long = pe(0, 1500)  # beyond the initial table
    assert long.shape == (1500, 8) and torch.equal(long[:10], first)
    assert long[1499, 0].item() == pytest.approx(math.sin(1499.0), abs=1e-5)
    assert pe.table.size(0) >= 1500 and pe(0, 1500).data_ptr() == pe.table.data_ptr()  # cached after growing


def test_learned_positions() -> None:
    pe = PositionalEncoding(4, 12, "learned")
    assert torch.equal(pe(3, 2), pe.embedding.weight[3:5]) and pe(0, 12).requires_grad
    with pytest.raises(ValueError, match="need max_positions"):
        PositionalEncoding(4, None, "learned")
    with pytest.raises(ValueError, match="unknown positions 'rotary'"):
        PositionalEncoding(4, 12, "rotary")


# -- Transformer layers ------------------------------------------------------------------------------------------

def test_both_tasks_build_their_transformers_from_the_shared_layers() -> None:
    cfg = TransformerConfig(d_model=16, heads=2, ffn_dim=32, encoder_layers=1, decoder_layers=1, max_positions=32)
    translation = TransformerSeq2Seq(30, 30, cfg)
    classifier = TransformerClassifier(30, 3, embed_dim=16, num_layers=1, num_heads=2, ff_dim=32)
    assert type(classifier.layers[0]) is type(translation.encoder_layers[0]) is TransformerEncoderLayer
    assert type(classifier.positions) is type(translation.positions) is PositionalEncoding
    assert classifier.layers[0].norm_first and classifier.layers[0].activation is torch.nn.functional.gelu


def test_encoder_layer_weights_path_matches_the_plain_forward() -> None:
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=True).eval()
    x = torch.randn(2, 5, 8)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    out, weights = layer.forward_with_weights(x, pad)
    assert torch.allclose(out, layer(x, pad), atol=1e-6)
    assert weights.shape == (2, 5, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 5), atol=1e-6)
    assert weights[1, :, 3:].eq(0).all()  # padded keys get no weight
    assert layer.forward_with_weights(x, pad, need_weights=False)[1] is None


# -- packed RNN encoder ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_packed_rnn_ignores_padding_and_concatenates_final_states(cell: str) -> None:
    torch.manual_seed(0)
    enc = PackedRNN(5, 4, num_layers=2, cell=cell, bidirectional=True).eval()
    x = torch.randn(3, 6, 5)
    lengths = torch.tensor([6, 2, 4])
    x_padded = x.clone()
    x_padded[1, 2:] = 99.0  # garbage at padding must not matter
    outputs, final = enc(x_padded, lengths)
    h = final[0] if cell == "lstm" else final
    assert outputs.shape == (3, 6, 8) and h.shape == (2, 3, 8)
    for row, n in enumerate(lengths.tolist()):
        # The reference: torch's RNN on the row alone, unpadded.
        ref_out, ref_final = enc.rnn(x[row:row + 1, :n])
        ref_h = (ref_final[0] if cell == "lstm" else ref_final).view(2, 2, 1, 4)  # (layers, directions, 1, H)
        assert torch.allclose(outputs[row, :n], ref_out[0], atol=1e-6)
        assert outputs[row, n:].eq(0).all()
        assert torch.allclose(h[:, row], torch.cat([ref_h[:, 0, 0], ref_h[:, 1, 0]], dim=-1), atol=1e-6)


def test_packed_rnn_gives_zeros_for_empty_rows_and_keeps_gradients() -> None:
    torch.manual_seed(0)
    enc = PackedRNN(3, 2, cell="lstm")
    x = torch.randn(3, 4, 3, requires_grad=True)
    outputs, (h, c) = enc(x, torch.tensor([0, 4, 0]))
    assert outputs[[0, 2]].eq(0).all() and h[:, [0, 2]].eq(0).all() and c[:, [0, 2]].eq(0).all()
    assert outputs[1].abs().sum() > 0
    outputs.sum().backward()
    assert x.grad[[0, 2]].eq(0).all() and x.grad[1].abs().sum() > 0
    empty_out, empty_h = PackedRNN(3, 2, cell="gru")(x, torch.zeros(3, dtype=torch.long))
    assert empty_out.shape == (3, 4, 4) and empty_out.eq(0).all() and empty_h.shape == (1, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the cell may run in bf16; results keep the inputs' dtype
        for lengths in (torch.tensor([0, 4, 2]), torch.tensor([1, 4, 2])):
            outputs, (h, c) = enc(x, lengths)
            assert outputs.dtype == h.dtype == c.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown RNN cell 'rnn'"):
        PackedRNN(3, 2, cell="rnn")


def test_translation_and_classifiers_share_the_packed_rnn() -> None:
    emb = torch.nn.Embedding(20, 6)
    encoders = [RNNEncoder(emb, 4, 1, "gru", True, 0.0), AttentionClassifier(20, 2, 6, 4).encoder,
                HAN(20, 2, 6, 4).word_encoder, HAN(20, 2, 6, 4).sentence_encoder]
    assert all(isinstance(e, PackedRNN) for e in encoders)
    # Embedding first: parameter names and order of earlier translation checkpoints and optimizer states.
    assert [n for n, _ in encoders[0].named_parameters()][:2] == ["embedding.weight", "rnn.weight_ih_l0"]
    src = torch.tensor([[3, 4, 5], [6, 7, 0]])
    memory, final = encoders[0].eval()(src, src == 0)
    direct, direct_final = PackedRNN.forward(encoders[0], src, torch.tensor([3, 2]))
    assert torch.equal(memory, direct) and torch.equal(final, direct_final) and memory[1, 2].eq(0).all()


def _reference_token_batches(lengths, max_tokens, seed, shuffle=True):
    """The translation batcher as every run before the shared layers used it (sort with random ties by
    ``default_rng(seed)``, fill to the budget, shuffle the batch order by ``default_rng(seed + 1)``)."""
    lengths = np.asarray(lengths)
    order = np.lexsort((np.random.default_rng(seed).permutation(len(lengths)), lengths))
    return _reference_fill(lengths, order, max_tokens, seed if shuffle else None)


def _reference_fill(lengths, order, max_tokens, shuffle_seed):
    """The per-example greedy fill (a Python object per example), as every run before the vectorized one."""
    batches, current, longest = [], [], 0
    for i in order.tolist():
        new_longest = max(longest, int(lengths[i]))
        if current and new_longest * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, new_longest = [], int(lengths[i])
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    if shuffle_seed is None:
        return batches
    perm = np.random.default_rng(shuffle_seed + 1).permutation(len(batches))
    return [batches[j] for j in perm]


def test_translation_batches_repeat_earlier_runs_batch_for_batch() -> None:
    """Runs trained before the consolidation (and their recorded dev BLEU at each step) stay reproducible."""
    from types import SimpleNamespace

    from seq2seq_attn.translation.task import TranslationTask

    lengths = np.random.default_rng(0).integers(1, 40, size=300)
    data = SimpleNamespace(sampling_alpha=None, batch_mode="tokens", max_tokens=120)
    task = SimpleNamespace(cfg=SimpleNamespace(data=data, training=SimpleNamespace(seed=7)),
                           train_src=[[1] * int(n) for n in lengths], train_tgt=[[1] * int(n - 1) for n in lengths])
    for epoch in (0, 3):
        got = TranslationTask.train_batches(task, epoch)
        assert [b.tolist() for b in got] == _reference_token_batches(lengths, 120, 7 * 100_003 + epoch)


@pytest.mark.parametrize("max_tokens", [1, 7, 64, 1536])
def test_vectorized_token_fill_equals_the_per_example_fill(max_tokens) -> None:
    """Zero lengths, ties, over-long examples and budgets from one example to many: the same batches."""
    rng = np.random.default_rng(max_tokens)
    lengths = np.concatenate([rng.integers(0, 3, 20), rng.integers(1, 120, 2000), [max_tokens + 5, 4000]])
    order = np.argsort(lengths, kind="stable")
    got = [b.tolist() for b in length_batches(lengths, max_tokens=max_tokens)]
    assert got == _reference_fill(lengths, order, max_tokens, None)
    for dtype in (np.uint16, np.int32):  # the compact stored lengths give the same batches, shuffled or not
        compact = lengths.astype(dtype)
        assert [b.tolist() for b in length_batches(compact, max_tokens=max_tokens)] == got
        shuffled = length_batches(compact, max_tokens=max_tokens, rng=np.random.default_rng(4),
                                  shuffle_rng=np.random.default_rng(5))
        assert [b.tolist() for b in shuffled] == _reference_token_batches(lengths, max_tokens, 4)
