"""Classification data: the file readers, bad rows, labels, vocabularies, sentence splitting, batching."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from seq2seq_attn.classification.config import ClassificationConfig, DataConfig
from seq2seq_attn.classification.data import read_split
from seq2seq_attn.classification.metrics import confusion_matrix, format_report, report
from seq2seq_attn.classification.task import ClassificationData, ClassificationTask, collate_docs
from seq2seq_attn.classification.text import UNK_ID, WordVocab, clean, encode, load_vocab, split_sentences
from seq2seq_attn.config import from_dict
from seq2seq_attn.layers import length_batches


def data_cfg(**kw) -> DataConfig:
    return DataConfig(**{"train": "unused", **kw})


def test_csv_gz_with_label_names_html_and_quoted_newlines(tmp_path):
    path = tmp_path / "train.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write('label,rating,id,text\n0,1,5,"Bad.<br /><br />Really, bad."\n1,9,6,"Good\nfilm"\n')
    split = read_split(str(path), data_cfg(format="csv", label_names={"0": "neg", "1": "pos"}))
    assert [(e.label, e.text) for e in split.examples] == [("neg", "Bad.<br /><br />Really, bad."),
                                                           ("pos", "Good\nfilm")]
    doc = encode(split.examples[0].text, WordVocab.build(["bad really"], 10, 1), data_cfg(), hierarchical=True)
    assert doc.tokens == ["bad", ".", "really", ",", "bad", "."]  # <br /> removed, lower-cased
    assert doc.sentence_lengths.tolist() == [2, 4]


def test_label_first_and_trec_latin1(tmp_path):
    sst = tmp_path / "sst.txt"
    sst.write_text("1 a gorgeous film\n0 dull\n\n", encoding="utf-8")
    got = read_split(str(sst), data_cfg(format="label_first")).examples
    assert [(e.label, e.text) for e in got] == [("1", "a gorgeous film"), ("0", "dull")]
    trec = tmp_path / "trec.gz"
    with gzip.open(trec, "wb") as fh:
        fh.write("DESC:manner How did serfdom develop ?\nHUM:ind Who is Bj\xf0rn ?\n".encode("latin-1"))
    coarse = read_split(str(trec), data_cfg(format="trec", encoding="latin-1")).examples
    assert [e.label for e in coarse] == ["DESC", "HUM"] and coarse[1].text == "Who is Bj\xf0rn ?"
    fine = read_split(str(trec), data_cfg(format="trec", encoding="latin-1", trec_fine=True)).examples
    assert [e.label for e in fine] == ["DESC:manner", "HUM:ind"]
    with pytest.raises(ValueError, match="cannot decode as utf-8"):
        read_split(str(trec), data_cfg(format="trec"))


@pytest.mark.parametrize("fmt,content,row,reason", [
    ("csv", "text,label\ngood,pos\n,neg\nfine,pos\n", 2, "missing text"),
    ("csv", "text,label\ngood,pos\nfine,pos\nbad\n", 3, "expected 2 fields"),
    ("tsv", "text\tlabel\ngood\tpos\nok\t\n", 2, "missing label"),
    ("jsonl", '{"text": "good", "label": "pos"}\n{"text": "bad", "label": \n', 2, "invalid JSON"),
    ("jsonl", '{"text": "good", "label": "pos"}\n["x"]\n', 2, "expected a JSON object"),
    ("trec", "DESC:def What is it ?\nNUM How many ?\n", 2, "COARSE:fine"),
    ("label_first", "1 good\n0\n", 2, "missing text"),
])
def test_bad_rows_name_file_and_row_or_are_skipped(tmp_path, fmt, content, row, reason):
    path = tmp_path / f"data.{fmt}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{path.name}: row {row}\b.*{reason}"):
        read_split(str(path), data_cfg(format=fmt))
    skipped = read_split(str(path), data_cfg(format=fmt, skip_bad_rows=True))
    assert skipped.num_bad == 1 and len(skipped.examples) >= 1


def test_unknown_label_in_valid_split_names_the_row(tmp_path):
    (tmp_path / "train.tsv").write_text("text\tlabel\na\tpos\nb\tneg\n", encoding="utf-8")
    (tmp_path / "valid.tsv").write_text("text\tlabel\nc\tpos\nd\tmaybe\n", encoding="utf-8")
    raw = {"data": {"format": "tsv", "train": str(tmp_path / "train.tsv"), "valid": str(tmp_path / "valid.tsv"),
                    "min_freq": 1}}
    with pytest.raises(ValueError, match=r"valid.tsv: row 2 .*unknown label 'maybe'"):
        ClassificationData(from_dict(ClassificationConfig, raw))
    raw["data"]["skip_bad_rows"] = True
    data = ClassificationData(from_dict(ClassificationConfig, raw))
    assert data.num_bad == 1 and len(data.valid) == 1 and data.labels == ["neg", "pos"]


def test_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("body,label\nx,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no column 'text'"):
        read_split(str(path), data_cfg(format="csv"))
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_split(str(tmp_path / "nope.csv"), data_cfg(format="csv"))


def test_hugging_face_builder_with_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    path = tmp_path / "train.jsonl"
    rows = [{"sentence": "great", "stars": 1}, {"sentence": "awful", "stars": 0}, {"sentence": "", "stars": 1}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = data_cfg(format="hf", hf_name="json", text_column="sentence", label_column="stars")
    with pytest.raises(ValueError, match=r"train.jsonl: row 3: missing text"):
        read_split(str(path), cfg)
    cfg.skip_bad_rows = True
    split = read_split(str(path), cfg)
    assert [(e.text, e.label) for e in split.examples] == [("great", "1"), ("awful", "0")] and split.num_bad == 1


def test_vocabulary_sentencepiece_and_saving(tmp_path):
    vocab = WordVocab.build(["b a b", "c b a", "rare"], size=5, min_freq=2)
    assert vocab.itos == ["<pad>", "<unk>", "<cls>", "b", "a"]  # by frequency, cut at size and min_freq
    assert vocab.to_ids(["a", "zzz"]) == [4, UNK_ID]
    vocab.save(tmp_path)
    assert load_vocab(tmp_path).itos == vocab.itos
    cfg = from_dict(ClassificationConfig, {"data": {"train": "unused", "tokenizer": "sentencepiece",
                                                    "vocab_size": 40}})
    from seq2seq_attn.classification.text import build_vocab

    texts = [f"the film number {i} was {'good' if i % 2 else 'bad'} ." for i in range(60)]
    sp = build_vocab(texts, cfg.data)
    doc = encode("The film was good.", sp, cfg.data, hierarchical=False)
    assert len(doc.ids) == len(doc.tokens) > 0 and doc.ids.min() >= 3  # never pad/unk/cls here
    sp.save(tmp_path)
    again = load_vocab(tmp_path)
    assert encode("The film was good.", again, cfg.data, False).ids.tolist() == doc.ids.tolist()


def test_sentence_splitting_and_truncation():
    assert split_sentences("One. Two!  Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    vocab = WordVocab.build(["a b c d e f"], 20, 1)
    cfg = data_cfg(max_tokens=5, max_sentences=2, max_sentence_tokens=2)
    flat = encode("a b c. d e f. a", vocab, cfg, hierarchical=False)
    assert flat.tokens == ["a", "b", "c", ".", "d"] and flat.sentence_lengths.tolist() == [4, 1]
    han = encode("a b c. d e f. a", vocab, cfg, hierarchical=True)
    assert han.tokens == ["a", "b", "d", "e"] and han.sentence_lengths.tolist() == [2, 2]


def test_collate_and_length_buckets():
    vocab = WordVocab.build(["a b c"], 10, 1)
    docs = [encode(t, vocab, data_cfg(), True) for t in ("a b. c", "a", "b c a b. a. b")]
    flat = collate_docs(docs, hierarchical=False)
    assert flat["tokens"].shape == (3, 8) and flat["lengths"].tolist() == [4, 1, 8]
    assert flat["tokens"][1, 1:].eq(0).all()
    han = collate_docs(docs, hierarchical=True)
    assert han["tokens"].shape == (3, 3, 5) and han["sentence_lengths"].tolist() == [[3, 1, 0], [1, 0, 0],
                                                                                     [5, 2, 1]]
    lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    batches = length_batches(lengths, batch_size=10, rng=np.random.default_rng(1), bucket=True)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.2 * np.ptp(lengths)  # buckets: documents of a batch have similar lengths
    assert length_batches(lengths, batch_size=10, rng=np.random.default_rng(1), bucket=True) == batches  # deterministic


def test_task_batches_are_deterministic_and_cover_the_data(tmp_path):
    (tmp_path / "t.tsv").write_text("text\tlabel\n" + "".join(f"w{i % 7} x{i}\t{i % 3}\n" for i in range(50)))
    cfg = from_dict(ClassificationConfig, {"data": {"format": "tsv", "train": str(tmp_path / "t.tsv"),
                                                    "batch_size": 8, "min_freq": 1, "valid_fraction": 0.2}})
    task = ClassificationTask(cfg, ClassificationData(cfg, tmp_path / "run"))
    assert task.data.labels == ["0", "1", "2"] and len(task.data.train) == 40 and len(task.data.valid) == 10
    assert not (tmp_path / "run").exists()  # written only when the Trainer's checks have passed
    task.write_run_files(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "labels.json").read_text()) == ["0", "1", "2"]
    b0 = task.train_batches(0)
    assert b0 == task.train_batches(0) and b0 != task.train_batches(1)
    assert sorted(i for b in b0 for i in b) == list(range(40))
    batch = task.collate(b0[0])
    out = task.loss(task.build_model(), batch)
    assert out.num_items == len(b0[0]) and out.loss_sum.shape == () and out.loss_sum.requires_grad


def test_metrics_against_hand_counts():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 0])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 0]]
    m = report(cm, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["per_class"]["a"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5) and m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    text = format_report(m, cm, ["a", "b", "c"])
    assert "accuracy 0.5000" in text and text.rstrip().splitlines()[-1].split() == ["c", "1", "0", "0"]


@pytest.mark.shared_data
def test_real_sst_and_trec_files(shared_data):
    sst = read_split(str(shared_data / "sst" / "stsa.binary.test.gz"), data_cfg(format="label_first"))
    assert len(sst.examples) == 1821 and {e.label for e in sst.examples} == {"0", "1"}
    trec = read_split(str(shared_data / "trec" / "TREC.train.gz"), data_cfg(format="trec", encoding="latin-1"))
    counts = {k: sum(e.label == k for e in trec.examples) for k in ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")}
    assert counts == {"ABBR": 86, "DESC": 1162, "ENTY": 1250, "HUM": 1223, "LOC": 835, "NUM": 896}


def test_undo_ptb_restores_raw_text_words():
    cfg = DataConfig(train="x", undo_ptb=True)
    text = "it 's a -lrb- very -rrb- good film , but i do n't like `` it '' ; they 're here and wo n't go"
    assert clean(text, cfg) == "it's a ( very ) good film , but i don't like \" it \" ; they're here and won't go"
    tokens = WordVocab([]).tokenize(clean(text, cfg))
    assert "don't" in tokens and "won't" in tokens and "n" not in tokens
    assert clean(text, DataConfig(train="x")) == text  # off by default


def test_max_test_docs_scores_the_same_random_subset_every_time(tmp_path):
    from seq2seq_attn.classification.task import load_split

    path = tmp_path / "test.tsv"
    path.write_text("text\tlabel\n" + "".join(f"doc number {i}\t{'neg' if i < 20 else 'pos'}\n" for i in range(40)))
    cfg = ClassificationConfig(data=data_cfg(format="tsv", max_test_docs=10))
    vocab = WordVocab.build(["doc number"], 10, 1)
    first, _ = load_split(cfg, vocab, ["neg", "pos"], str(path))
    again, _ = load_split(cfg, vocab, ["neg", "pos"], str(path))
    assert len(first) == 10 and np.array_equal(first.labels, again.labels)
    assert 0 < first.labels.sum() < 10  # both labels of the label-sorted file, not its first ten rows
    cfg.data.max_test_docs = None
    assert len(load_split(cfg, vocab, ["neg", "pos"], str(path))[0]) == 40
    with pytest.raises(ValueError, match="max_test_docs must be >= 1"):
        data_cfg(max_test_docs=0)
