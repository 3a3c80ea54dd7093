"""The ``classify`` config: ``data``, ``model`` and ``training`` sections (see ``configs/cls_*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..attention.normalize import check_normalizer_name, check_normalizer_options
from ..training.config import TrainingConfig

FORMATS = ("csv", "tsv", "jsonl", "label_first", "trec", "hf")


@dataclass
class DataConfig:
    """Where the documents come from and how they become token ids.

    Paths starting with ``shared:`` are resolved in the shared dataset folder (``seq2seq_attn.paths``).
    ``format``: ``csv``/``tsv`` (header row; ``.gz`` is read transparently), ``jsonl`` (one object a line),
    ``label_first`` (``<label> <text>`` per line, e.g. SST), ``trec`` (``COARSE:fine text`` per line) or
    ``hf`` (``datasets.load_dataset(hf_name, hf_config, data_files=...)``: with a builder name such as
    ``csv`` or ``json`` the split entries are local files, otherwise they are split names).
    """

    format: Literal["csv", "tsv", "jsonl", "label_first", "trec", "hf"] = "csv"
    train: str = ""
    valid: str | None = None
    test: str | None = None
    valid_fraction: float = 0.0  # held out from train (after a seeded shuffle) when there is no valid split
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "utf-8"
    trec_fine: bool = False  # trec: use the 50 fine labels (COARSE:fine) instead of the 6 coarse ones
    hf_name: str | None = None
    hf_config: str | None = None
    label_names: dict[str, str] | None = None  # raw label -> display name, e.g. {"0": neg, "1": pos}
    labels: list[str] | None = None  # the label set and its order; default: sorted labels of the train split
    skip_bad_rows: bool = False
    max_train_docs: int | None = None  # use only the first N (shuffled) training documents
    max_test_docs: int | None = None  # score a seeded random subset of N documents of a test file (all: None)
    # text -> tokens
    lowercase: bool = True
    strip_html: bool = True
    undo_ptb: bool = False  # undo Penn Treebank tokenization first ("does n't" -> "doesn't", -lrb- -> "(")
    tokenizer: Literal["word", "sentencepiece"] = "word"
    vocab_size: int = 30000
    min_freq: int = 2
    max_tokens: int | None = 400  # truncate documents (after tokenization)
    max_sentences: int | None = 40  # HAN: keep the first N sentences
    max_sentence_tokens: int | None = 60  # HAN: truncate each sentence
    # batching
    batch_size: int = 64
    eval_batch_size: int = 256
    bucket: bool = True  # group documents of similar length into batches

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train is required")
        if self.format == "hf" and not self.hf_name:
            raise ValueError("format 'hf' needs data.hf_name (a dataset name or a builder such as csv, json)")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("batch_size and eval_batch_size must be >= 1")
        if self.vocab_size < 4:
            raise ValueError(f"vocab_size must be >= 4, got {self.vocab_size}")
        if self.max_test_docs is not None and self.max_test_docs < 1:
            raise ValueError(f"max_test_docs must be >= 1 or null, got {self.max_test_docs}")


@dataclass
class ModelConfig:
    """``type``: ``attention`` (Sun & Lu, 2020), ``han`` (Yang et al., 2016) or ``transformer``."""

    type: Literal["attention", "han", "transformer"] = "attention"
    embed_dim: int = 128
    hidden_size: int = 128  # per direction for RNN encoders
    encoder: Literal["none", "lstm", "gru"] = "lstm"  # attention classifier; HAN always uses GRUs
    score: Literal["dot", "scaled_dot", "general", "additive"] = "additive"  # how the learned query scores each state
    attention_dim: int | None = None  # hidden size of the additive score (default: state size)
    num_queries: int = 1  # attention classifier: learned queries, pooled vectors concatenated (Lin et al., 2017)
    # attention and han: normalizer of the attention pooling, by name (softmax, sigmoid, hard, ...:
    # seq2seq_attn.attention.NORMALIZERS), and the temperature dividing the scores
    normalize: str = "softmax"
    temperature: float = 1.0
    # options of the normalizer (e.g. categorical's entropy_weight, gumbel's tau schedule; see
    # seq2seq_attn/attention/stochastic.py)
    normalize_options: dict[str, Any] = field(default_factory=dict)
    # attention and transformer: a channel gate (SE, Hu et al., 2018; ECA, Wang et al., 2020: the image modules,
    # seq2seq_attn/layers/gates.py) on the encoder's output features (B, T, C) before the pooling; its squeeze
    # is the mean over the real tokens (padding excluded). None: no gate
    channel_gate: Literal["se", "eca"] | None = None
    dropout: float = 0.3
    embed_dropout: float = 0.1
    # transformer
    num_layers: int = 2
    num_heads: int = 4
    ff_dim: int = 512
    pooling: Literal["mean", "cls", "attention"] = "attention"
    # the score of the layers' self-attention (MultiHeadAttention's core score; scaled_dot takes the fused path)
    self_attention_score: Literal["scaled_dot", "dot", "general", "additive"] = "scaled_dot"
    # start from an earlier classify run's best weights (same model dimensions; embedding rows matched by
    # token, output rows by label name; see classification/transfer.py); ignored when resuming
    init_from: str | None = None
    # word vectors (word2vec/GloVe text, e.g. from scripts/train_word_vectors.py) for the embedding rows of the
    # words they cover (after init_from, if both are given); ignored when resuming
    pretrained_embeddings: str | None = None
    # the vocabulary with init_from / pretrained_embeddings: "train" (the training split's words) or "union"
    # (those, then every other word of the source run and vector file, which bring their embeddings)
    init_vocab: Literal["train", "union"] = "train"

    def __post_init__(self) -> None:
        if self.type == "transformer" and self.embed_dim % self.num_heads != 0:
            raise ValueError(f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})")
        check_normalizer_name(self.normalize)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        check_normalizer_options(self.normalize, self.temperature, self.normalize_options)
        if self.type == "transformer" and (self.normalize, self.temperature, self.normalize_options) != (
                "softmax", 1.0, {}):
            raise ValueError("normalize, temperature: only for type attention and han (the transformer's "
                             "attention is softmax)")
        if self.channel_gate is not None and self.type == "han":
            raise ValueError("channel_gate: only for type attention and transformer (HAN has two encoders)")
        for name in ("embed_dim", "hidden_size", "num_layers", "num_heads", "ff_dim", "num_queries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ClassificationConfig:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=lambda: TrainingConfig(metric="accuracy", metric_mode="max"))
