"""Translation data: readers and their errors, filters, subwords, token batches, label smoothing."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from seq2seq_attn.config import from_dict
from seq2seq_attn.layers import length_batches
from seq2seq_attn.translation.config import TranslationConfig
from seq2seq_attn.translation.corpus import read_corpus, read_hf, read_lines, read_parallel, read_tsv
from seq2seq_attn.translation.data import collate_pairs, filter_pairs
from seq2seq_attn.translation.subwords import BOS, EOS, PAD, Vocabs, sample_pairs
from seq2seq_attn.translation.task import TranslationTask, label_smoothed_nll

DE = ["ein Haus", "zwei Katzen", "drei Hunde", "vier Bücher"]
EN = ["a house", "two cats", "three dogs", "four books"]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_gz_and_plain_read_the_same(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.de", [" ein Haus  ", "zwei"])
    with gzip.open(tmp_path / "a.de.gz", "wt", encoding="utf-8") as fh:
        fh.write(" ein Haus  \nzwei\n")
    assert read_lines(plain) == read_lines(tmp_path / "a.de.gz") == ["ein Haus", "zwei"]


def test_line_count_mismatch_names_both_files(tmp_path: Path) -> None:
    src, tgt = write(tmp_path / "x.de", DE), write(tmp_path / "x.en", EN[:3])
    with pytest.raises(ValueError, match=r"x\.de has 4 lines, .*x\.en has 3 lines"):
        read_parallel(src, tgt)


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.de"
    bad.write_bytes(b"gut\nauch gut\nschlecht \xff\xfe\n")
    with pytest.raises(ValueError, match=r"bad\.de:3: invalid UTF-8"):
        read_lines(bad)


def test_tsv_and_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", [f"{d}\t{e}" for d, e in zip(DE, EN)])
    assert read_tsv(path) == (DE, EN)
    assert read_tsv(path, 1, 0) == (EN, DE)
    write(tmp_path / "d.tsv", ["a\tb", "only one"])
    with pytest.raises(ValueError, match=r"d\.tsv:2: expected at least 2"):
        read_tsv(tmp_path / "d.tsv")


def test_hugging_face_json_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"translation": {"de": d, "en": e}}) + "\n" for d, e in zip(DE, EN)))
    src, tgt = read_hf("json", None, "train", "translation.de", "translation.en", {"train": str(path)})
    assert (src, tgt) == (DE, EN)
    with pytest.raises(ValueError, match="no field 'translation.fr'"):
        read_hf("json", None, "train", "translation.fr", "translation.en", {"train": str(path)})
    cfg = from_dict(TranslationConfig, {"data": {
        "hf": {"name": "json", "data_files": {"train": str(path)}}, "train": {"hf_split": "train"},
        "dev": {"hf_split": "train"}}})
    assert read_corpus(cfg.data.train, cfg.data)[:2] == (DE, EN)


def test_filters_count_each_reason() -> None:
    src_text = ["a", "", "b", "c", "d"]
    tgt_text = ["a", "x", "", "c", "d"]
    src_ids = [[5, EOS], [EOS], [6, EOS], [5] * 20 + [EOS], [5, 6, EOS]]
    tgt_ids = [[5], [7], [], [5], [5] * 8]
    keep, report = filter_pairs(src_text, tgt_text, src_ids, tgt_ids, max_len=10, max_ratio=2.5)
    assert keep == [0]
    assert (report.empty, report.too_long, report.bad_ratio, report.kept) == (2, 1, 1, 1)
    assert "dropped 2 empty, 1 longer than 10 tokens, 1 with length ratio > 2.5; kept 1" in report.describe(
        "train", 10, 2.5)


def token_batches(lengths: list[int], max_tokens: int, seed: int) -> list[list[int]]:
    return [b.tolist() for b in length_batches(lengths, max_tokens=max_tokens, rng=np.random.default_rng(seed))]


def test_token_batches_respect_max_tokens_and_cover_everything() -> None:
    lengths = [(i * 7919) % 37 + 1 for i in range(300)]
    batches = token_batches(lengths, max_tokens=100, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(len(b) * max(lengths[i] for i in b) <= 100 for b in batches)
    assert batches == token_batches(lengths, max_tokens=100, seed=3)  # deterministic per seed
    assert batches != token_batches(lengths, max_tokens=100, seed=4)
    # Bucketing: far less padding than random batches of the same count.
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.15 * sum(lengths)
    sb = length_batches(lengths, batch_size=16, rng=np.random.default_rng(0))
    assert sorted(i for b in sb for i in b) == list(range(300)) and max(map(len, sb)) == 16


def test_collate_shapes_and_specials() -> None:
    b = collate_pairs([[5, 6, EOS], [7, EOS]], [[8, 9], [10]], [0, 1])
    assert b.src.tolist() == [[5, 6, EOS], [7, EOS, PAD]]
    assert b.src_pad_mask.tolist() == [[False, False, False], [False, False, True]]
    assert b.tgt_in.tolist() == [[BOS, 8, 9], [BOS, 10, PAD]]
    assert b.tgt_out.tolist() == [[8, 9, EOS], [10, EOS, PAD]]
    assert b.num_tokens == 5


@pytest.mark.parametrize("joint", [True, False])
def test_subwords_saved_and_reloaded(tmp_path: Path, joint: bool) -> None:
    vocabs = Vocabs.train(joint, DE * 5, EN * 5, 40, "bpe", 1.0, 1000)
    assert list(tmp_path.iterdir()) == []  # trained in memory
    vocabs.save(tmp_path)
    reloaded = Vocabs.load(tmp_path, joint)
    assert reloaded.encode_src(DE) == vocabs.encode_src(DE)
    assert all(ids[-1] == EOS for ids in vocabs.encode_src(DE))
    assert reloaded.decode_tgt(reloaded.encode_tgt(EN)[1]) == EN[1]
    assert (vocabs.src is vocabs.tgt) == joint
    expected = ["spm.model"] if joint else ["spm.src.model", "spm.tgt.model"]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    for sp in (vocabs.src, vocabs.tgt):
        assert [sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()] == [PAD, 1, BOS, EOS]


def test_empty_corpus_after_filtering_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "t.de", ["ein sehr langer Satz mit vielen Wörtern"] * 4)
    write(tmp_path / "t.en", ["a very long sentence with many words"] * 4)
    cfg = from_dict(TranslationConfig, {"data": {
        "train": {"src": str(tmp_path / "t.de"), "tgt": str(tmp_path / "t.en")},
        "dev": {"src": str(tmp_path / "t.de"), "tgt": str(tmp_path / "t.en")}, "vocab_size": 30, "max_len": 2}})
    with pytest.raises(ValueError, match=r"training corpus .*t\.de.* is empty after filtering .*4 longer than 2"):
        TranslationTask(cfg, tmp_path / "run", log=lambda s: None)


def test_label_smoothing_matches_definition() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 6), torch.tensor([[4, 5, PAD], [1, PAD, PAD]])
    loss, nll = label_smoothed_nll(logits, target, 0.1)
    lp = logits.log_softmax(-1)
    keep = target != PAD
    want_nll = -lp.gather(-1, target.unsqueeze(-1)).squeeze(-1)[keep].sum()
    want = 0.9 * want_nll + 0.1 * (-lp.mean(-1))[keep].sum()
    torch.testing.assert_close(nll, want_nll)
    torch.testing.assert_close(loss, want)
    plain = torch.nn.functional.cross_entropy(logits.view(-1, 6), target.view(-1), ignore_index=PAD,
                                              reduction="sum", label_smoothing=0.1)
    assert math.isclose(float(loss), float(plain), rel_tol=1e-5)


def test_task_from_tsv_in_sentence_mode(tmp_path: Path) -> None:
    rows = [f"{d} {i}\t{e} {i}" for i in range(30) for d, e in zip(DE, EN)]
    write(tmp_path / "train.tsv", rows + ["\t", "nur Quelle\t"])  # two empty pairs, dropped and counted
    logs: list[str] = []
    cfg = from_dict(TranslationConfig, {"data": {
        "train": {"tsv": str(tmp_path / "train.tsv")}, "dev": {"tsv": str(tmp_path / "train.tsv")},
        "vocab_size": 60, "batch_mode": "sentences", "batch_size": 16, "joint_vocab": False}})
    task = TranslationTask(cfg, tmp_path / "run", log=logs.append)
    assert any("122 pairs, dropped 2 empty" in line for line in logs) and len(task.train_src) == 120
    batches = task.train_batches(0)
    assert sorted(i for b in batches for i in b) == list(range(120)) and max(map(len, batches)) == 16
    as_lists = [b.tolist() for b in batches]
    assert as_lists == [b.tolist() for b in task.train_batches(0)] != [b.tolist() for b in task.train_batches(1)]
    batch = task.collate(batches[0])
    assert batch.src.size(0) == len(batches[0]) and batch.tgt_in[:, 0].eq(BOS).all()
    model = task.build_model()
    out = task.loss(model, batch)
    assert out.num_items == batch.num_tokens and out.loss_sum.requires_grad
    # Nothing is written until the Trainer's checks have passed and it calls write_run_files.
    assert not (tmp_path / "run").exists()
    task.write_run_files(tmp_path / "run")
    # A resumed task on the same run dir reuses the saved subwords.
    before = (tmp_path / "run" / "spm.src.model").read_bytes()
    again = TranslationTask(cfg, tmp_path / "run", log=logs.append, resume=True)
    assert list(again.train_src) == list(task.train_src)
    assert (tmp_path / "run" / "spm.src.model").read_bytes() == before


@pytest.mark.shared_data
def test_multi30k_from_the_shared_folder(shared_data: Path) -> None:
    from seq2seq_attn.paths import resolve_path

    for split, count in (("val", 1014), ("test_2016_flickr", 1000)):
        src, tgt = read_parallel(resolve_path(f"shared:multi30k/{split}.de.gz"),
                                 resolve_path(f"shared:multi30k/{split}.en.gz"))
        assert len(src) == len(tgt) == count
        assert all(s == s.strip() and s for s in src + tgt)  # stripped, none empty
    assert resolve_path("shared:multi30k/val.de.gz") == shared_data / "multi30k" / "val.de.gz"


@pytest.mark.parametrize("spm_type", ["unigram", "bpe"])
def test_subword_sampling_in_training_only(tmp_path: Path, spm_type: str) -> None:
    words = ["Haus", "Katzen", "Hunde", "Bücher", "Hausboot", "Katzenhaus", "Hundehaus", "Bücherregal"]
    rows = [f"das {a} und {b}\tthe {a} and {b}" for a in words for b in words]
    write(tmp_path / "train.tsv", rows)
    data = {"train": {"tsv": str(tmp_path / "train.tsv")}, "dev": {"tsv": str(tmp_path / "train.tsv")},
            "vocab_size": 60, "spm_type": spm_type, "sampling_alpha": 0.3}
    task = TranslationTask(from_dict(TranslationConfig, {"data": data}), tmp_path / "run", log=lambda s: None)
    best_src, best_tgt = task.best_src, task.best_tgt
    assert list(best_src) == task.vocabs.encode_src(task.train_text[0])  # the filters saw the best segmentation
    task.train_batches(0)
    epoch0 = (task.train_src, task.train_tgt)
    # Every sample is a segmentation of the same text, ends with EOS, and differs from the best one somewhere.
    assert [task.vocabs.src.decode(s[:-1]) for s in epoch0[0]] == task.vocabs.src.decode([s[:-1] for s in best_src])
    assert [task.vocabs.decode_tgt(t) for t in epoch0[1]] == [task.vocabs.decode_tgt(t) for t in best_tgt]
    assert all(s[-1] == EOS for s in epoch0[0]) and epoch0 != (list(best_src), list(best_tgt))
    # Seeded by epoch: the same epoch gives the same samples (exact resume), the next epoch others.
    task.train_batches(1)
    assert (task.train_src, task.train_tgt) != epoch0
    task.train_batches(0)
    assert (task.train_src, task.train_tgt) == epoch0
    # The dev set (evaluation) keeps the best segmentation.
    assert task.dev_src == task.vocabs.encode_src([r.split("\t")[0] for r in rows])


def test_subword_sampling_config_checks() -> None:
    base = {"train": {"tsv": "x"}, "dev": {"tsv": "x"}}
    for extra, message in [({"spm_type": "bpe", "sampling_alpha": 1.0}, "BPE-dropout rate"),
                           ({"sampling_alpha": 0.0}, "sampling_alpha must be > 0"),
                           ({"sampling_alpha": 0.1, "sampling_nbest_size": 1}, "sampling_nbest_size")]:
        with pytest.raises(ValueError, match=message):
            from_dict(TranslationConfig, {"data": {**base, **extra}})


@pytest.mark.parametrize("joint", [True, False])
def test_subword_training_samples_both_sides_of_a_large_corpus(tmp_path: Path, joint: bool) -> None:
    """Issue 18: sources and targets in disjoint alphabets, more sentences than ``max_sentences``. The old
    sample (the first sentences of source-then-target) never saw a target, cutting it into unknowns; now the
    frequent words of both languages are whole pieces, and the sample repeats exactly."""
    latin = ["house", "garden", "river", "mountain", "window", "table"]
    greek = ["σπίτι", "κήπος", "ποτάμι", "βουνό", "παράθυρο", "τραπέζι"]
    cyrillic = ["дом", "сад", "река", "гора", "окно", "стол"]
    rng = np.random.default_rng(0)
    pairs = [rng.permutation(6)[:3] for _ in range(600)]
    src = [" ".join(latin[i] for i in p) for p in pairs]
    tgt = [" ".join((greek if n >= 300 else cyrillic)[i] for i in p) for n, p in enumerate(pairs)]
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    vocabs = Vocabs.train(joint, src, tgt, 120, "unigram", 1.0, 200)
    vocabs.save(tmp_path / "a")
    for side, words in ((vocabs.src, latin), (vocabs.tgt, greek), (vocabs.tgt, cyrillic)):
        for word in words:
            assert side.encode(word, out_type=str) == ["▁" + word], word
    assert vocabs.tgt.unk_id() not in [t for ids in vocabs.encode_tgt(tgt) for t in ids]
    Vocabs.train(joint, src, tgt, 120, "unigram", 1.0, 200).save(tmp_path / "b")
    for name in ("spm.model",) if joint else ("spm.src.model", "spm.tgt.model"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_sample_pairs_is_even_seeded_and_whole_when_small() -> None:
    assert sample_pairs(5, 10).tolist() == [0, 1, 2, 3, 4]
    picked = sample_pairs(100_000, 1000)
    assert len(set(picked.tolist())) == 1000 and (np.diff(picked) > 0).all()
    assert picked.tolist() == sample_pairs(100_000, 1000).tolist()
    assert 0.4 < np.mean(picked < 50_000) < 0.6  # both halves of the corpus alike, not its first lines
