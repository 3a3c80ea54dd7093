"""Word vectors: the word2vec/GloVe text format as users have it, skip-gram training with gensim, and
``model.pretrained_embeddings``."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from seq2seq_attn.classification.config import ModelConfig
from seq2seq_attn.classification.models import build_model
from seq2seq_attn.classification.text import WordVocab
from seq2seq_attn.classification.transfer import init_from_vectors, source_words, union_vocab
from seq2seq_attn.classification.word_vectors import read_word_vectors, train_word2vec, write_word_vectors
from seq2seq_attn.cli import main


def test_text_format_round_trip_with_and_without_header(tmp_path):
    words, vectors = ["the", "film", "ça"], torch.tensor([[0.5, -1.0], [2.0, 0.25], [0.0, 1.5]])
    for name in ("v.txt", "v.txt.gz"):
        write_word_vectors(tmp_path / name, words, vectors)
        got_words, got = read_word_vectors(tmp_path / name)
        assert got_words == words and torch.equal(got, vectors)
    (tmp_path / "glove.txt").write_text("the 0.5 -1\nfilm 2 0.25\n", encoding="utf-8")  # GloVe: no header
    assert read_word_vectors(tmp_path / "glove.txt")[0] == ["the", "film"]


def _vectors(path: Path, text: str) -> tuple[list[str], torch.Tensor]:
    path.write_text(text, encoding="utf-8")
    return read_word_vectors(path)


def test_vector_files_as_users_have_them(tmp_path):
    expected = torch.tensor([[0.5, -1.0], [2.0, 0.25]])
    # a space after the last number, tabs, CRLF, surrounding blank lines, a BOM: the same two vectors
    for name, text in [("trailing.txt", "the 0.5 -1 \nfilm 2 0.25 \n"),
                       ("header_trailing.txt", "2 2 \nthe 0.5 -1 \nfilm 2 0.25 \n"),
                       ("crlf.txt", "\ufeff2 2\r\nthe 0.5 -1\r\n\r\nfilm\t2\t0.25\r\n\n"),
                       ("spaces.txt", "  the  0.5   -1\nfilm 2 0.25   \t\n")]:
        words, vectors = _vectors(tmp_path / name, text)
        assert words == ["the", "film"] and torch.equal(vectors, expected), name
    # the last dim fields are the vector, the rest is the word (GloVe 840B has words with spaces)
    words, vectors = _vectors(tmp_path / "multi.txt", "3 2\nthe 0.5 -1\nNew York 2 0.25\n. . . 1 1\n")
    assert words == ["the", "New York", ". . ."] and vectors[1].tolist() == [2.0, 0.25]
    words, _ = _vectors(tmp_path / "nbsp.txt", "a\xa0b 1 2\n\xa0 3 4\n")  # other Unicode spaces stay in the word
    assert words == ["a\xa0b", "\xa0"]
    with gzip.open(tmp_path / "g.txt.gz", "wt", encoding="utf-8") as f:
        f.write("2 2 \nthe 0.5 -1 \nfilm 2 0.25 \n")
    words, vectors = read_word_vectors(tmp_path / "g.txt.gz")
    assert words == ["the", "film"] and torch.equal(vectors, expected)


def test_lines_that_still_cannot_be_read_are_named(tmp_path):
    cases = {
        "short.txt": ("the 0.5 -1\nfilm 2\n", r"short\.txt: line 2: 1 numbers, expected 2"),
        "header_short.txt": ("2 3\nthe 0.5 -1 2\nfilm 2 0.25\n", r"header_short\.txt: line 3: 2 numbers, expected 3"),
        "word_missing.txt": ("the 0.5 -1\n 1 2 \n", r"word_missing\.txt: line 2: 1 numbers, expected 2"),
        "letters.txt": ("the 0.5 -1\nfilm 2 x\n", r"letters\.txt: line 2: not a number"),
        "only_word.txt": ("the\n", r"only_word\.txt: line 1: expected a word and its numbers"),
        "count.txt": ("3 2\nthe 0.5 -1\nfilm 2 0.25\n", r"count\.txt: the header promises 3 vectors, the file holds 2"),
        "empty.txt": ("\n \n", r"empty\.txt: no word vectors"),
    }
    for name, (text, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            _vectors(tmp_path / name, text)
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: word vectors not found"):
        read_word_vectors(tmp_path / "missing.txt")


def _two_topics(n: int = 600) -> tuple[list[list[str]], list[list[str]]]:
    g = torch.Generator().manual_seed(0)
    topics = [["cat", "dog", "horse", "cow"], ["red", "blue", "green", "pink"]]
    docs = [[topics[i % 2][j] for j in torch.randint(0, 4, (12,), generator=g).tolist()] for i in range(n)]
    return topics, docs


def _topic_gap(topics, words, vectors) -> float:
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    sim = unit @ unit.T
    idx = {w: i for i, w in enumerate(words)}
    same = torch.tensor([sim[idx[a], idx[b]] for t in topics for a in t for b in t if a != b])
    cross = torch.tensor([sim[idx[a], idx[b]] for a in topics[0] for b in topics[1]])
    return float(same.mean() - cross.mean())


def test_word2vec_puts_words_of_the_same_contexts_together_reproducibly():
    # Two topics that never share a document: words of a topic must end up closer to each other.
    topics, docs = _two_topics()
    kwargs = dict(dim=16, window=3, min_count=1, epochs=5, subsample=0, seed=3, log=lambda _: None)
    words, vectors = train_word2vec(docs, **kwargs)
    assert sorted(words) == sorted(topics[0] + topics[1]) and vectors.shape == (8, 16)
    assert vectors.dtype == torch.float32 and _topic_gap(topics, words, vectors) > 0.3
    again = train_word2vec(docs, **kwargs)  # one worker and a seed: the same vectors
    assert again[0] == words and torch.equal(again[1], vectors)
    other = train_word2vec(docs, **{**kwargs, "seed": 4})
    assert not torch.equal(other[1], vectors)
    with pytest.raises(ValueError, match="reproducible only with one worker"):
        train_word2vec(docs, **kwargs, workers=2)
    with pytest.raises(ValueError, match="only 0 words occur at least 5000 times"):
        train_word2vec(docs, **{**kwargs, "min_count": 5000})


def test_word2vec_vocabulary_is_the_most_frequent_words_and_long_documents_count_whole():
    docs = [["a"] * 6 + ["b"] * 4 + ["c"] * 3 + ["d"], ["x", "a"] * 7000]  # the second is over gensim's 10,000
    words, vectors = train_word2vec(docs, dim=4, min_count=2, max_words=3, epochs=1, log=lambda _: None)
    assert words == ["a", "x", "b"] and vectors.shape == (3, 4)


def test_train_word_vectors_script_writes_vectors_that_read_back(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_word_vectors", Path(__file__).parents[1] / "scripts"
                                                  / "train_word_vectors.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    topics, docs = _two_topics()
    (tmp_path / "text.txt.gz").write_bytes(gzip.compress("\n".join(map(" ".join, docs)).encode()))
    out = tmp_path / "v" / "vectors.txt"
    args = ["--text", str(tmp_path / "text.txt.gz"), "--dim", "16", "--window", "3", "--min-count", "1",
            "--epochs", "5", "--subsample", "0", "--seed", "3", "-o", str(out)]
    assert script.main(args) == 0
    assert "wrote 8 vectors of 16 numbers" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").splitlines()[0] == "8 16"  # word2vec text format with its header
    words, vectors = read_word_vectors(out)
    assert len(words) == 8 and vectors.shape == (8, 16) and _topic_gap(topics, words, vectors) > 0.3
    with pytest.raises(SystemExit):
        script.main([*args, "--threads", "2"])
    assert "reproducible only with one thread" in capsys.readouterr().err


def test_pretrained_rows_are_copied_scaled_and_union_adds_their_words(tmp_path):
    write_word_vectors(tmp_path / "v.txt", ["good", "plot", "walrus"], torch.tensor([[1.0, 2.0], [3.0, -1.0],
                                                                                    [0.5, 0.5]]))
    vocab = WordVocab(["<pad>", "<unk>", "<cls>", "plot", "movie", "good"])
    union = union_vocab(vocab, source_words(None, tmp_path / "v.txt"))
    assert union.itos == vocab.itos + ["walrus"]
    torch.manual_seed(0)
    model = build_model(ModelConfig(type="attention", encoder="none", embed_dim=2), len(union), 2)
    table = model.embed.weight
    before = table.detach().clone()
    assert init_from_vectors(model, tmp_path / "v.txt", union) == 3
    ratio = table[5, 0] / 1.0  # "good" = (1, 2) times one common scale
    torch.testing.assert_close(table[5], torch.tensor([1.0, 2.0]) * ratio)
    torch.testing.assert_close(table[3], torch.tensor([3.0, -1.0]) * ratio)
    torch.testing.assert_close(table[6], torch.tensor([0.5, 0.5]) * ratio)
    assert torch.equal(table[4], before[4])  # "movie": not in the file, keeps its initialization
    wide = build_model(ModelConfig(type="attention", encoder="none", embed_dim=3), len(union), 2)
    with pytest.raises(ValueError, match=r"v\.txt: embed\.weight rows have shape \(2,\), the model's \(3,\)"):
        init_from_vectors(wide, tmp_path / "v.txt", union)


def test_cli_run_with_pretrained_embeddings(tmp_path, capsys):
    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\ngood plot\tpos\nbad plot\tneg\n", encoding="utf-8")
    write_word_vectors(tmp_path / "v.txt", ["good", "bad", "walrus"], torch.randn(3, 4))
    config = tmp_path / "c.yaml"
    config.write_text(f"""
data: {{format: tsv, train: {data}, min_freq: 1, batch_size: 2}}
model: {{type: attention, encoder: none, embed_dim: 4, pretrained_embeddings: {tmp_path / 'v.txt'}, init_vocab: union}}
training: {{run_dir: {tmp_path / 'run'}, device: cpu, max_epochs: 1, metric: accuracy, metric_mode: max}}
""", encoding="utf-8")
    assert main(["classify", "train", str(config)]) == 0
    assert "3/7 words found" in capsys.readouterr().out  # <pad> <unk> <cls> plot good bad walrus
    assert json.loads((tmp_path / "run" / "vocab.json").read_text())["itos"][-1] == "walrus"
