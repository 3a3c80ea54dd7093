"""Classification corpora at scale (issue 18): the training file as memory-mapped token ids + labels gives
exactly the documents, labels, vocabulary and batches of the in-memory reading, and is cached."""

from __future__ import annotations

import numpy as np
import pytest

from seq2seq_attn.classification import mapped
from seq2seq_attn.classification.config import ClassificationConfig
from seq2seq_attn.classification.data import hold_out, label_set, read_split
from seq2seq_attn.classification.mapped import MappedDocs
from seq2seq_attn.classification.task import ClassificationData, ClassificationTask
from seq2seq_attn.classification.text import build_vocab, clean, encode
from seq2seq_attn.config import from_dict

WORDS = ["good", "bad", "film", "plot", "actor", "boring", "great", "story"]


def write_tsv(path, n: int = 120, unknown: int | None = None) -> None:
    rng = np.random.default_rng(3)
    rows = ["text\tlabel"]
    for i in range(n):
        sentences = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 7)))) + "." for _ in range(3)]
        label = "other" if i == unknown else ["neg", "pos", "mixed"][i % 3]
        rows.append(f"{' '.join(sentences)}\t{label}")
    rows.insert(5, "no label column")  # a bad row
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def in_memory(cfg: ClassificationConfig, hierarchical: bool):
    """The reading before issue 18, written out: every document in memory."""
    data = cfg.data
    examples = read_split(data.train, data).examples
    examples = [examples[i] for i in np.random.default_rng(cfg.training.seed).permutation(len(examples))]
    labels = label_set([ex.label for ex in examples], data)
    train, valid = hold_out(examples, data.valid_fraction, cfg.training.seed)
    vocab = build_vocab([clean(ex.text, data) for ex in train], data)
    docs = [encode(ex.text, vocab, data, hierarchical) for ex in train]
    return labels, vocab, docs, [labels.index(ex.label) for ex in train], [labels.index(ex.label) for ex in valid]


@pytest.mark.parametrize("tokenizer,model", [("word", "attention"), ("sentencepiece", "han")])
def test_mapped_documents_equal_the_in_memory_reading(tmp_path, monkeypatch, tokenizer: str, model: str) -> None:
    write_tsv(tmp_path / "t.tsv")
    cfg = from_dict(ClassificationConfig, {
        "data": {"format": "tsv", "train": str(tmp_path / "t.tsv"), "valid_fraction": 0.25, "min_freq": 1,
                 "skip_bad_rows": True, "tokenizer": tokenizer, "vocab_size": 40, "max_sentence_tokens": 4},
        "model": {"type": model}, "training": {"seed": 5}})
    data = ClassificationData(cfg, tmp_path / "run")
    labels, vocab, docs, train_labels, valid_labels = in_memory(cfg, model == "han")
    assert data.labels == labels and data.vocab.itos == vocab.itos and data.num_bad == 1
    assert isinstance(data.train.docs, MappedDocs) and len(data.train) == len(docs) == 90
    for got, want in zip(data.train.docs, docs):
        assert got.ids.tolist() == want.ids.tolist()
        assert got.sentence_lengths.tolist() == want.sentence_lengths.tolist()
    assert data.train.labels.tolist() == train_labels and data.valid.labels.tolist() == valid_labels
    task = ClassificationTask(cfg, data)
    assert task._lengths.tolist() == [len(d.ids) for d in docs]
    idx = task.train_batches(0)[0]
    batch = task.collate(idx)
    assert batch["labels"].tolist() == [train_labels[i] for i in idx]
    first = batch["tokens"][0].flatten()
    assert first[first != 0].tolist() == docs[idx[0]].ids.tolist()
    # A resume reads no row again: labels, encoding (cache) and vocabulary (run dir, written by the Trainer
    # through the task once its checks have passed) are all stored.
    task.write_run_files(tmp_path / "run")
    monkeypatch.setattr(mapped, "iter_split", lambda *a: pytest.fail("the file was streamed again"))
    again = ClassificationData(cfg, tmp_path / "run", resume=True)
    assert again.train.docs.encoded.folder == data.train.docs.encoded.folder
    assert again.train.labels.tolist() == train_labels


def test_unknown_label_names_its_row_or_is_skipped(tmp_path) -> None:
    write_tsv(tmp_path / "t.tsv", unknown=7)
    raw = {"data": {"format": "tsv", "train": str(tmp_path / "t.tsv"), "labels": ["neg", "pos", "mixed"],
                    "min_freq": 1, "skip_bad_rows": False}}
    bad_row = tmp_path / "t.tsv"
    text = bad_row.read_text(encoding="utf-8").replace("no label column\n", "")
    bad_row.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"t.tsv: row 8 .*unknown label 'other'"):
        ClassificationData(from_dict(ClassificationConfig, raw))
    raw["data"]["skip_bad_rows"] = True
    data = ClassificationData(from_dict(ClassificationConfig, raw))
    assert data.num_bad == 1 and len(data.train) == 119


def test_prepare_command_for_a_classify_config(tmp_path, capsys) -> None:
    from seq2seq_attn.cli import main

    write_tsv(tmp_path / "t.tsv")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{format: tsv, train: {tmp_path / 't.tsv'}, skip_bad_rows: true, min_freq: 1}}\n",
                   encoding="utf-8")
    assert main(["prepare", "--task", "classify", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "train 120 documents" in out and "1 bad rows skipped" in out and "cached in" in out


def test_parallel_encoding_equals_one_process(tmp_path, monkeypatch) -> None:
    """Chunks of 16 documents encoded by forked workers (one per core) land in file order, as one process
    encodes them."""
    write_tsv(tmp_path / "t.tsv")
    raw = {"data": {"format": "tsv", "train": str(tmp_path / "t.tsv"), "skip_bad_rows": True, "min_freq": 1},
           "model": {"type": "han"}}
    monkeypatch.setattr(mapped.os, "cpu_count", lambda: 1)
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "one"))
    one = ClassificationData(from_dict(ClassificationConfig, raw))
    monkeypatch.setattr(mapped.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(mapped, "CHUNK", 16)
    monkeypatch.setenv("SEQ2SEQ_ATTN_CACHE", str(tmp_path / "two"))
    two = ClassificationData(from_dict(ClassificationConfig, raw))
    assert len(two.train) == len(one.train) == 120
    for a, b in zip(one.train.docs, two.train.docs):
        assert a.ids.tolist() == b.ids.tolist() and a.sentence_lengths.tolist() == b.sentence_lengths.tolist()
