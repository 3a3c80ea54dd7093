"""The shared building blocks of seq2seq_attn.layers: the gzip-aware opener and the length-bucketed batcher."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from seq2seq_attn.layers import length_batches, open_text

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
    batches = length_batches(LENGTHS, max_tokens=100, rng=np.random.default_rng(3))
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(len(b) * max(LENGTHS[i] for i in b) <= 100 for b in batches)
    assert batches == length_batches(LENGTHS, max_tokens=100, rng=np.random.default_rng(3))
    assert batches != length_batches(LENGTHS, max_tokens=100, rng=np.random.default_rng(4))
    # Every batch is as full as the budget allows: one more example of the next length would overflow.
    unshuffled = length_batches(LENGTHS, max_tokens=100)
    for batch, following in zip(unshuffled, unshuffled[1:]):
        longest = max(LENGTHS[i] for i in batch + following[:1])
        assert (len(batch) + 1) * longest > 100
    assert _padded(batches, LENGTHS) < 1.15 * sum(LENGTHS)


def test_token_mode_gives_an_overlong_example_its_own_batch() -> None:
    assert length_batches([3, 50, 4], max_tokens=10) == [[0, 2], [1]]


def test_sentence_mode_counts_sentences_and_buckets() -> None:
    lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    batches = length_batches(lengths, batch_size=10, rng=np.random.default_rng(1))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) == 10 for b in batches)
    assert np.mean([np.ptp(lengths[b]) for b in batches]) < 0.2 * np.ptp(lengths)
    unbucketed = length_batches(lengths, batch_size=10, rng=np.random.default_rng(1), bucket=False)
    assert np.mean([np.ptp(lengths[b]) for b in unbucketed]) > 0.5 * np.ptp(lengths)
    assert batches == length_batches(lengths, batch_size=10, rng=np.random.default_rng(1))
    # Without a generator: input order, nothing shuffled (evaluation).
    assert length_batches(range(25), batch_size=10, bucket=False) == [list(range(10)), list(range(10, 20)),
                                                                      list(range(20, 25))]


def test_length_batches_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="exactly one of batch_size and max_tokens"):
        length_batches([1, 2], batch_size=2, max_tokens=10)
    with pytest.raises(ValueError, match="exactly one"):
        length_batches([1, 2])
    with pytest.raises(ValueError, match="max_tokens must be positive"):
        length_batches([1, 2], max_tokens=0)
    assert length_batches([], batch_size=4, rng=np.random.default_rng(0)) == []
