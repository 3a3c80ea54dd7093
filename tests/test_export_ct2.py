"""CTranslate2 export: tiny random-weight Transformer runs (pre- and post-LN, tied or separate embeddings,
sinusoidal or learned positions) decode in CTranslate2 exactly as in PyTorch (greedy), and the CLI round trip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_runs import SOURCES, translation_run

from seq2seq_attn.cli import main
from seq2seq_attn.export.ct2 import export_ctranslate2, load_ct2
from seq2seq_attn.translation.lifecycle import load_run

pytest.importorskip("ctranslate2")

VARIANTS = {
    "pre-LN, all tied": dict(norm_first=True, tie=True, share=True),
    "post-LN, separate": dict(norm_first=False, tie=False, share=False),
    "pre-LN, output tied, separate vocabularies": dict(norm_first=True, tie=True, share=False),
    "post-LN, learned positions": dict(norm_first=False, tie=True, share=True, positions="learned"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_greedy_output_equals_ours(tmp_path: Path, variant: str) -> None:
    run_dir = translation_run(tmp_path, seed=len(variant), **VARIANTS[variant])
    out = export_ctranslate2(run_dir, tmp_path / "ct2")
    ours, theirs = load_run(run_dir, "cpu"), load_ct2(out, threads=1)
    sources = SOURCES[::3]
    a, b = ours.translate(sources, beam_size=1), theirs.translate(sources, beam_size=1)
    assert [h[0].tokens for h in a] == [h[0].tokens for h in b]
    assert len({tuple(h[0].tokens) for h in a}) > 1  # not one constant output
    for x, y in zip(a, b):
        n = len(x[0].tokens)
        # CTranslate2's attention (alignment layer, averaged heads) has no row for the final </s>.
        np.testing.assert_allclose(y[0].attention.numpy(), x[0].attention[:n].numpy(), atol=1e-4)
        if x[0].finished and y[0].finished:
            assert y[0].log_prob == pytest.approx(x[0].log_prob, abs=1e-3)


def test_beam_hypotheses_are_ranked_with_our_length_penalty(tmp_path: Path) -> None:
    run_dir = translation_run(tmp_path, seed=3)
    ct2 = load_ct2(export_ctranslate2(run_dir, tmp_path / "ct2"), alpha=1.0, threads=1)
    for hyps in ct2.translate(SOURCES[:6], beam_size=4, n_best=4):
        assert len(hyps) == 4
        for h in hyps:  # score = log p / ((5 + |Y|) / 6) ** alpha, |Y| counting </s>
            assert h.score == pytest.approx(h.log_prob / ((5 + len(h.tokens) + 1) / 6), rel=1e-6)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_export_refuses_what_ctranslate2_cannot_run(tmp_path: Path) -> None:
    rnn = translation_run(tmp_path / "rnn", arch="rnn")
    with pytest.raises(ValueError, match="needs a Transformer run"):
        export_ctranslate2(rnn, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    from seq2seq_attn.export.ct2 import transformer_spec

    model = load_run(translation_run(tmp_path / "post", norm_first=False), "cpu").model
    model.encoder_norm = torch.nn.LayerNorm(32)  # post-LN with a final LayerNorm: no CTranslate2 equivalent
    with pytest.raises(ValueError, match="no final LayerNorm in post-LN"):
        transformer_spec(model, [], [])


def test_cli_export_then_translate_with_ctranslate2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = translation_run(tmp_path, seed=5)
    out = tmp_path / "ct2"
    assert main(["export", str(run_dir), "--format", "ctranslate2", str(out), "--quantization", "int8"]) == 0
    assert {"model.bin", "config.json", "config.yaml", "spm.model", "export.json"} <= {p.name for p in out.iterdir()}
    # A second export into the same, non-empty directory is refused and leaves it as it was.
    before = (out / "model.bin").read_bytes()
    assert main(["export", str(run_dir), "--format", "ctranslate2", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "model.bin").read_bytes() == before
    assert main(["export", str(run_dir), "--format", "ctranslate2", str(out), "--overwrite"]) == 0

    lines = SOURCES[:4]
    expected = [load_run(run_dir, "cpu").detok(h[0].tokens) for h in load_run(run_dir, "cpu").translate(lines, 1)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-m", "seq2seq_attn", "translate", str(out), "--engine", "ctranslate2",
                           "--beam", "1", "--compute-type", "float32"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected
    # A run dir that was not exported is named in a one-line error.
    assert main(["translate", str(run_dir), "--engine", "ctranslate2"]) == 2
    assert "no CTranslate2 model" in capsys.readouterr().err


def test_forced_prefixes_match_ours(tmp_path: Path) -> None:
    run_dir = translation_run(tmp_path, seed=4)
    ours, theirs = load_run(run_dir, "cpu"), load_ct2(export_ctranslate2(run_dir, tmp_path / "ct2"), threads=1)
    prefixes = ["Anna ate", "", "the"]
    a, b = ours.translate(SOURCES[:3], 1, 1, prefixes), theirs.translate(SOURCES[:3], 1, 1, prefixes)
    assert [h[0].tokens for h in a] == [h[0].tokens for h in b]
    assert ours.detok(b[0][0].tokens).startswith("Anna ate")
