"""ONNX export of the classifiers and vision models: onnxruntime equals PyTorch to 1e-4 on inputs of other batch
sizes and lengths than the traced example (dynamic axes), and the traceable RNN equals the packed one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_runs import CLASSIFY_DOCS, classifier_run, vision_run

from seq2seq_attn.cli import main
from seq2seq_attn.export.onnx_export import ClassifierGraph, MaskedRNN, onnx_session
from seq2seq_attn.export.onnx_runs import TOLERANCE, export_onnx, load_vision_model
from vision.data import InputSpec

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("cell,layers,bidirectional", [("lstm", 1, True), ("gru", 2, True), ("gru", 2, False)])
def test_masked_rnn_equals_the_packed_one(cell: str, layers: int, bidirectional: bool) -> None:
    from seq2seq_attn.layers import PackedRNN

    torch.manual_seed(0)
    rnn = PackedRNN(6, 5, layers, cell, bidirectional).eval()
    x, lengths = torch.randn(4, 7, 6), torch.tensor([7, 3, 0, 1])
    expected = rnn(x, lengths)[0]
    got = MaskedRNN(rnn)(x, lengths)[0]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert got[2].abs().sum() == 0 and got[1, 3:].abs().sum() == 0  # empty row and padding give zeros


MODELS = {"attention-lstm": ("attention", {}), "attention-gru-2q": ("attention", {"encoder": "gru", "num_queries": 2}),
          "han": ("han", {}), "transformer-attention": ("transformer", {}),
          "transformer-cls": ("transformer", {"pooling": "cls"})}


@pytest.mark.parametrize("name", list(MODELS))
def test_classifier_onnx_matches_pytorch(tmp_path: Path, name: str) -> None:
    from seq2seq_attn.classification.lifecycle import load_run
    from seq2seq_attn.classification.task import collate_docs

    model_type, kwargs = MODELS[name]
    run_dir = classifier_run(tmp_path, model_type, **kwargs)
    result = export_onnx(run_dir, tmp_path / "onnx", texts=CLASSIFY_DOCS[:2])
    assert result.kind == "classifier" and result.max_abs_diff <= TOLERANCE
    # Other documents, batch size and length than the traced example.
    run = load_run(run_dir, "cpu")
    docs = run.encode([*CLASSIFY_DOCS, "Great. " * 12])
    batch = collate_docs(docs, run.hierarchical)
    inputs = {k: v.numpy() for k, v in batch.items()}
    outputs = onnx_session(tmp_path / "onnx" / "model.onnx").run(None, inputs)
    with torch.no_grad():
        expected = ClassifierGraph(run.model, run.hierarchical, trace=False)(*batch.values())
    assert len(outputs) == (4 if run.hierarchical else 3)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)
    assert json.loads((tmp_path / "onnx" / "export.json").read_text())["max_abs_diff"] <= TOLERANCE
    assert (tmp_path / "onnx" / "vocab.json").is_file() and (tmp_path / "onnx" / "labels.json").is_file()


@pytest.mark.parametrize("attention", [None, "se", "cbam", "non_local", "criss_cross", "spa"])
def test_vision_onnx_matches_pytorch(tmp_path: Path, attention: str | None) -> None:
    run_dir = vision_run(tmp_path, attention)
    InputSpec([0.5] * 3, [0.25] * 3, ["a", "b", "c"], 3, 3, 32, 32).save(run_dir)
    result = export_onnx(run_dir, tmp_path / "onnx")
    assert result.kind == "vision" and result.max_abs_diff <= TOLERANCE
    assert (tmp_path / "onnx" / "inputs.json").read_bytes() == (run_dir / "inputs.json").read_bytes()
    _, model = load_vision_model(run_dir)
    session = onnx_session(tmp_path / "onnx" / "model.onnx")
    sizes = [(5, 32)] if "fixed image size" in result.check_inputs else [(5, 32), (1, 24)]  # SPA: fixed 32x32
    for batch, side in sizes:
        images = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(side))
        with torch.no_grad():
            want = model(images)
        logits, probs = session.run(None, {"images": images.numpy()})
        np.testing.assert_allclose(logits, want.numpy(), atol=1e-4)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_unsupported_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from _tiny_runs import translation_run

    run_dir = translation_run(tmp_path / "tr")
    assert main(["export", str(run_dir), "--format", "onnx", str(tmp_path / "x")]) == 2
    assert "with --format ctranslate2" in capsys.readouterr().err
    # FcaNet pools a 16x16 map to 7x7: no ONNX operator; a one-line error and nothing written.
    fca = vision_run(tmp_path, "fca")
    assert main(["export", str(fca), "--format", "onnx", str(tmp_path / "fca_onnx")]) == 2
    assert "cannot be exported to ONNX" in capsys.readouterr().err
    assert not (tmp_path / "fca_onnx").exists()
    cls = classifier_run(tmp_path, "attention")
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(CLASSIFY_DOCS) + "\n", encoding="utf-8")
    assert main(["export", str(cls), "--format", "onnx", str(tmp_path / "cls_onnx"), "--inputs", str(docs)]) == 0
    assert "5 documents: max |difference|" in capsys.readouterr().out
