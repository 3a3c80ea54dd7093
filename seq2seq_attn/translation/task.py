"""The translation task for the Trainer: data, model, label-smoothed loss and dev evaluation (loss and BLEU)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..attention import sampled_attention
from ..layers import RaggedView, length_batches
from ..training.task import StepOutput
from .config import SearchOptions, TranslationConfig
from .corpus import iter_corpus, read_corpus
from .data import Batch, collate_pairs, filter_encoded, filter_pairs
from .metrics import corpus_bleu
from .models import build_model
from .prepare import prepare
from .search import search
from .subwords import BOS, EOS, PAD, Vocabs


def label_smoothed_nll(logits: torch.Tensor, target: torch.Tensor, epsilon: float, ignore_index: int = PAD
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over non-pad targets of ``(1 - eps) * nll + eps * mean_v(-log p_v)`` (Szegedy et al., 2016, as in
    fairseq); also returns the summed plain NLL. logits (..., V), target (...)."""
    lprobs = torch.log_softmax(logits.float(), dim=-1)
    keep = target != ignore_index
    nll = -lprobs.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (...)
    nll = nll.masked_fill(~keep, 0.0).sum()
    if epsilon == 0:
        return nll, nll
    smooth = (-lprobs.mean(-1)).masked_fill(~keep, 0.0).sum()
    return (1 - epsilon) * nll + epsilon * smooth, nll


def sentence_nll(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = PAD) -> torch.Tensor:
    """Per-sentence NLL summed over its non-pad targets: logits (B, T, V), target (B, T) -> (B,)."""
    lprobs = torch.log_softmax(logits.float(), dim=-1)
    nll = -lprobs.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (B, T)
    return nll.masked_fill(target == ignore_index, 0.0).sum(-1)


def pair_lengths(src: Sequence[list[int]], tgt: Sequence[list[int]]) -> np.ndarray:
    """(N,) the batching length of each pair: ``max(len(source + EOS), len(target) + 1)``; from the stored
    lengths alone (int32, no int64 copy) when both sides are views of encoded arrays."""
    if isinstance(src, RaggedView) and isinstance(tgt, RaggedView):
        lengths = tgt.lengths
        lengths += 1
        return np.maximum(lengths, src.lengths, out=lengths)
    return np.asarray([max(len(s), len(t) + 1) for s, t in zip(src, tgt)], dtype=np.int64)


def _kept_text(cfg: TranslationConfig, keep: np.ndarray) -> tuple[list[str], list[str]]:
    """The text of the training pairs ``keep`` (ascending indices), streamed from the files."""
    wanted = np.zeros(int(keep[-1]) + 1, dtype=bool)
    wanted[keep] = True
    src, tgt = [], []
    for i, (s, t) in enumerate(iter_corpus(cfg.data.train, cfg.data)):
        if i < len(wanted) and wanted[i]:
            src.append(s)
            tgt.append(t)
    return src, tgt


