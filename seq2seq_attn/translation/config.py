"""Typed config of a translation run: ``data``, ``model``, ``decoding`` and the shared ``training`` section.

Example (``configs/demo.yaml``)::

    data:
      train: {src: data/demo/train.de, tgt: data/demo/train.en}
      dev: {src: data/demo/dev.de, tgt: data/demo/dev.en}
      vocab_size: 400
    model:
      arch: rnn
      rnn: {decoder: luong, score: general}
    training: {run_dir: runs/demo, max_epochs: 10, metric: bleu, metric_mode: max}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ..attention.normalize import check_normalizer_name, check_normalizer_options
from ..training.config import TrainingConfig
from .transformer_config import TransformerConfig


@dataclass
class CorpusConfig:
    """One split. Exactly one source: aligned text files (``src`` + ``tgt``, plain or .gz), a ``tsv`` file
    (source and target columns), or ``hf_split`` of the Hugging Face dataset in ``data.hf``.
    Paths starting with ``shared:`` are resolved in the shared data folder (``SEQ2SEQ_ATTN_DATA``)."""

    src: str | None = None
    tgt: str | None = None
    tsv: str | None = None
    hf_split: str | None = None

    def __post_init__(self) -> None:
        given = [self.tsv is not None, self.src is not None or self.tgt is not None, self.hf_split is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of src+tgt (text files), tsv, or hf_split")
        if (self.src is None) != (self.tgt is None):
            raise ValueError("src and tgt must be given together")


@dataclass
class HFConfig:
    """A Hugging Face dataset read through ``datasets.load_dataset(name, config, split=..., data_files=...)``.
    Fields may be dotted (``translation.de``) for nested records."""

    name: str
    config: str | None = None
    src_field: str = "translation.de"
    tgt_field: str = "translation.en"
    data_files: dict[str, str] | None = None


@dataclass
class DataConfig:
    train: CorpusConfig
    dev: CorpusConfig
    test: CorpusConfig | None = None
    hf: HFConfig | None = None
    tsv_src_column: int = 0
    tsv_tgt_column: int = 1
    # sentencepiece subwords, trained on the training split and saved in the run dir
    spm_type: Literal["unigram", "bpe"] = "unigram"
    vocab_size: int = 8000  # per vocabulary; a soft limit (small corpora get fewer pieces)
    joint_vocab: bool = True
    character_coverage: float = 1.0
    spm_max_sentences: int = 1_000_000
    # subword regularization, training split only (dev, test and translate use the best segmentation):
    # unigram: sample a segmentation with smoothing ``sampling_alpha`` among the ``sampling_nbest_size`` best
    # (-1 = all; Kudo, 2018); bpe: BPE-dropout with merge-dropout rate ``sampling_alpha`` (Provilkov et al.,
    # 2020). None = off. Resampled every epoch, seeded by ``training.seed`` and the epoch.
    sampling_alpha: float | None = None
    sampling_nbest_size: int = 64
    # filters (training split only), in subword tokens
    max_len: int = 100
    max_ratio: float = 3.0
    # batching
    batch_mode: Literal["tokens", "sentences"] = "tokens"
    max_tokens: int = 4096  # padded tokens per batch, max(src, tgt) per sentence (fairseq style)
    batch_size: int = 64  # sentences per batch in "sentences" mode
    eval_batch_size: int = 128
    dev_bleu_sentences: int | None = None  # decode only the first N dev sentences for the dev BLEU
    # encoded training corpora and subword models, shared by runs (``seq2seq-attn prepare``); None:
    # $SEQ2SEQ_ATTN_CACHE, else ~/.cache/seq2seq_attn
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.vocab_size < 8:
            raise ValueError(f"vocab_size must be >= 8, got {self.vocab_size}")
        if self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}")
        if self.max_ratio < 1:
            raise ValueError(f"max_ratio must be >= 1, got {self.max_ratio}")
        if self.max_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_tokens and batch_size must be >= 1")
        if self.sampling_alpha is not None:
            if self.spm_type == "bpe" and not 0 < self.sampling_alpha < 1:
                raise ValueError(f"sampling_alpha (BPE-dropout rate) must be in (0, 1), got {self.sampling_alpha}")
            if self.spm_type == "unigram" and self.sampling_alpha <= 0:
                raise ValueError(f"sampling_alpha must be > 0, got {self.sampling_alpha}")
            if self.sampling_nbest_size != -1 and self.sampling_nbest_size < 2:
                raise ValueError(f"sampling_nbest_size must be -1 (all) or >= 2, got {self.sampling_nbest_size}")


@dataclass
class RNNConfig:
    """Bahdanau (RNNsearch) or Luong (global / local-m / local-p) attention encoder-decoder."""

    cell: Literal["gru", "lstm"] = "gru"
    emb_dim: int = 256
    enc_hidden: int = 256  # per direction
    dec_hidden: int = 512
    enc_layers: int = 1
    dec_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.2  # embeddings, between RNN layers, before the output layer
    decoder: Literal["bahdanau", "luong"] = "bahdanau"
    # score function of the attention core: additive (Bahdanau), dot / general / concat (Luong), location
    score: Literal["additive", "concat", "dot", "general", "location", "scaled_dot"] = "additive"
    attn_hidden: int | None = None  # additive/concat hidden size (default: dec_hidden)
    attention: Literal["global", "local-m", "local-p"] = "global"  # Luong only
    window: int = 5  # local attention half-width D (sigma = D / 2 for local-p)
    input_feeding: bool = True  # Luong: feed the attentional vector into the next step
    bridge: bool = True  # initial decoder state = tanh(W * final encoder state); zeros otherwise
    max_src_len: int = 256  # location score only: number of source positions it scores
    # normalizer of the attention core, by name (softmax, sigmoid, hard, ...: seq2seq_attn.attention.NORMALIZERS)
    normalize: str = "softmax"
    temperature: float = 1.0  # divides the scores before normalizing
    # options of the normalizer, e.g. {expectation_prob: 0.5, baseline_decay: 0.9, entropy_weight: 0.01} for
    # categorical, {tau: 1.0, tau_min: 0.5, anneal_rate: 1.0e-4} for gumbel (seq2seq_attn/attention/stochastic.py)
    normalize_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_normalizer_name(self.normalize)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        check_normalizer_options(self.normalize, self.temperature, self.normalize_options)
        if self.decoder == "bahdanau" and self.attention != "global":
            raise ValueError("local attention (local-m, local-p) needs decoder: luong")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if min(self.emb_dim, self.enc_hidden, self.dec_hidden, self.enc_layers, self.dec_layers) < 1:
            raise ValueError("sizes and layer counts must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class ModelConfig:
    arch: str = "rnn"  # dispatch in seq2seq_attn.translation.models.build_model
    tie_embeddings: bool = False  # output layer shares the target embedding matrix
    share_embeddings: bool = False  # source and target share one embedding (needs data.joint_vocab)
    rnn: RNNConfig = field(default_factory=RNNConfig)
    # Other architectures add their own sub-section here (e.g. ``transformer``).
    transformer: TransformerConfig | None = None  # arch: transformer (None = the paper's base model)


@dataclass
class SearchOptions:
    """What the search does besides the beam (:mod:`seq2seq_attn.translation.search`); every default leaves
    plain beam search unchanged.

    - ``alpha``: GNMT length penalty ``((5 + |Y|) / 6) ** alpha`` dividing finished scores; 0 = raw log-prob.
    - ``coverage_beta``: GNMT coverage penalty ``beta * sum_i log(min(sum_j a_ji, 1))`` added to finished
      scores, ``a_ji`` the attention of output token j on source position i (Wu et al., 2016, eq. 14).
    - ``sampling``: draw each next token from the model's distribution instead of the beam's arg-max; with
      ``beam_size`` K, K independent samples per sentence (the n-best are the most probable of them).
      ``temperature`` divides the log-probabilities, ``top_k`` keeps the k most probable tokens (0 = all),
      ``top_p`` the smallest set whose probability reaches p (nucleus sampling, Holtzman et al., 2020; 1 = all),
      ``seed`` seeds the draws.
    - ``no_repeat_ngram_size``: n > 0 forbids any n-gram to occur twice in a hypothesis (Paulus et al., 2018).
    - ``repetition_penalty``: theta > 1 multiplies the (negative) log-probability of every token already in
      the hypothesis by theta (CTRL, Keskar et al., 2019); 1 = off.
    """

    alpha: float = 0.6
    coverage_beta: float = 0.0
    sampling: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        checks = [(self.alpha >= 0, "alpha", ">= 0"), (self.coverage_beta >= 0, "coverage_beta", ">= 0"),
                  (self.temperature > 0, "temperature", "> 0"), (self.top_k >= 0, "top_k", ">= 0"),
                  (0 < self.top_p <= 1, "top_p", "in (0, 1]"),
                  (self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size", ">= 0"),
                  (self.repetition_penalty >= 1, "repetition_penalty", ">= 1")]
        for ok, name, want in checks:
            if not ok:
                raise ValueError(f"{name} must be {want}, got {getattr(self, name)}")

    def describe(self) -> str:
        """``alpha 0.6`` and every option that differs from its default, e.g. ``alpha 0.6, sampling, top_k 10``."""
        default = SearchOptions()
        changed = [f.name if isinstance(getattr(self, f.name), bool) else f"{f.name} {getattr(self, f.name):g}"
                   for f in fields(SearchOptions)
                   if f.name != "alpha" and getattr(self, f.name) != getattr(default, f.name)]
        return ", ".join([f"alpha {self.alpha:g}", *changed])


@dataclass
class DecodingConfig(SearchOptions):
    """The ``decoding`` section: beam, lengths, batching and the :class:`SearchOptions`. ``ensemble``: more
    run dirs or weight files whose models are averaged with the run's own (same vocabularies)."""

    beam_size: int = 5
    max_len_a: float = 1.5  # maximum output length = a * source length + b (subword tokens)
    max_len_b: int = 10
    n_best: int = 1
    batch_size: int = 64  # sentences per search batch
    ensemble: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beam_size < 1 or self.n_best < 1 or self.n_best > self.beam_size:
            raise ValueError("need beam_size >= 1 and 1 <= n_best <= beam_size")


@dataclass
class TranslationConfig:
    data: DataConfig
    task: Literal["translation"] = "translation"
    model: ModelConfig = field(default_factory=ModelConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.model.share_embeddings and not self.data.joint_vocab:
            raise ValueError("model.share_embeddings needs data.joint_vocab: true")
