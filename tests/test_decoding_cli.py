"""Decoding options and word alignments through `test` and `translate` on a tiny trained run: sampling,
prefixes, ensembles (and their vocabulary check), alignments; a Transformer's alignment layer/head choice."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
import torch
from test_translation_cli import tiny_config, tiny_corpus

from seq2seq_attn.cli import main
from seq2seq_attn.translation.alignment import AlignmentSource, alignments
from seq2seq_attn.translation.lifecycle import TranslationRun, load_run, translate_stream
from seq2seq_attn.translation.models.transformer import TransformerSeq2Seq
from seq2seq_attn.translation.subwords import Vocabs
from seq2seq_attn.translation.transformer_config import TransformerConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("decoding")
    src, tgt = tiny_corpus(tmp)
    assert main(["train", str(tiny_config(tmp, src, tgt, decoder="luong", score="general"))]) == 0
    return tmp / "run", src, tgt


def _stream(run, lines: list[str], **kwargs) -> list[str]:
    r, w = os.pipe()
    os.write(w, "".join(line + "\n" for line in lines).encode())
    os.close(w)
    out = io.StringIO()
    translate_stream(run, r, out, **kwargs)
    os.close(r)
    return out.getvalue().splitlines()


def test_test_command_with_options(trained, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, src, tgt = trained
    refs = tgt.read_text(encoding="utf-8").splitlines()
    prefix = tmp_path / "prefix.en"
    prefix.write_text("".join(("Lena" if i == 0 else "") + "\n" for i in range(len(refs))), encoding="utf-8")
    out_file, align_file = tmp_path / "hyp.en", tmp_path / "align.txt"
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--no-repeat-ngram", "3",
                 "--coverage-penalty", "0.2", "--repetition-penalty", "1.1"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "alpha 0.6, coverage_beta 0.2, no_repeat_ngram_size 3, repetition_penalty 1.1" in head
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--prefix", str(prefix),
                 "--output", str(out_file), "--alignments", str(align_file)]) == 0
    hyps = out_file.read_text(encoding="utf-8").splitlines()
    assert hyps[0].startswith("Lena ") and hyps[1:] == refs[1:]
    sources = src.read_text(encoding="utf-8").splitlines()
    lines = align_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sources)
    for line, s, h in zip(lines, sources, hyps):
        pairs = [tuple(map(int, p.split("-"))) for p in line.split()]
        assert pairs and all(0 <= i < len(s.split()) and 0 <= j < len(h.split()) for i, j in pairs)
        assert {j for _, j in pairs} == set(range(len(h.split())))  # every output word is aligned
    # Layer/head choice needs multi-head attention: a clear error for this RNN.
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--alignments", str(align_file),
                 "--align-head", "0"]) == 2
    assert "need a model with multi-head cross-attention" in capsys.readouterr().err
    short = tmp_path / "short.en"
    short.write_text("Lena\n", encoding="utf-8")
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--prefix", str(short)]) == 2
    assert "short.en: 1 prefix lines for 24 input lines" in capsys.readouterr().err


def test_sampling_and_translate_alignments(trained) -> None:
    run_dir, src, tgt = trained
    lines = src.read_text(encoding="utf-8").splitlines()[:4]
    refs = tgt.read_text(encoding="utf-8").splitlines()[:4]
    greedy = _stream(load_run(run_dir, "cpu"), lines, beam_size=1)
    top1 = _stream(load_run(run_dir, "cpu", decoding={"sampling": True, "top_k": 1}), lines, beam_size=1)
    assert top1 == greedy == refs
    hot = {"sampling": True, "temperature": 3.0, "seed": 7}
    first = _stream(load_run(run_dir, "cpu", decoding=hot), lines * 3, beam_size=1)
    assert first == _stream(load_run(run_dir, "cpu", decoding=hot), lines * 3, beam_size=1)  # seeded
    assert first != _stream(load_run(run_dir, "cpu", decoding={**hot, "seed": 8}), lines * 3, beam_size=1)
    aligned = _stream(load_run(run_dir, "cpu"), [*lines[:2], ""], align=AlignmentSource())
    assert [a.split(" ||| ")[0] for a in aligned[:2]] == refs[:2] and aligned[2] == " ||| "
    assert all(a.split(" ||| ")[1] for a in aligned[:2])


def test_ensemble_of_runs_and_weight_files(trained, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run, src, tgt = trained
    weights = tmp_path / "copy.safetensors"
    shutil.copy(run / "best.safetensors", weights)
    other = tmp_path / "other"
    shutil.copytree(run, other)
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--ensemble", str(weights), str(other)]) == 0
    assert "BLEU = 100.00" in capsys.readouterr().out  # three copies of one model: its own distribution
    loaded = load_run(run, "cpu", decoding={"ensemble": [str(weights)]})
    assert type(loaded.model).__name__ == "EnsembleModel"
    # Another subword vocabulary: a clear error naming both runs.
    (other / "spm.model").unlink()
    Vocabs.train(True, ["ganz andere Wörter hier"] * 20, ["quite other words here"] * 20, 40, "bpe", 1.0,
                 1000).save(other)
    assert main(["test", str(run), "--src", str(src), "--ref", str(tgt), "--ensemble", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"ensemble: {other} and {run} have different source subword vocabularies" in err


def test_transformer_alignment_layer_and_head(trained) -> None:
    run = load_run(trained[0], "cpu")
    size = run.vocabs.src.get_piece_size()
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=16, heads=2, encoder_layers=1, decoder_layers=2, ffn_dim=32, dropout=0.0)
    model = TransformerSeq2Seq(size, size, cfg).eval()
    tx = TranslationRun(run.run_dir, run.cfg, model, run.device, run.weights, run.vocabs)
    sources = trained[1].read_text(encoding="utf-8").splitlines()[:3]
    hyps = tx.translate(sources, 2)
    # The search's attention is the last layer's head mean: the same alignments as asking for it.
    assert alignments(tx, sources, hyps) == alignments(tx, sources, hyps, AlignmentSource(layer=-1))
    per_head = [alignments(tx, sources, hyps, AlignmentSource(layer=0, head=h)) for h in range(2)]
    assert all(len(a) == 3 for a in per_head)
    with pytest.raises(ValueError, match="--align-head 2 is out of range"):
        alignments(tx, sources, hyps, AlignmentSource(head=2))
