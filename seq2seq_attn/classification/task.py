"""Classification as a trainer ``Task``: documents are encoded once, batched by similar length and scored
with cross-entropy; validation reports accuracy, macro-F1 and loss."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..attention import sampled_attention
from ..layers import length_batches
from ..training.checkpoint import read_latest
from ..training.task import StepOutput
from .config import ClassificationConfig, DataConfig
from .data import (
    LABELS_FILE,
    BadRow,
    RawExample,
    check_labels,
    hold_out,
    label_set,
    load_labels,
    read_split,
    save_labels,
)
from .mapped import EncodedRows, MappedDocs, RowIndex, training_texts
from .metrics import confusion_matrix, report
from .models import ClassifierOutput, build_model
from .text import EncodedDoc, Vocab, build_vocab, encode, load_vocab
from .transfer import init_from_run, init_from_vectors, source_words, union_vocab

log = logging.getLogger(__name__)


@dataclass
class EncodedSplit:
    docs: Sequence[EncodedDoc]  # a list, or the on-disk MappedDocs of a training file
    labels: np.ndarray  # (N,) int64 class indices

    def __len__(self) -> int:
        return len(self.docs)


def encode_split(examples: list[RawExample], labels: list[str], vocab: Vocab, cfg: DataConfig,
                 hierarchical: bool) -> EncodedSplit:
    index = {name: i for i, name in enumerate(labels)}
    docs = [encode(ex.text, vocab, cfg, hierarchical) for ex in examples]
    return EncodedSplit(docs, np.asarray([index[ex.label] for ex in examples], dtype=np.int64))


def collate_docs(docs: Sequence[EncodedDoc], hierarchical: bool) -> dict[str, torch.Tensor]:
    """Pad documents into model inputs.

    Flat: ``tokens`` (B, T), ``lengths`` (B,). Hierarchical: ``tokens`` (B, S, W), ``sentence_lengths``
    (B, S). A document with no tokens gets length 0 (its attention weights are all zero).
    """
    if not hierarchical:
        lengths = torch.tensor([len(d.ids) for d in docs], dtype=torch.long)
        tokens = torch.zeros(len(docs), max(1, int(lengths.max())), dtype=torch.long)
        for i, d in enumerate(docs):
            tokens[i, : len(d.ids)] = torch.from_numpy(d.ids.astype(np.int64))
        return {"tokens": tokens, "lengths": lengths}
    num_sents = max(1, max(len(d.sentence_lengths) for d in docs))
    width = max(1, max((int(d.sentence_lengths.max()) for d in docs if len(d.sentence_lengths)), default=1))
    tokens = torch.zeros(len(docs), num_sents, width, dtype=torch.long)
    sentence_lengths = torch.zeros(len(docs), num_sents, dtype=torch.long)
    for i, d in enumerate(docs):
        start = 0
        for j, n in enumerate(d.sentence_lengths.tolist()):
            tokens[i, j, :n] = torch.from_numpy(d.ids[start:start + n].astype(np.int64))
            sentence_lengths[i, j] = n
            start += n
    return {"tokens": tokens, "sentence_lengths": sentence_lengths}


@torch.no_grad()
def predict_docs(model: nn.Module, docs: Sequence[EncodedDoc], hierarchical: bool, batch_size: int,
                 device: torch.device) -> list[ClassifierOutput]:
    """Run ``model`` over ``docs`` in length-sorted batches; outputs come back in input order, on the CPU."""
    was_training = model.training
    model.eval()
    outs: list[ClassifierOutput | None] = [None] * len(docs)
    for idx in length_batches([len(d.ids) for d in docs], batch_size=batch_size):
        batch = {k: v.to(device) for k, v in collate_docs([docs[i] for i in idx], hierarchical).items()}
        out = model(**batch)
        for row, i in enumerate(idx):
            sw = out.sentence_weights[row].float().cpu() if out.sentence_weights is not None else None
            outs[i] = ClassifierOutput(out.logits[row].float().cpu(), out.token_weights[row].float().cpu(), sw)
    model.train(was_training)
    return outs  # type: ignore[return-value]


def evaluate_split(model: nn.Module, split: EncodedSplit, labels: list[str], hierarchical: bool,
                   batch_size: int, device: torch.device) -> tuple[dict, np.ndarray]:
    """Metrics (accuracy, macro-F1, loss, per-class) and the confusion matrix of ``model`` on ``split``."""
    outs = predict_docs(model, split.docs, hierarchical, batch_size, device)
    logits = torch.stack([o.logits for o in outs])  # (N, C)
    target = torch.from_numpy(split.labels)
    cm = confusion_matrix(split.labels, logits.argmax(-1).numpy(), len(labels))
    metrics = report(cm, labels)
    metrics["loss"] = float(F.cross_entropy(logits, target))
    return metrics, cm


class ClassificationData:
    """The label set, the vocabulary and the encoded train and valid splits of one config (the test split is
    read after training, by :func:`load_split`)."""

    def __init__(self, cfg: ClassificationConfig, run_dir: Path | None = None, resume: bool = False) -> None:
        """Read and encode the data. ``resume`` reuses the label set and vocabulary saved in ``run_dir`` (so a
        resumed run sees exactly the same ids; required when it holds a checkpoint); otherwise they are built
        here and written by :meth:`save` (the Trainer calls it through the task once its checks passed)."""
        data = cfg.data
        # Saved files are reused when resuming; a checkpoint without them is an error (FileNotFoundError).
        reuse = resume and run_dir is not None and (read_latest(run_dir) is not None
                                                    or (Path(run_dir) / LABELS_FILE).is_file())
        self.saved = reuse
        self.hierarchical = cfg.model.type == "han"
        rows = RowIndex.build(data.train, data)
        self.num_bad = rows.num_bad
        # The files may be sorted by label (IMDB): always shuffle, seeded, before holding out or truncating.
        train = np.random.default_rng(cfg.training.seed).permutation(len(rows))
        if data.max_train_docs is not None:
            train = train[: data.max_train_docs]
        if reuse:
            self.labels = load_labels(run_dir)
        else:
            self.labels = label_set(rows.label_names(train), data)
        valid_rows = None
        valid: list[RawExample] = []
        if data.valid is not None:
            valid = self._read(data.valid, data)
        elif data.valid_fraction > 0:
            train_list, valid_list = hold_out(train, data.valid_fraction, cfg.training.seed)
            train, valid_rows = np.asarray(train_list, dtype=np.int64), np.asarray(valid_list, dtype=np.int64)
        label_index = rows.label_index(self.labels)
        train = self._known(rows, train, label_index, data)
        if valid_rows is not None:
            valid_rows = self._known(rows, valid_rows, label_index, data)

        if reuse:
            self.vocab = load_vocab(Path(run_dir))
        else:
            self.vocab = build_vocab(training_texts(rows, train, data, data.tokenizer == "sentencepiece"), data)
            if cfg.model.init_vocab == "union":
                self.vocab = union_vocab(self.vocab, source_words(cfg.model.init_from,
                                                                  cfg.model.pretrained_embeddings))
        encoded = EncodedRows.build(rows, self.vocab, data, self.hierarchical)
        self.train: EncodedSplit = EncodedSplit(MappedDocs(encoded, train), label_index[train])
        self.valid: EncodedSplit | None = None
        if valid_rows is not None and len(valid_rows):
            self.valid = EncodedSplit(MappedDocs(encoded, valid_rows), label_index[valid_rows])
        elif valid:
            self.valid = encode_split(valid, self.labels, self.vocab, data, self.hierarchical)
        sizes = f"train {len(self.train)}, valid {len(self.valid) if self.valid else 0}"
        log.info("data: %s documents; %d labels; vocabulary %d; %d bad rows skipped",
                 sizes, len(self.labels), len(self.vocab), self.num_bad)

    def _known(self, rows: RowIndex, subset: np.ndarray, label_index: np.ndarray, data: DataConfig) -> np.ndarray:
        """``subset`` without the rows whose label is not in the label set: counted as bad rows with
        ``data.skip_bad_rows``, else an error naming the first such row."""
        unknown = label_index[subset] < 0
        if unknown.any():
            if not data.skip_bad_rows:
                first = int(subset[np.flatnonzero(unknown)[0]])
                ex = next(ex for i, ex in rows.rows(data) if i == first)
                raise BadRow(f"{ex.source}: unknown label {ex.label!r} (labels: {', '.join(self.labels)})")
            self.num_bad += int(unknown.sum())
        return subset[~unknown]

    def _read(self, spec: str, data: DataConfig) -> list[RawExample]:
        split = check_labels(read_split(spec, data), self.labels, data)
        self.num_bad += split.num_bad
        return split.examples

    def save(self, run_dir: Path) -> None:
        """Write the vocabulary and ``labels.json`` into ``run_dir``."""
        run_dir.mkdir(parents=True, exist_ok=True)
        self.vocab.save(run_dir)
        save_labels(run_dir, self.labels)


def load_split(cfg: ClassificationConfig, vocab: Vocab, labels: list[str], spec: str) -> tuple[EncodedSplit, int]:
    """Encode one labelled file (``spec``, in the format of ``cfg.data``) with a trained run's vocabulary and
    labels; returns it and the number of bad rows skipped (rows with an unknown label raise unless
    ``data.skip_bad_rows``). ``data.max_test_docs`` keeps a random subset of that many documents, the same
    one every time (seed 0, in file order: the files may be sorted by label)."""
    split = check_labels(read_split(spec, cfg.data), labels, cfg.data)
    limit = cfg.data.max_test_docs
    if limit is not None and len(split.examples) > limit:
        keep = np.sort(np.random.default_rng(0).permutation(len(split.examples))[:limit])
        split.examples = [split.examples[i] for i in keep]
    encoded = encode_split(split.examples, labels, vocab, cfg.data, cfg.model.type == "han")
    return encoded, split.num_bad


class ClassificationTask:
    """The trainer's view of a classification config (see :mod:`seq2seq_attn.training.task`)."""

    unit = "doc"
    #: Keys that change what the saved weights' rows mean (label set and order, the vocabulary and the text
    #: it is built from): a resume with any of them changed is refused.
    resume_keys = ("data.labels", "data.label_names", "data.trec_fine", "data.label_column", "data.tokenizer",
                   "data.vocab_size", "data.min_freq", "data.lowercase", "data.strip_html", "data.undo_ptb")

    def __init__(self, cfg: ClassificationConfig, data: ClassificationData, resume: bool = False) -> None:
        self.cfg = cfg
        self.data = data
        self.resume = resume
        docs = data.train.docs
        self._lengths = docs.lengths if isinstance(docs, MappedDocs) else np.asarray([len(d.ids) for d in docs])

    def write_run_files(self, run_dir: Path) -> None:
        """Save the vocabulary and label set (the Trainer calls this after its checks)."""
        if not self.data.saved:
            self.data.save(Path(run_dir))
            self.data.saved = True

    def build_model(self) -> nn.Module:
        model = build_model(self.cfg.model, len(self.data.vocab), len(self.data.labels))
        # A resumed run gets its weights from its own checkpoint (the Trainer's rule: --resume and a
        # checkpoint), so the source run is not read again; --overwrite starts from the source.
        resuming = self.resume and read_latest(self.cfg.training.run_dir) is not None
        if self.cfg.model.init_from is not None and not resuming:
            report = init_from_run(model, self.cfg.model.init_from, self.data.vocab, self.data.labels)
            print(report.summary(len(self.data.vocab), len(self.data.labels)))
        if self.cfg.model.pretrained_embeddings is not None and not resuming:
            found = init_from_vectors(model, self.cfg.model.pretrained_embeddings, self.data.vocab)
            print(f"pretrained embeddings {self.cfg.model.pretrained_embeddings}: {found}/{len(self.data.vocab)} "
                  f"words found")
        return model

    def train_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.cfg.training.seed, epoch])
        d = self.cfg.data
        return length_batches(self._lengths, batch_size=d.batch_size, rng=rng, bucket=d.bucket)

    def collate(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = collate_docs([self.data.train.docs[i] for i in indices], self.data.hierarchical)
        batch["labels"] = torch.from_numpy(self.data.train.labels[list(indices)])
        return batch

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with sampled_attention(model) as samples:  # stochastic attention records its samples
            out = model(**inputs)
        labels = batch["labels"]
        loss_sum = F.cross_entropy(out.logits.float(), labels, reduction="sum")
        hits = out.logits.argmax(-1) == labels  # (B,)
        n = labels.numel()
        logs = {"acc": hits.sum().item() / max(1, n)}
        # REINFORCE reward of hard attention: 1 for a correct classification, 0 otherwise
        loss_sum = samples.add_to(loss_sum, lambda: hits.float(), logs)
        return StepOutput(loss_sum, n, n, logs)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        split = self.data.valid if self.data.valid is not None else self.data.train
        metrics, _ = evaluate_split(model, split, self.data.labels, self.data.hierarchical,
                                    self.cfg.data.eval_batch_size, device)
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "loss": metrics["loss"]}
