"""Typed config of ``seq2seq-attn caption train`` (see ``configs/caption_*.yaml``).

The ``data`` section belongs to the data side (:func:`seq2seq_attn.captioning.data.load_caption_split`: format,
splits, image size, generator parameters) and is passed to it as a mapping; everything else is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..attention.normalize import check_normalizer_name, check_normalizer_options
from ..training.config import TrainingConfig
from ..translation.config import DecodingConfig


@dataclass
class EncoderConfig:
    """The CNN: one of the project's ResNets (``vision/models/resnet.py``) without its pooling and classifier;
    its last feature map (C, h, w) gives the L = h*w annotation vectors.

    ``attention``: a registered CV attention module (``seq2seq-attn vision list``: ``se``, ``cbam``, ...) put
    in every residual block of ``attention_stages`` (``attention_position: block``) or after them (``stage``).
    ``freeze``: keep the CNN's weights (and BatchNorm statistics) fixed; ``init_from``: a ``vision train`` run
    dir (or a .safetensors file) whose CNN weights the encoder starts from (the classifier is dropped).
    ``stem_stride: 2`` halves the grid (48x160 images with three stages: 6x20 = 120 positions instead of 480).

    Where each annotation is (the CNN alone is translation-equivariant, so its vectors say what is there,
    hardly where):
    ``row_rnn``: a bidirectional LSTM over each row of the feature map (D/2 units per direction, so the
    annotations keep D channels), as the row encoder of Deng et al., 2017 ("Image-to-Markup Generation with
    Coarse-to-Fine Attention"): each annotation then knows what lies left and right of it in its row.
    ``position``: 2-D absolute positions added to the annotations (after the row RNN):
    ``sinusoidal`` (fixed) or ``learned`` row and column tables, half of the D channels each (DETR);
    null = none. The row RNN and the learned tables train also with ``freeze`` (it fixes the CNN only).
    """

    arch: str = "small"
    blocks: list[int] | None = None
    widths: list[int] | None = None
    shortcut: Literal["A", "B"] | None = None
    stem_stride: int = 1
    attention: str | None = None
    attention_kwargs: dict[str, Any] = field(default_factory=dict)
    attention_stages: list[int] | None = None
    attention_position: Literal["block", "stage"] = "block"
    freeze: bool = False
    init_from: str | None = None
    row_rnn: bool = False
    position: Literal["sinusoidal", "learned"] | None = None

    def __post_init__(self) -> None:
        from vision.config import VisionModelConfig

        if self.arch in ("ram", "soft_rnn"):
            raise ValueError(f"arch {self.arch!r} has no feature map; use a ResNet (small, resnet20, ...)")
        # the vision config's checks of arch, stem_stride and the attention module (name and kwargs)
        self.attention = VisionModelConfig(arch=self.arch, stem_stride=self.stem_stride, attention=self.attention,
                                           attention_kwargs=self.attention_kwargs).attention


@dataclass
class DecoderConfig:
    """The LSTM decoder of Xu et al. (2015), "Show, Attend and Tell", section 3.1.2.

    ``score``/``normalize``/``temperature``/``normalize_options``: the attention core's score over the L
    positions (additive = the paper's f_att) and normalizer by name (``softmax`` = soft attention,
    ``categorical`` = the paper's stochastic hard attention trained by REINFORCE, ``gumbel``, ...).
    ``gate``: the gating scalar beta = sigmoid(f_beta(h_{t-1})) on the context (section 4.2.1);
    ``deep_output``: p(y_t) from L_o(E y_{t-1} + L_h h_t + L_z z_t) (Eq. 7), else from L_o(h_t);
    ``doubly_stochastic``: lambda of the penalty lambda * sum_i (1 - sum_t alpha_ti)^2 (Eq. 14), 0 = off.
    """

    emb_dim: int = 64
    hidden: int = 128
    attn_hidden: int | None = None  # additive score's hidden size (default: hidden)
    score: Literal["additive", "concat", "dot", "general", "location", "scaled_dot"] = "additive"
    normalize: str = "softmax"
    temperature: float = 1.0
    normalize_options: dict[str, Any] = field(default_factory=dict)
    gate: bool = True
    deep_output: bool = True
    dropout: float = 0.0
    doubly_stochastic: float = 1.0

    def __post_init__(self) -> None:
        check_normalizer_name(self.normalize)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        check_normalizer_options(self.normalize, self.temperature, self.normalize_options)
        if min(self.emb_dim, self.hidden) < 1 or (self.attn_hidden is not None and self.attn_hidden < 1):
            raise ValueError("emb_dim, hidden and attn_hidden must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.doubly_stochastic < 0:
            raise ValueError(f"doubly_stochastic must be >= 0, got {self.doubly_stochastic}")


@dataclass
class CaptionModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


def _caption_decoding() -> DecodingConfig:
    """Captions have no source length: at most ``max_len_b`` words, greedy by default."""
    return DecodingConfig(beam_size=1, alpha=0.0, max_len_a=0.0, max_len_b=20)


@dataclass
class CaptionConfig:
    """``seq2seq-attn caption train CONFIG``: the data side's ``data`` mapping, the model, the search
    (``decoding``: the translation search's options; an image plays the source, so the length limit is
    ``max_len_b`` words), the shared ``training`` section and the vocabulary/batching of the task.

    ``mean``/``std``: per channel in [0, 1] (default: computed on the training images); ``min_freq``: words
    rarer than this in the training captions become ``<unk>``; ``eval_images``: validate on the first N
    validation images only (None = all).

    Training augmentation (off by default; validation and test images are never augmented), drawn per batch
    from the run's seed and the batch's examples, so a resumed run sees the same batches: ``crop_padding``: shift
    each image by up to this many pixels (zero padding, then a crop of the original size, as the vision task's
    random crop; the captions are unchanged); ``flip_boxes``: mirror each caption word's box left-right with
    probability 0.5 (only for data with word boxes, i.e. the built-in sets; meant for CIFAR-10 mosaics, whose
    words name the tiles, not for digit strings)."""

    data: dict[str, Any]
    task: Literal["captioning"] = "captioning"
    model: CaptionModelConfig = field(default_factory=CaptionModelConfig)
    decoding: DecodingConfig = field(default_factory=_caption_decoding)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    train_split: str = "train"
    valid_split: str = "valid"
    test_split: str = "test"
    batch_size: int = 32
    eval_batch_size: int = 100
    eval_images: int | None = None
    min_freq: int = 1
    label_smoothing: float = 0.0
    mean: list[float] | None = None
    std: list[float] | None = None
    crop_padding: int = 0
    flip_boxes: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.min_freq < 1:
            raise ValueError("batch_size, eval_batch_size and min_freq must be >= 1")
        if self.eval_images is not None and self.eval_images < 1:
            raise ValueError(f"eval_images must be >= 1 or null, got {self.eval_images}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {self.crop_padding}")
        if (self.mean is None) != (self.std is None) or (self.std is not None and min(self.std) <= 0):
            raise ValueError("give both mean and std (std > 0), or neither")
