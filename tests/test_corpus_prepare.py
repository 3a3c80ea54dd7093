"""Encode once (issue 18): the memory-mapped training corpus, its cache and the filters on arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from seq2seq_attn.cli import main
from seq2seq_attn.config import from_dict
from seq2seq_attn.layers import RaggedArray, RaggedView, RaggedWriter, build_folder
from seq2seq_attn.translation.config import TranslationConfig
from seq2seq_attn.translation.corpus import read_corpus
from seq2seq_attn.translation.data import filter_encoded, filter_pairs
from seq2seq_attn.translation.prepare import prepare
from seq2seq_attn.translation.task import TranslationTask

WORDS = ["Haus", "Katze", "Hund", "Buch", "Baum", "Wasser", "Stadt", "Kind"]


def corpus(tmp_path: Path, n: int = 300) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    src, tgt = [], []
    for _ in range(n):
        words = [WORDS[j] for j in rng.integers(0, len(WORDS), size=int(rng.integers(1, 9)))]
        src.append(" ".join(words))
        tgt.append(" ".join(w.lower() + "s" for w in words))
    src[3], tgt[5] = "", ""  # empty pairs
    src[7] = " ".join(WORDS * 8)  # too long
    tgt[9] = " ".join(w.lower() for w in WORDS * 2)  # length ratio
    paths = tmp_path / "train.de", tmp_path / "train.en"
    for path, lines in zip(paths, (src, tgt)):
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return paths


def config(tmp_path: Path, src: Path, tgt: Path, **data) -> TranslationConfig:
    return from_dict(TranslationConfig, {"data": {
        "train": {"src": str(src), "tgt": str(tgt)}, "dev": {"src": str(src), "tgt": str(tgt)}, "vocab_size": 40,
        "max_len": 20, "max_ratio": 2.0, "cache_dir": str(tmp_path / "cache"), **data}})


def test_ragged_array_round_trip_and_pickles_as_its_folder(tmp_path: Path) -> None:
    seqs = [[5, 6, 7], [], [65535], [1, 2]]
    writer = RaggedWriter(tmp_path, "x", np.uint16)
    writer.extend(seqs[:2])
    writer.extend(seqs[2:])
    assert writer.close() == 4
    arr = RaggedArray(tmp_path, "x")
    assert [arr[i].tolist() for i in range(4)] == seqs and arr.lengths.tolist() == [3, 0, 1, 2]
    assert arr.gather([3, 0], (9,)) == [[1, 2, 9], [5, 6, 7, 9]] and arr[-1].tolist() == [1, 2]
    with pytest.raises(IndexError):
        arr[4]
    assert len(pickle.dumps(arr)) < 300 and pickle.loads(pickle.dumps(arr))[0].tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="id outside"):
        RaggedWriter(tmp_path, "y", np.uint16).extend([[70000]])
    (tmp_path / "x.ids").write_bytes(b"\0\0")  # truncated
    with pytest.raises(ValueError, match="incomplete"):
        RaggedArray(tmp_path, "x")


def test_stored_lengths_are_compact_and_equal_the_offsets_differences(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    short = [rng.integers(0, 9, int(n)).tolist() for n in rng.integers(0, 40, 500)]
    for name, seqs, dtype in (("short", short, np.uint16), ("long", [*short, [1] * 70_000], np.int32)):
        writer = RaggedWriter(tmp_path, name, np.uint16)
        writer.extend(seqs)
        writer.close()
        arr = RaggedArray(tmp_path, name)
        assert arr.lengths.dtype == dtype and arr.lengths.tolist() == np.diff(arr.offsets).tolist()
        assert arr.lengths.tolist() == [len(s) for s in seqs]
    view = RaggedView(arr, np.array([500, 2, 0]), suffix=(9,))  # the 70,000-long one: no uint16 wrap
    assert view.keep.dtype == np.int32 and view.lengths.tolist() == [70_001, len(short[2]) + 1, len(short[0]) + 1]
    assert view.lengths.dtype == np.int32 and view[1] == [*short[2], 9]


def test_reading_sequences_maps_nothing_into_the_process(tmp_path: Path) -> None:
    """Random access by positioned reads: no page of the files is mapped, so none counts in the RSS."""
    writer = RaggedWriter(tmp_path, "x", np.uint16)
    writer.extend([[i % 7] * (i % 50) for i in range(20_000)])
    writer.close()
    arr = RaggedArray(tmp_path, "x")
    picked = np.random.default_rng(0).integers(0, 20_000, 300)
    assert [arr[int(i)].tolist() for i in picked] == [[i % 7] * (i % 50) for i in picked.tolist()]
    assert str(tmp_path) not in Path("/proc/self/maps").read_text()


def test_build_folder_leaves_nothing_half_written(tmp_path: Path) -> None:
    def fail(tmp: Path) -> None:
        (tmp / "part").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        build_folder(tmp_path / "enc", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.lock"]
    build_folder(tmp_path / "enc", lambda tmp: (tmp / "ok").write_text("1"))
    build_folder(tmp_path / "enc", fail)  # present: not rebuilt
    assert (tmp_path / "enc" / "ok").read_text() == "1"


def test_encoded_corpus_equals_the_text_path_with_the_same_filter_counts(tmp_path: Path) -> None:
    src_path, tgt_path = corpus(tmp_path)
    cfg = config(tmp_path, src_path, tgt_path)
    vocabs, pairs = prepare(cfg, log=lambda s: None)
    src, tgt, _ = read_corpus(cfg.data.train, cfg.data)
    assert [pairs.src[i].tolist() for i in range(len(src))] == vocabs.src.encode(src)
    assert [pairs.tgt[i].tolist() for i in range(len(tgt))] == vocabs.tgt.encode(tgt)
    keep, report = filter_encoded(pairs.src.lengths, pairs.tgt.lengths, pairs.empty, 20, 2.0)
    want_keep, want = filter_pairs(src, tgt, vocabs.encode_src(src), vocabs.encode_tgt(tgt), 20, 2.0)
    assert keep.tolist() == want_keep and report == want
    assert report.empty == 2 and report.too_long >= 1 and report.bad_ratio >= 1


def test_prepare_command_then_train_reads_the_cache(tmp_path: Path, capsys) -> None:
    src_path, tgt_path = corpus(tmp_path)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"data:\n  train: {{src: {src_path}, tgt: {tgt_path}}}\n  dev: {{src: {src_path}, "
                        f"tgt: {tgt_path}}}\n  vocab_size: 40\n  cache_dir: {tmp_path / 'cache'}\n", encoding="utf-8")
    assert main(["prepare", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "encoded 300 pairs" in out and "300 pairs, dropped 2 empty" in out
    logs: list[str] = []
    cfg = config(tmp_path, src_path, tgt_path, max_len=100, max_ratio=3.0)
    task = TranslationTask(cfg, tmp_path / "run", log=logs.append)
    assert any("from the cache" in line for line in logs) and not any("encoded" in line for line in logs)
    assert not any("subwords: trained" in line for line in logs)  # the cached model
    assert any(f"kept {len(task.train_src)}" in s for s in logs)
    assert not (tmp_path / "run").exists()  # written into the run only when the Trainer's checks have passed
    task.write_run_files(tmp_path / "run")
    cached = next(p for p in (tmp_path / "cache" / "translation").glob("spm-*") if p.is_dir()) / "spm.model"
    assert (tmp_path / "run" / "spm.model").read_bytes() == cached.read_bytes()
    # Another corpus (one line changed) gets its own subwords and encoding.
    lines = src_path.read_text(encoding="utf-8").splitlines()
    src_path.write_text("\n".join(["Wasser Stadt"] + lines[1:]) + "\n", encoding="utf-8")
    logs.clear()
    TranslationTask(cfg, tmp_path / "run2", log=logs.append)
    assert any("encoded 300 pairs" in line for line in logs)
    assert len(list((tmp_path / "cache" / "translation").glob("enc-*[!k]"))) == 2


def test_prepare_names_both_files_when_they_differ_in_length(tmp_path: Path) -> None:
    src_path, tgt_path = corpus(tmp_path, 20)
    tgt_path.write_text("eins\nzwei\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has 20 lines.*has 2 lines"):
        prepare(config(tmp_path, src_path, tgt_path), log=lambda s: None)
    assert not list((tmp_path / "cache" / "translation").glob("*tmp*"))


def test_filters_on_arrays_work_in_chunks_with_the_same_result(monkeypatch) -> None:
    """Chunk boundaries change nothing: kept indices and counts equal the one-pass (list) filter."""
    import seq2seq_attn.translation.data as data_module

    rng = np.random.default_rng(5)
    src = rng.integers(0, 30, 1000)
    tgt = rng.integers(0, 30, 1000)
    empty = (src == 0) | (tgt == 0)
    src_ids, tgt_ids = [[7] * (int(n) + 1) for n in src], [[7] * int(n) for n in tgt]  # source ids hold EOS
    texts_src = ["" if e else "x" for e in empty]
    want_keep, want = filter_pairs(texts_src, texts_src, src_ids, tgt_ids, max_len=20, max_ratio=2.0)
    for chunk in (1, 7, 999, 1 << 20):
        monkeypatch.setattr(data_module, "FILTER_CHUNK", chunk)
        keep, report = filter_encoded(src, tgt, empty, 20, 2.0)
        assert keep.tolist() == list(want_keep)
        assert (report.total, report.empty, report.too_long, report.bad_ratio) == (
            want.total, want.empty, want.too_long, want.bad_ratio)


def test_batches_from_the_stored_lengths_equal_the_list_path(tmp_path: Path) -> None:
    """int32 kept indices and lengths from the compact files give the batches of the per-pair Python path."""
    from types import SimpleNamespace

    src_path, tgt_path = corpus(tmp_path)
    cfg = config(tmp_path, src_path, tgt_path, max_len=100, max_ratio=3.0, batch_mode="tokens", max_tokens=40)
    task = TranslationTask(cfg, tmp_path / "run", log=lambda s: None)
    assert isinstance(task.train_src, RaggedView) and task.train_src.keep.dtype == np.int32
    lists = SimpleNamespace(cfg=cfg, train_src=list(task.train_src), train_tgt=list(task.train_tgt))
    assert len(lists.train_src) == len(task.train_src) > 250
    for epoch in (0, 1):
        want = [b.tolist() for b in TranslationTask.train_batches(lists, epoch)]
        assert [b.tolist() for b in task.train_batches(epoch)] == want
