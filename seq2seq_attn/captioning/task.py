"""The captioning task for the one Trainer: images and captions from the data side, a word vocabulary, the
Show-Attend-Tell model, its loss (cross-entropy + the doubly stochastic penalty + the hard attention's
REINFORCE term, collected exactly as the translation task does) and the evaluation of :mod:`.evaluation`.

Run files: ``vocab.json`` (the classification task's :class:`~seq2seq_attn.classification.text.WordVocab`
format, with ``<pad>`` ``<unk>`` ``<s>`` ``</s>`` at the translation ids 0-3) and ``caption_inputs.json``
(normalization and image size), so that a run loads and predicts without its data.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vision.data import augment, batch_seed, channel_stats

from ..attention import sampled_attention
from ..classification.text import WordVocab, load_vocab
from ..training.checkpoint import atomic_write_json
from ..training.task import StepOutput
from ..translation.config import SearchOptions
from ..translation.metrics import CorpusScore
from ..translation.subwords import PAD
from ..translation.task import label_smoothed_nll, sentence_nll
from .config import CaptionConfig
from .data import flip_boxes
from .evaluation import finish_metrics, pad_captions, search_images, teacher_forced, word_correctness
from .model import CaptionModel, build_caption_model, doubly_stochastic_penalty

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]  # ids PAD, UNK, BOS, EOS of the translation code
INPUTS_FILE = "caption_inputs.json"


def build_vocab(captions: Sequence[Sequence[Sequence[str]]], min_freq: int) -> WordVocab:
    """Words of the training captions seen at least ``min_freq`` times, most frequent first (ties
    alphabetical), after the four special tokens."""
    counts: Counter[str] = Counter(w for image in captions for caption in image for w in caption)
    words = sorted((w for w, c in counts.items() if c >= min_freq and w not in SPECIALS),
                   key=lambda w: (-counts[w], w))
    return WordVocab(SPECIALS + words)


def load_caption_vocab(run_dir: Path) -> WordVocab:
    """``run_dir/vocab.json``; ``ValueError`` naming it when it is not a caption vocabulary."""
    vocab = load_vocab(run_dir)
    if not isinstance(vocab, WordVocab) or vocab.itos[:4] != SPECIALS:
        raise ValueError(f"{Path(run_dir) / 'vocab.json'}: not a captioning vocabulary (expected {SPECIALS} first)")
    return vocab


@dataclass(frozen=True)
class CaptionInputs:
    """What inference needs of a run's images: per-channel ``mean``/``std`` (of images in [0, 1]) and the
    size ``channels`` x ``height`` x ``width`` the images are resized to."""

    mean: list[float]
    std: list[float]
    channels: int
    height: int
    width: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def save(self, run_dir: Path) -> None:
        atomic_write_json(Path(run_dir) / INPUTS_FILE, asdict(self))

    @classmethod
    def load(cls, run_dir: Path) -> CaptionInputs:
        path = Path(run_dir) / INPUTS_FILE
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: missing (not a captioning run dir?)") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: malformed ({e})") from None


def load_splits(cfg: CaptionConfig, names: Sequence[str]) -> list[Any]:
    """The data side's :class:`~seq2seq_attn.captioning.data.CaptionSet` of each split name."""
    from .data import load_caption_split

    return [load_caption_split(cfg.data, name) for name in names]


