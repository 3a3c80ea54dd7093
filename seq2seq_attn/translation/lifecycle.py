"""The translation lifecycle: train, load a run (:class:`TranslationRun`), evaluate and translate.

The commands ``train``, ``test`` and ``translate`` only parse their arguments and call these functions. A run
dir holds everything ``evaluate`` and ``translate`` need: ``config.yaml``, the sentencepiece model(s) and the
weights written by the Trainer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from ..paths import resolve_path
from ..training.checkpoint import StagedOutputs
from ..training.lifecycle import LoadedRun, load_task_config, load_weights_for_inference, run_config_path
from .alignment import AlignmentSource, alignments, hypothesis_alignment
from .attention_export import write_attention
from .config import TranslationConfig
from .corpus import read_lines, read_parallel
from .heatmap import save_heatmap
from .metrics import CorpusScore, corpus_scores
from .models import build_model
from .subwords import PAD, Vocabs
from .task import TranslationTask, translate_ids


def train(config_path: str | Path, overrides: dict | None = None, resume: bool = False, overwrite: bool = False,
          device: str | None = None) -> int:
    """Train a translation model as the config says (subwords first, then the Trainer); returns the Trainer's
    exit code (see :func:`~seq2seq_attn.training.run_training`)."""
    from ..training import prepare_run_dir, run_training

    cfg = load_task_config(TranslationConfig, config_path, overrides)
    run_dir = Path(cfg.training.run_dir)
    # Check the run dir and the config (a refused --resume) before reading corpora and training subwords;
    # the Trainer checks again and then writes config.yaml and the subword models.
    prepare_run_dir(run_dir, cfg, resume, overwrite, write=False, guarded=TranslationTask.resume_keys)
    task = TranslationTask(cfg, run_dir, resume=resume)
    return run_training(task, cfg.training, cfg, resume=resume, overwrite=overwrite, device=device)


@dataclass
class TranslationRun(LoadedRun):
    """A trained translation run: ``cfg`` (:class:`TranslationConfig`), ``model`` (eval mode on ``device``),
    ``vocabs`` (the sentencepiece source/target models) and the ``weights`` file loaded."""

    cfg: TranslationConfig
    vocabs: Vocabs = field(repr=False)
    generator: torch.Generator | None = None  # the random source of sampling (seeded with decoding.seed)

    def translate(self, sources: Sequence[str], beam_size: int | None = None, n_best: int = 1,
                  prefixes: Sequence[str] | None = None) -> list:
        """Hypotheses (lists, best first) for each source sentence; empty lines give empty hypotheses.
        ``prefixes``: per sentence the text its translation must start with ("" = free)."""
        prefix_ids = None if prefixes is None else self.vocabs.encode_tgt(prefixes)
        return translate_ids(self.model, self.vocabs.encode_src(sources), self.device, self.cfg, beam_size, n_best,
                             prefix_ids, self.generator)

    def detok(self, ids: Sequence[int]) -> str:
        """Target ids (no BOS/EOS) -> detokenized text."""
        return self.vocabs.decode_tgt(ids)


def _load_model(cfg: TranslationConfig, vocabs: Vocabs, run_dir: Path, which: str, device: str | torch.device
                ) -> tuple[nn.Module, torch.device, Path]:
    model = build_model(cfg.model, vocabs.src.get_piece_size(), vocabs.tgt.get_piece_size(), PAD)
    return load_weights_for_inference(model, run_dir, which, device)


def load_ensemble(model: nn.Module, run_dir: Path, cfg: TranslationConfig, vocabs: Vocabs,
                  members: Sequence[str | Path], which: str, device: torch.device) -> nn.Module:
    """``model`` (the run's own) averaged with ``members``: other run dirs (their ``which`` weights) or weight
    files of the run's own model (:class:`~.search.EnsembleModel`). Raises ``ValueError`` naming both runs when
    a member's source or target subword vocabulary differs from the run's."""
    from .search import EnsembleModel

    models = [model]
    for member in members:
        path = resolve_path(str(member))
        if not path.is_dir():
            models.append(_load_model(cfg, vocabs, run_dir, str(path), device)[0])
            continue
        member_cfg = load_task_config(TranslationConfig, run_config_path(path))
        member_vocabs = Vocabs.load(path, member_cfg.data.joint_vocab)
        for side, name in (("src", "source"), ("tgt", "target")):
            if getattr(vocabs, side).serialized_model_proto() != getattr(member_vocabs, side).serialized_model_proto():
                raise ValueError(f"ensemble: {path} and {run_dir} have different {name} subword vocabularies; "
                                 "an ensemble needs runs trained with the same sentencepiece model")
        models.append(_load_model(member_cfg, member_vocabs, path, which, device)[0])
    return EnsembleModel(models)


def output_text(run: Any, source: str, hyp: Any) -> str:
    """The text of hypothesis ``hyp`` for ``source`` with any run that has ``detok`` (ours, CTranslate2's):
    empty for a blank source (whatever the search made of its lone EOS), so every command gives a blank line
    for a blank input line."""
    return run.detok(hyp.tokens) if source.strip() and hyp is not None else ""


def load_run(run_dir: str | Path, device: str | torch.device = "auto", which: str = "best",
             alpha: float | None = None, decoding: dict | None = None) -> TranslationRun:
    """A trained run ready to translate: ``which`` weights ("best", "latest" or a file); ``alpha`` and
    ``decoding`` (``{key: value}``) override the config's ``decoding`` section (checked as in the config);
    ``decoding.ensemble`` adds other runs or weight files (see :func:`load_ensemble`). Raises
    ``FileNotFoundError`` when ``run_dir`` has no ``config.yaml``."""
    run_dir = Path(run_dir)
    cfg = load_task_config(TranslationConfig, run_config_path(run_dir))
    overrides = {**(decoding or {}), **({} if alpha is None else {"alpha": alpha})}
    if overrides:
        cfg.decoding = replace(cfg.decoding, **overrides)  # re-runs the config checks (alpha >= 0, ...)
    vocabs = Vocabs.load(run_dir, cfg.data.joint_vocab)
    model, dev, weights = _load_model(cfg, vocabs, run_dir, which, device)
    if cfg.decoding.ensemble:
        model = load_ensemble(model, run_dir, cfg, vocabs, cfg.decoding.ensemble, which, dev)
    generator = torch.Generator(device=dev).manual_seed(cfg.decoding.seed) if cfg.decoding.sampling else None
    return TranslationRun(run_dir, cfg, model, dev, weights, vocabs, generator)


def read_prefixes(path: str | Path, count: int) -> list[str]:
    """One target prefix per input line from ``path`` (blank = no prefix); raises ``ValueError`` naming the file
    when it has fewer than ``count`` lines."""
    prefixes = read_lines(resolve_path(str(path)))
    if len(prefixes) < count:
        raise ValueError(f"{path}: {len(prefixes)} prefix lines for {count} input lines (one prefix per input line)")
    return prefixes


def write_heatmaps(run: TranslationRun, sources: Sequence[str], hyps: Sequence[list], out_dir: Path,
                   start: int = 1) -> list[Path]:
    """One PNG per sentence (``out_dir/00001.png``, ... numbered from ``start``): source pieces + </s> on x,
    output pieces + </s> on y. Empty sources are skipped."""
    paths = []
    for i, (source, hyp_list) in enumerate(zip(sources, hyps), start=start):
        if not source or not hyp_list:
            continue
        hyp = hyp_list[0]
        src_pieces = [*run.vocabs.src.encode(source, out_type=str), "</s>"]
        tgt_pieces = [run.vocabs.tgt.id_to_piece(t) for t in hyp.tokens] + ["</s>"]
        weights = hyp.attention[: len(tgt_pieces), : len(src_pieces)]
        paths.append(save_heatmap(weights, src_pieces, tgt_pieces, out_dir / f"{i:05d}.png",
                                  title=f"{source}\n{run.detok(hyp.tokens)}"))
    return paths


def evaluate(run: TranslationRun, src: str | Path, ref: str | Path, beam_size: int | None = None,
             output: Path | None = None, save_attention: Path | None = None, out: TextIO | None = None,
             attention_npz: Path | None = None, attention_heads: Path | None = None, prefix: Path | None = None,
             alignments_out: Path | None = None, align: AlignmentSource | None = None) -> list[CorpusScore]:
    """Translate ``src`` with a loaded ``run``, score against ``ref`` (BLEU, chrF, TER with signatures) and
    print the scores to ``out`` (default: the current ``sys.stdout``). ``attention_npz`` / ``attention_heads``:
    dump every attention matrix / write per-head cross-attention heatmaps (see :mod:`.attention_export`);
    ``prefix``: a file with each line's forced target prefix; ``alignments_out``: write one Pharaoh word
    alignment per line (attention chosen by ``align``). Decoding options come from ``run.cfg.decoding`` (see
    :func:`load_run` for overriding them)."""
    out = sys.stdout if out is None else out
    sources, refs = read_parallel(resolve_path(str(src)), resolve_path(str(ref)))
    if not sources:
        raise ValueError(f"{src}: no sentences to translate (an empty test set cannot be scored)")
    prefixes = None if prefix is None else read_prefixes(prefix, len(sources))[: len(sources)]
    hyps = run.translate(sources, beam_size, prefixes=prefixes)
    outputs = [output_text(run, s, h[0] if h else None) for s, h in zip(sources, hyps)]
    if attention_npz is not None and attention_npz.suffix != ".npz":
        attention_npz = attention_npz.with_name(attention_npz.name + ".npz")  # numpy's rule, said up front
    with StagedOutputs() as stage:  # every output file and folder, or none of them
        if output is not None:  # one line per source line
            stage.file(output).write_text("".join(line + "\n" for line in outputs), encoding="utf-8")
        if alignments_out is not None:
            lines = alignments(run, sources, hyps, align or AlignmentSource())
            stage.file(alignments_out).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        heatmaps = write_heatmaps(run, sources, hyps, stage.folder(save_attention)) if save_attention else []
        if attention_npz is not None or attention_heads is not None:
            write_attention(run.model, run.vocabs, run.device, sources, hyps,
                            attention_npz and stage.file(attention_npz),
                            attention_heads and stage.folder(attention_heads))
    scores = corpus_scores(outputs, refs)
    beam = run.cfg.decoding.beam_size if beam_size is None else beam_size
    print(f"{len(sources)} sentences, beam {beam}, {run.cfg.decoding.describe()}, weights {run.weights}", file=out)
    for s in scores:
        print(f"{s.text}", file=out)
        print(f"  signature: {s.signature}", file=out)
    if save_attention is not None:
        print(f"wrote {len(heatmaps)} attention heatmaps to {save_attention}", file=out)
    for what in (attention_npz, attention_heads):
        if what is not None:
            print(f"wrote attention to {what}", file=out)
    return scores


def _chunks_of_lines(fd: int) -> Iterator[list[str]]:
    """Complete lines as they arrive: everything already readable is one chunk (a batch when piped, one
    line at a time when typed)."""
    pending = b""
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            if pending:
                yield [pending.decode("utf-8", errors="replace")]
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        if lines:
            yield [line.decode("utf-8", errors="replace") for line in lines]


def translate_stream(run: TranslationRun, fd: int, out: TextIO, beam_size: int | None = None, n_best: int = 1,
                     save_attention: Path | None = None, log: Callable[[str], None] | None = None,
                     prefixes: Sequence[str] | None = None, align: AlignmentSource | None = None) -> int:
    """stdin -> stdout: one output line per input line (n-best: ``i ||| text ||| score`` lines). Without
    ``beam_size`` the config's ``decoding.beam_size`` is used, widened to ``n_best`` when that is larger.
    ``prefixes``: line i's translation starts with ``prefixes[i]``; ``align``: append `` ||| `` and the
    Pharaoh word alignment to every output line."""
    if beam_size is None and n_best > run.cfg.decoding.beam_size:
        beam_size = n_best
    count = 0
    for lines in _chunks_of_lines(fd):
        sources = [line.strip() for line in lines]
        if prefixes is not None and len(prefixes) < count + len(sources):
            raise ValueError(f"no prefix for input line {len(prefixes) + 1}: the prefix file has {len(prefixes)} lines")
        hyps = run.translate(sources, beam_size, n_best,
                             None if prefixes is None else prefixes[count : count + len(sources)])
        for i, (source, hyp_list) in enumerate(zip(sources, hyps)):
            if not hyp_list and n_best == 1:  # no finished hypothesis: still one line for the input line
                out.write("\n" if align is None else " ||| \n")
            for h in hyp_list[:1] if n_best == 1 else hyp_list:
                text = output_text(run, source, h)
                line = text if n_best == 1 else f"{count + i} ||| {text} ||| {h.score:.4f}"
                if align is not None:
                    line += f" ||| {hypothesis_alignment(run, source, h, align)}"
                out.write(line + "\n")
        out.flush()
        if save_attention is not None:
            write_heatmaps(run, sources, hyps, save_attention, start=count + 1)
        count += len(sources)
    if log is not None:
        log(f"translated {count} lines")
    return count