class TranslationTask:
    unit = "tok"

    #: Keys that change what the saved weights' ids mean: a resume with any of them changed is refused.
    resume_keys = ("data.joint_vocab", "data.vocab_size", "data.spm_type", "data.character_coverage",
                   "data.spm_max_sentences")

    def __init__(self, cfg: TranslationConfig, run_dir: str | Path, log: Callable[[str], None] = print,
                 resume: bool = False) -> None:
        """Read and encode the corpora. The subword models are trained in memory (written by
        :meth:`write_run_files` once the Trainer's checks have passed); ``resume`` reuses those of the run dir
        when it has them (and requires them when it holds a checkpoint)."""
        self.cfg, self.run_dir, self.log = cfg, Path(run_dir), log
        d = cfg.data
        self.vocabs, self.pairs = prepare(cfg, self.run_dir, log, resume=resume)
        self.vocabs_saved = resume and all(p.is_file() for p in Vocabs.paths(self.run_dir, d.joint_vocab))
        where = self.pairs.where
        keep, report = filter_encoded(self.pairs.src.lengths, self.pairs.tgt.lengths, self.pairs.empty, d.max_len,
                                      d.max_ratio)
        log(report.describe(f"train ({where})", d.max_len, d.max_ratio))
        if not len(keep):
            summary = report.describe("train", d.max_len, d.max_ratio)
            raise ValueError(f"training corpus {where} is empty after filtering ({summary})")
        # The kept pairs, read from the memory map on demand: source + EOS, target without.
        self.train_src: Sequence[list[int]] = RaggedView(self.pairs.src, keep, (EOS,))
        self.train_tgt: Sequence[list[int]] = RaggedView(self.pairs.tgt, keep)
        # Best segmentations (the filters' view) and, only when sampling subwords each epoch, the kept pairs'
        # text (held in memory: sampling runs re-encode it every epoch).
        self.best_src, self.best_tgt = self.train_src, self.train_tgt
        self.train_text = _kept_text(cfg, keep) if d.sampling_alpha is not None else None
        self.sampled_epoch: int | None = None  # the epoch whose sampled segmentation train_src/train_tgt hold
        # Dev: only empty pairs are dropped, so the dev BLEU is on (almost) the whole set.
        dev_src, dev_tgt, dev_where = read_corpus(d.dev, d)
        dev_keep, dev_report = filter_pairs(dev_src, dev_tgt, dev_src, dev_tgt, None, None)
        log(f"dev ({dev_where}): {dev_report.total} pairs, dropped {dev_report.empty} empty")
        if not dev_keep:
            raise ValueError(f"dev corpus {dev_where} is empty")
        self.dev_src = self.vocabs.encode_src([dev_src[i] for i in dev_keep])
        self.dev_tgt = self.vocabs.encode_tgt([dev_tgt[i] for i in dev_keep])
        self.dev_refs = [dev_tgt[i] for i in dev_keep]

    def write_run_files(self, run_dir: Path) -> None:
        """Save the subword models into the run dir (the Trainer calls this after its checks)."""
        if not self.vocabs_saved:
            self.vocabs.save(Path(run_dir))
            self.vocabs_saved = True

    @property
    def src_vocab_size(self) -> int:
        return self.vocabs.src.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        return self.vocabs.tgt.get_piece_size()

    def build_model(self) -> nn.Module:
        return build_model(self.cfg.model, self.src_vocab_size, self.tgt_vocab_size, PAD)

    def resample_subwords(self, seed: int) -> None:
        """Subword regularization (``data.sampling_alpha``): a new sampled segmentation of every training pair;
        a pair whose sample is longer than ``data.max_len`` keeps its best segmentation."""
        d = self.cfg.data
        src, tgt = self.vocabs.sample(*self.train_text, d.sampling_alpha, d.sampling_nbest_size, seed)
        long = [max(len(s), len(t) + 1) > d.max_len for s, t in zip(src, tgt)]
        self.train_src = [b if x else s for s, b, x in zip(src, self.best_src, long)]
        self.train_tgt = [b if x else t for t, b, x in zip(tgt, self.best_tgt, long)]

    def train_batches(self, epoch: int) -> list[np.ndarray]:
        d = self.cfg.data
        seed = self.cfg.training.seed * 100_003 + epoch  # the streams every earlier run used: same batches
        if d.sampling_alpha is not None and self.sampled_epoch != epoch:  # the Trainer asks twice for epoch 0
            self.resample_subwords(seed % 2**32)
            self.sampled_epoch = epoch
        lengths = pair_lengths(self.train_src, self.train_tgt)
        rng, shuffle_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
        if d.batch_mode == "tokens":
            batches = length_batches(lengths, max_tokens=d.max_tokens, rng=rng, shuffle_rng=shuffle_rng)
        else:
            batches = length_batches(lengths, batch_size=d.batch_size, rng=rng, shuffle_rng=shuffle_rng)
        # One integer array per batch (token mode: views of one int32 order, 4 bytes a pair for the epoch), not
        # a Python int object per pair (36 bytes).
        return [b if isinstance(b, np.ndarray) else np.asarray(b, dtype=np.int64) for b in batches]

    def collate(self, indices: Sequence[int]) -> Batch:
        indices = np.asarray(indices, dtype=np.int64).tolist()
        return collate_pairs([self.train_src[i] for i in indices], [self.train_tgt[i] for i in indices], indices)

    def loss(self, model: nn.Module, batch: Batch) -> StepOutput:
        with sampled_attention(model) as samples:  # stochastic attention records its samples
            logits = model(batch.src, batch.src_pad_mask, batch.tgt_in)  # (B, T, V)
        loss, nll = label_smoothed_nll(logits, batch.tgt_out, self.cfg.label_smoothing)
        tokens = batch.num_tokens
        units = tokens + int((~batch.src_pad_mask).sum())
        logs = {"nll": float(nll.detach()) / max(1, tokens)}
        # REINFORCE reward of hard attention (Xu et al., 2015): log p(y | x, s), the negative sentence NLL
        loss = samples.add_to(loss, lambda: -sentence_nll(logits.detach(), batch.tgt_out), logs)
        return StepOutput(loss, tokens, units, logs)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Dev loss (plain NLL per token, perplexity) and greedy BLEU."""
        bs = self.cfg.data.eval_batch_size
        nll_sum, tokens = 0.0, 0
        for idx in length_batches([len(s) for s in self.dev_src], batch_size=bs):
            batch = collate_pairs([self.dev_src[i] for i in idx], [self.dev_tgt[i] for i in idx], idx).to(device)
            logits = model(batch.src, batch.src_pad_mask, batch.tgt_in)
            nll_sum += float(label_smoothed_nll(logits, batch.tgt_out, 0.0)[1])
            tokens += batch.num_tokens
        n_bleu = self.cfg.data.dev_bleu_sentences or len(self.dev_src)
        # Plain greedy search, whatever the decoding section says (sampling, penalties).
        hyps = translate_ids(model, self.dev_src[:n_bleu], device, self.cfg, 1, options=SearchOptions())
        bleu = corpus_bleu([self.vocabs.decode_tgt(h[0].tokens) for h in hyps], self.dev_refs[:n_bleu])
        loss = nll_sum / max(1, tokens)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0)), "bleu": bleu}

    def translate_ids(self, model: nn.Module, src_ids: Sequence[list[int]], device: torch.device,
                      beam_size: int | None = None, n_best: int = 1) -> list:
        return translate_ids(model, src_ids, device, self.cfg, beam_size, n_best)


@torch.no_grad()
def translate_ids(model: nn.Module, src_ids: Sequence[list[int]], device: torch.device | str,
                  cfg: TranslationConfig, beam_size: int | None = None, n_best: int = 1,
                  prefixes: Sequence[list[int]] | None = None, generator: torch.Generator | None = None,
                  options: SearchOptions | None = None) -> list:
    """Search every sentence (batched by length, results in input order) with ``options`` (default: the
    ``cfg.decoding`` section); one list of hypotheses each. ``prefixes``: per sentence the target ids its
    translation starts with; ``generator``: the random source of sampling (default: seeded with ``seed``)."""
    dec = cfg.decoding
    opts = dec if options is None else options
    beam_size = dec.beam_size if beam_size is None else beam_size
    if opts.sampling and generator is None:
        generator = torch.Generator(device=device).manual_seed(opts.seed)
    was_training = model.training
    model.eval()
    results: list = [None] * len(src_ids)
    for idx in length_batches([len(s) for s in src_ids], batch_size=dec.batch_size):
        batch = collate_pairs([src_ids[i] for i in idx], None, idx).to(device)
        src_lens = (~batch.src_pad_mask).sum(-1)
        max_len = (dec.max_len_a * src_lens.float()).ceil().long() + dec.max_len_b  # (B,)
        hyps = search(model, batch.src, batch.src_pad_mask, BOS, EOS, max_len, beam_size, n_best, opts,
                      None if prefixes is None else [prefixes[i] for i in idx], generator)
        for i, h in zip(idx, hyps):
            results[i] = h
    model.train(was_training)
    return results