class CaptionTask:
    """The Trainer's view of captioning (see ``seq2seq_attn.training.task.Task``). An example is one
    (image, caption) pair; ``data``: (train, valid) CaptionSets already read (else read from ``cfg.data``)."""

    unit = "tok"
    #: a resume with any of these changed is refused (the vocabulary or the normalization would change)
    resume_keys = ("data", "train_split", "min_freq", "mean", "std")

    def __init__(self, cfg: CaptionConfig, data: tuple[Any, Any] | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.cfg = cfg
        self.train_set, self.valid_set = data if data is not None else load_splits(
            cfg, (cfg.train_split, cfg.valid_split))
        if not len(self.train_set.captions):
            raise ValueError(f"split {cfg.train_split!r} has no images")
        if cfg.flip_boxes and self.train_set.boxes is None:
            raise ValueError(f"flip_boxes: the {cfg.train_split!r} split has no word boxes (only the built-in "
                             f"digit_strings / cifar_mosaics sets have them); set flip_boxes: false")
        self.vocab = build_vocab(self.train_set.captions, cfg.min_freq)
        self.pairs = [(i, j) for i, caps in enumerate(self.train_set.captions) for j in range(len(caps))]
        self.train_ids = [[self.vocab.to_ids(list(c)) for c in caps] for caps in self.train_set.captions]
        mean, std = (cfg.mean, cfg.std) if cfg.mean is not None else channel_stats(self.train_set.images)
        c, h, w = self.train_set.images.shape[1:]
        if len(mean) != c:
            raise ValueError(f"mean/std have {len(mean)} values for {c}-channel images")
        self.inputs = CaptionInputs([float(v) for v in mean], [float(v) for v in std], int(c), int(h), int(w))
        log(f"captioning: {len(self.train_set.captions)} training images, {len(self.pairs)} captions, "
            f"{len(self.vocab)} words (with 4 specials); {len(self.valid_set.captions)} validation images")

    def write_run_files(self, run_dir: Path) -> None:
        """``vocab.json`` and ``caption_inputs.json`` (the Trainer calls this after its checks)."""
        self.vocab.save(Path(run_dir))
        self.inputs.save(Path(run_dir))

    def build_model(self) -> nn.Module:
        return build_caption_model(self.cfg.model, len(self.vocab), self.inputs.image_shape, self.inputs.mean,
                                   self.inputs.std, PAD, pretrained=True)

    def train_batches(self, epoch: int) -> list[list[int]]:
        """A fresh permutation of the (image, caption) pairs per epoch, from (seed, epoch) only."""
        g = torch.Generator().manual_seed(self.cfg.training.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.pairs), generator=g).tolist()
        bs = self.cfg.batch_size
        return [order[i:i + bs] for i in range(0, len(order), bs)]

    def collate(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        pairs = [self.pairs[i] for i in indices]
        tgt_in, tgt_out = pad_captions([self.train_ids[i][j] for i, j in pairs])
        images = self.train_set.images[torch.tensor([i for i, _ in pairs], dtype=torch.long)]
        images = self.augment_batch(images, pairs)
        return {"images": images, "tgt_in": tgt_in, "tgt_out": tgt_out}  # uint8 (B, C, H, W), (B, T) x 2

    def augment_batch(self, images: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
        """The config's training augmentation of a batch (uint8 (B, C, H, W) -> same), seeded by the run's seed
        and the batch's (image, caption) pairs (``vision.data.batch_seed``), so resuming is exact."""
        cfg = self.cfg
        if not cfg.flip_boxes and cfg.crop_padding == 0:
            return images
        g = torch.Generator().manual_seed(batch_seed(cfg.training.seed, torch.tensor(pairs).flatten()))
        if cfg.flip_boxes:
            images = flip_boxes(images, [self.train_set.boxes[i][j] for i, j in pairs], g)
        if cfg.crop_padding > 0:
            images = augment(images, g, padding=cfg.crop_padding, flip=False)
        return images

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        tgt_out = batch["tgt_out"]
        with sampled_attention(model) as samples:  # hard attention records its samples
            logits, alphas = model(batch["images"], None, batch["tgt_in"], return_attention=True)
        loss, nll = label_smoothed_nll(logits, tgt_out, self.cfg.label_smoothing)
        keep = tgt_out != PAD
        tokens = int(keep.sum())
        logs = {"nll": float(nll.detach()) / max(1, tokens)}
        lam = self.cfg.model.decoder.doubly_stochastic
        if lam > 0:
            penalty = doubly_stochastic_penalty(alphas.float(), keep, lam)
            logs["doubly_stochastic"] = float(penalty.detach()) / len(tgt_out)
            loss = loss + penalty
        # REINFORCE reward of hard attention (Xu et al., 2015): log p(y | a, s), the negative caption NLL
        loss = samples.add_to(loss, lambda: -sentence_nll(logits.detach(), tgt_out), logs)
        return StepOutput(loss, tokens, tokens, logs)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Greedy captions of the validation images (the first ``eval_images``), scored as
        :func:`evaluate_captions` says."""
        return evaluate_captions(model, self.valid_set, self.vocab, device, self.cfg, self.cfg.eval_images)


def evaluate_captions(model: CaptionModel, data: Any, vocab: WordVocab, device: torch.device | str,
                      cfg: CaptionConfig, limit: int | None = None, beam_size: int = 1) -> dict[str, float]:
    """Loss/perplexity (teacher forcing on every caption), and on the captions found with ``beam_size``
    (greedy by default, no length penalty): BLEU, chrF, word accuracy, exact captions (%), and attention
    correctness when the set has boxes (see :mod:`.evaluation`)."""
    return score_captions(model, data, vocab, device, cfg, limit, beam_size)[0]


@torch.no_grad()
def score_captions(model: CaptionModel, data: Any, vocab: WordVocab, device: torch.device | str,
                   cfg: CaptionConfig, limit: int | None = None, beam_size: int = 1,
                   options: SearchOptions | None = None) -> tuple[dict[str, float], list[CorpusScore]]:
    """:func:`evaluate_captions`'s metrics and sacrebleu's BLEU and chrF results (with signatures);
    ``options``: the search's (default: plain, no length penalty)."""
    count = len(data.captions) if limit is None else min(limit, len(data.captions))
    if count == 0:
        raise ValueError("no images to evaluate")
    images = data.images[:count]
    hyps = search_images(model, images, device, cfg.decoding.max_len_b, beam_size, options=options,
                         batch_size=cfg.eval_batch_size)
    hypotheses = [[vocab.itos[t] for t in h[0].tokens] if h else [] for h in hyps]
    references = [[list(c) for c in caps] for caps in data.captions[:count]]
    was_training = model.training
    model.eval()
    nll, tokens, correctness = 0.0, 0, []
    grid = model.encoder.grid(*images.shape[-2:])
    pairs = [(i, j) for i in range(count) for j in range(len(data.captions[i]))]
    for start in range(0, len(pairs), cfg.eval_batch_size):
        chunk = pairs[start:start + cfg.eval_batch_size]
        ids = [vocab.to_ids(list(data.captions[i][j])) for i, j in chunk]
        index = torch.tensor([i for i, _ in chunk], dtype=torch.long)
        part_nll, part_tokens, alphas = teacher_forced(model, images[index], ids, device)
        nll, tokens = nll + part_nll, tokens + part_tokens
        if data.boxes is not None:
            correctness += word_correctness(alphas, [data.boxes[i][j] for i, j in chunk], [len(x) for x in ids],
                                            grid, tuple(images.shape[-2:]))
    model.train(was_training)
    return finish_metrics(hypotheses, references, nll, tokens, correctness)
