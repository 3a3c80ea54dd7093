"""Word vectors: the word2vec/GloVe text format, skip-gram training, and ``model.pretrained_embeddings``."""

from __future__ import annotations

import json

import pytest
import torch

from seq2seq_attn.classification.config import ModelConfig
from seq2seq_attn.classification.models import build_model
from seq2seq_attn.classification.text import WordVocab
from seq2seq_attn.classification.transfer import init_from_vectors, source_words, union_vocab
from seq2seq_attn.classification.word_vectors import read_word_vectors, train_skipgram, write_word_vectors
from seq2seq_attn.cli import main


def test_text_format_round_trip_with_and_without_header(tmp_path):
    words, vectors = ["the", "film", "ça"], torch.tensor([[0.5, -1.0], [2.0, 0.25], [0.0, 1.5]])
    for name in ("v.txt", "v.txt.gz"):
        write_word_vectors(tmp_path / name, words, vectors)
        got_words, got = read_word_vectors(tmp_path / name)
        assert got_words == words and torch.equal(got, vectors)
    (tmp_path / "glove.txt").write_text("the 0.5 -1\nfilm 2 0.25\n", encoding="utf-8")  # GloVe: no header
    assert read_word_vectors(tmp_path / "glove.txt")[0] == ["the", "film"]
    (tmp_path / "bad.txt").write_text("2 2\nthe 0.5 -1\nfilm 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt: line 3: 1 numbers, expected 2"):
        read_word_vectors(tmp_path / "bad.txt")
    (tmp_path / "nan.txt").write_text("the 0.5 x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"nan\.txt: line 1: not a number"):
        read_word_vectors(tmp_path / "nan.txt")


def test_skipgram_puts_words_of_the_same_contexts_together():
    # Two topics that never share a document: words of a topic must end up closer to each other.
    g = torch.Generator().manual_seed(0)
    topics = [["cat", "dog", "horse", "cow"], ["red", "blue", "green", "pink"]]
    docs = []
    for i in range(600):
        topic = topics[i % 2]
        docs.append([topic[j] for j in torch.randint(0, 4, (12,), generator=g).tolist()])
    words, vectors = train_skipgram(docs, dim=16, window=3, min_count=1, epochs=3, subsample=1.0,
                                    batch_size=256, log=lambda _: None)
    assert sorted(words) == sorted(topics[0] + topics[1]) and vectors.shape == (8, 16)
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    sim = unit @ unit.T
    idx = {w: i for i, w in enumerate(words)}
    same = torch.tensor([sim[idx[a], idx[b]] for t in topics for a in t for b in t if a != b])
    cross = torch.tensor([sim[idx[a], idx[b]] for a in topics[0] for b in topics[1]])
    assert same.mean() > cross.mean() + 0.3


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
