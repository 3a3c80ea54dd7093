"""``model.init_from``: a classifier starts from an earlier run, rows matched by token and by label."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from seq2seq_attn.classification.config import ModelConfig
from seq2seq_attn.classification.models import build_model
from seq2seq_attn.classification.text import WordVocab
from seq2seq_attn.classification.transfer import init_from_run, source_words, union_vocab
from seq2seq_attn.cli import main
from seq2seq_attn.training.checkpoint import CheckpointError, read_weights, save_weights

SOURCE_WORDS = ["<pad>", "<unk>", "<cls>", "good", "bad", "film", "plot"]
TARGET_WORDS = ["<pad>", "<unk>", "<cls>", "plot", "awful", "good", "movie"]  # shares plot, good (+ specials)


def _source_run(tmp_path, model_cfg: ModelConfig):
    torch.manual_seed(0)
    model = build_model(model_cfg, len(SOURCE_WORDS), 2)
    run = tmp_path / "source"
    run.mkdir()
    WordVocab(SOURCE_WORDS).save(run)
    (run / "labels.json").write_text(json.dumps(["neg", "pos"]))
    save_weights(model.state_dict(), run / "best.safetensors")
    return run, model.state_dict()


def test_rows_are_matched_by_token_and_label_and_the_rest_copied(tmp_path):
    cfg = ModelConfig(type="attention", encoder="gru", embed_dim=8, hidden_size=6)
    run, source = _source_run(tmp_path, cfg)
    torch.manual_seed(1)
    model = build_model(cfg, len(TARGET_WORDS), 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = init_from_run(model, run, WordVocab(TARGET_WORDS), ["pos", "neutral", "neg"])
    after = model.state_dict()

    emb, src_emb = after["embed.weight"], source["embed.weight"]
    for word in ("<pad>", "<unk>", "<cls>", "plot", "good"):
        assert torch.equal(emb[TARGET_WORDS.index(word)], src_emb[SOURCE_WORDS.index(word)]), word
    for word in ("awful", "movie"):  # unknown to the source: keep their fresh rows
        i = TARGET_WORDS.index(word)
        assert torch.equal(emb[i], before["embed.weight"][i]), word
    for name in ("head.weight", "head.bias"):
        assert torch.equal(after[name][0], source[name][1])  # pos
        assert torch.equal(after[name][2], source[name][0])  # neg
        assert torch.equal(after[name][1], before[name][1])  # neutral: fresh
    whole = [k for k in after if k not in ("embed.weight", "head.weight", "head.bias")]
    assert whole and all(torch.equal(after[k], source[k]) for k in whole)
    assert (report.tokens_matched, report.labels_matched, report.not_in_source) == (5, 2, [])
    assert sorted(report.copied) == sorted(whole)


def test_different_dimensions_or_model_type_are_errors_naming_the_tensor(tmp_path):
    run, _ = _source_run(tmp_path, ModelConfig(type="attention", encoder="gru", embed_dim=8, hidden_size=6))
    vocab = WordVocab(TARGET_WORDS)
    wider = build_model(ModelConfig(type="attention", encoder="gru", embed_dim=8, hidden_size=10), len(vocab), 2)
    with pytest.raises(CheckpointError, match=r"best\.safetensors: encoder\..* has shape"):
        init_from_run(wider, run, vocab, ["neg", "pos"])
    taller = build_model(ModelConfig(type="attention", encoder="gru", embed_dim=12, hidden_size=6), len(vocab), 2)
    with pytest.raises(CheckpointError, match="embed.weight rows have shape"):
        init_from_run(taller, run, vocab, ["neg", "pos"])
    other = build_model(ModelConfig(type="transformer", embed_dim=8, num_heads=2), len(vocab), 2)
    with pytest.raises(CheckpointError, match=r"pool\.query has shape \(1, 1, 12\)"):  # BiRNN states are 2H wide
        init_from_run(other, run, vocab, ["neg", "pos"])
    with pytest.raises(FileNotFoundError, match="init_from: .* is not a run directory"):
        init_from_run(other, tmp_path / "nowhere", vocab, ["neg", "pos"])


DOCS = [("the film was great", "pos"), ("a dull boring plot", "neg"), ("superb acting", "pos"),
        ("awful and tedious", "neg"), ("a wonderful story", "pos"), ("terrible ending", "neg")]


def _config(root, name: str, extra_model: str, lr: float, epochs: int):
    data = root / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in DOCS), encoding="utf-8")
    path = root / f"{name}.yaml"
    path.write_text(f"""
data: {{format: tsv, train: {data}, test: {data}, min_freq: 1, batch_size: 3}}
model: {{type: attention, encoder: lstm, embed_dim: 8, hidden_size: 6, dropout: 0.0, embed_dropout: 0.0{extra_model}}}
training: {{run_dir: {root / name}, device: cpu, lr: {lr}, max_epochs: {epochs}, metric: accuracy, metric_mode: max,
           log_every: 1000}}
""", encoding="utf-8")
    return path


def test_cli_run_starts_from_the_source_and_resumes_without_it(tmp_path):
    assert main(["classify", "train", str(_config(tmp_path, "source", "", 0.05, 30))]) == 0
    source_acc = json.loads((tmp_path / "source" / "test_metrics.json").read_text())["accuracy"]
    assert source_acc == 1.0
    # A near-zero learning rate: whatever the second run knows, it got from the source.
    config = _config(tmp_path, "target", f", init_from: {tmp_path / 'source'}", 1e-9, 1)
    src = read_weights(tmp_path / "source" / "best.safetensors")
    for again in ([], ["--overwrite"]):  # --overwrite of a run with checkpoints starts from the source again
        assert main(["classify", "train", str(config), *again]) == 0
        assert json.loads((tmp_path / "target" / "test_metrics.json").read_text())["accuracy"] == source_acc
        first = read_weights(tmp_path / "target" / "best.safetensors")
        assert torch.allclose(first["encoder.rnn.weight_ih_l0"], src["encoder.rnn.weight_ih_l0"], atol=1e-6)
    shutil.rmtree(tmp_path / "source")  # resuming reads the run's own checkpoint, never the source
    assert main(["classify", "train", str(config), "--resume", "--set", "training.max_epochs=2"]) == 0


def test_union_vocabulary_appends_the_source_words(tmp_path):
    run, _ = _source_run(tmp_path, ModelConfig(type="attention", encoder="none", embed_dim=8))
    union = union_vocab(WordVocab(TARGET_WORDS), source_words(run, None))
    assert union.itos == TARGET_WORDS + ["bad", "film"]  # the training split's words first, ids unchanged
    model = build_model(ModelConfig(type="attention", encoder="none", embed_dim=8), len(union), 2)
    assert init_from_run(model, run, union, ["neg", "pos"]).tokens_matched == len(SOURCE_WORDS)
