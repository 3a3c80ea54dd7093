"""Typed configs of ``seq2seq-attn vision train`` and ``vision compare`` (see ``configs/vision_*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from seq2seq_attn.training.config import TrainingConfig

from .models.resnet import ARCHS


@dataclass
class VisionDataConfig:
    """Where the images come from, how they are split, normalized and augmented.

    ``source: npz`` reads ``path`` (``shared:`` = the shared data folder): plain ``x_*``/``y_*`` arrays or the
    JPEG-bytes CIFAR-10 copy (decoded once, cached in ``cache_dir``, default ``$SEQ2SEQ_ATTN_CACHE`` or
    ``~/.cache/seq2seq_attn``). ``source: hf`` reads ``hf_name`` (a ``save_to_disk`` folder or a dataset name
    for ``datasets.load_dataset``; nothing is downloaded on purpose).
    ``valid: test`` evaluates on the test split (the CIFAR papers' protocol); ``holdout`` keeps ``valid_size``
    shuffled training images apart and the test split for the final evaluation only.
    """

    source: Literal["npz", "hf"] = "npz"
    path: str = ""
    hf_name: str | None = None
    hf_config: str | None = None
    hf_train_split: str = "train"
    hf_test_split: str = "test"
    image_column: str | None = None  # hf: default img, image or pixel_values
    label_column: str = "label"
    cache_dir: str | None = None
    # npz of 28x28 digits only: one of Mnih et al.'s (2014) MNIST benchmarks made from them and cached
    # (vision/mnist_variants.py): centered, translated (60x60), cluttered (60x60, 4 pieces), cluttered100;
    # or Jaderberg et al.'s (2015): rotated (+-90 deg), rts (+-45 deg, scale 0.7-1.2, placed in 42x42);
    # or clips: 4-frame clips of two moving digits and a cue (vision/clips.py), frames as channels
    variant: Literal["centered", "translated", "cluttered", "cluttered100", "rotated", "rts", "clips"] | None = None
    variant_seed: int = 0
    max_train: int | None = None  # the first N (shuffled with data_seed) training images
    max_test: int | None = None  # N test images (a random subset drawn with data_seed; files are class-ordered)
    valid: Literal["test", "holdout"] = "test"
    valid_size: int = 5000
    data_seed: int = 0  # shuffles the subset/holdout selection (the training order uses training.seed)
    mean: list[float] | None = None  # per channel in [0, 1]; default: computed on the training images
    std: list[float] | None = None
    augment: bool = True
    crop_padding: int = 4
    flip: bool = True
    batch_size: int = 128
    eval_batch_size: int = 500
    drop_last: bool = False

    def __post_init__(self) -> None:
        if self.source == "npz" and not self.path:
            raise ValueError("data.path is required for source 'npz' (e.g. shared:mnist/mnist.npz)")
        if self.variant is not None and self.source != "npz":
            raise ValueError("data.variant needs source npz (an MNIST .npz of 28x28 digits)")
        if self.source == "hf" and not self.hf_name:
            raise ValueError("data.hf_name is required for source 'hf' (a save_to_disk folder or a dataset name)")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("batch_size and eval_batch_size must be >= 1")
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {self.crop_padding}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.valid == "holdout" and self.valid_size < 1:
            raise ValueError(f"valid_size must be >= 1, got {self.valid_size}")


@dataclass
class RecurrentConfig:
    """The recurrent attention models (``arch: ram``, Mnih et al., 2014; ``arch: soft_rnn``, the same recurrent
    model with soft attention over a CNN feature map; see ``vision/models/ram.py``)."""

    glimpses: int = 6  # G glimpses (ram) or attention steps (soft_rnn)
    patch: int = 8  # g: side in pixels of the finest patch and of each resized patch
    scales: int = 1  # k patches per glimpse, each twice as wide as the one before
    std: float = 0.17  # the location policy's standard deviation, in [-1, 1] image units
    what_hidden: int = 128  # glimpse network: the "what" pathway
    where_hidden: int = 128  # glimpse network: the "where" pathway
    hidden: int = 256  # glimpse feature and recurrent state size
    core: Literal["rnn", "lstm"] = "rnn"
    glimpse_conv: list[int] = field(default_factory=list)  # ram: conv "what" pathway widths ([]: the paper's linear)
    policy_trains_core: bool = False  # ram: REINFORCE's gradient also trains the core and glimpse network
    locator_hidden: int = 0  # ram: a ReLU hidden layer in the location network (0: the paper's linear map)
    samples: int = 1  # ram, training: M glimpse sequences per image with a leave-one-out baseline (1: the paper's)
    reward: Literal["correct", "probability", "log_likelihood"] = "correct"  # ram: 1 if right (paper), p or log p
    location_gradient: Literal["reinforce", "pathwise", "both"] = "reinforce"  # ram: REINFORCE (paper), through
    #   the sensor's bilinear sampling, or both (vision/models/ram.py)
    eval_samples: int = 0  # ram, evaluation: 0 = the mean path; M = M sampled paths, probabilities averaged
    policy: Literal["learned", "random", "densest"] = "learned"  # ram: where the glimpses go (learned: the paper's;
    #   random: the paper's random-glimpse baseline; densest: a scan around the inkiest window, not learned)
    window: int = 28  # ram, policy densest: the window's side in pixels
    cnn_widths: list[int] = field(default_factory=lambda: [16, 32])  # soft_rnn: conv3x3-ReLU-maxpool stages
    attention_dim: int = 128  # soft_rnn: additive attention's hidden size

    def __post_init__(self) -> None:
        sizes = (self.glimpses, self.patch, self.scales, self.what_hidden, self.where_hidden, self.hidden,
                 self.attention_dim, self.window, *self.cnn_widths, *self.glimpse_conv)
        if min(sizes) < 1 or not self.cnn_widths:
            raise ValueError("glimpses, patch, scales, window, hidden sizes and cnn_widths must be >= 1")
        if self.eval_samples < 0:
            raise ValueError(f"eval_samples must be >= 0 (0: the mean path), got {self.eval_samples}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.locator_hidden < 0:
            raise ValueError(f"locator_hidden must be >= 0, got {self.locator_hidden}")
        if not self.std > 0:
            raise ValueError(f"std must be > 0, got {self.std}")


@dataclass
class RACNNConfig:
    """RA-CNN (``arch: racnn``; Fu et al., 2017; ``vision/models/racnn.py``): scales of a small CNN with an
    attention proposal network zooming into a square between scales, trained alternately."""

    scales: int = 3
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])  # conv3x3-BN-ReLU-maxpool per width, each scale
    zoom: int = 32  # side in pixels of the zoomed regions (scales 2..S)
    k: float = 10.0  # the boxcar mask's steepness, 1/pixels (the paper's 10)
    margin: float = 0.05  # the ranking loss's margin (the paper's 0.05)
    apn_hidden: int = 64
    apn_pool: int = 4
    min_half: float = 0.25  # the square's half-side range and start, in [-1, 1] units of its scale's input
    max_half: float = 0.75
    init_half: float = 0.5  # half the image's side, centred (the paper starts from a square of half the side)
    warmup: int = 500  # steps of classification only (the CNNs' pre-training)
    alternate_every: int = 50  # then this many steps of APN (ranking loss), of CNNs (classification), ...

    def __post_init__(self) -> None:
        if self.scales < 2 or not self.widths or min(self.widths) < 1:
            raise ValueError("racnn.scales must be >= 2 and racnn.widths non-empty and positive")
        if min(self.zoom, self.apn_hidden, self.apn_pool, self.alternate_every) < 1 or self.warmup < 0:
            raise ValueError("racnn.zoom, apn_hidden, apn_pool and alternate_every must be >= 1, warmup >= 0")
        if not 0 < self.min_half < self.init_half < self.max_half:
            raise ValueError("racnn needs 0 < min_half < init_half < max_half")
        if not self.k > 0 or self.margin < 0:
            raise ValueError("racnn.k must be > 0 and margin >= 0")


@dataclass
class ClipConfig:
    """The clip network (``arch: clipnet``, ``vision/models/clipnet.py``) for ``data.variant: clips``: a per-frame
    CNN, an IAU block (Hou et al., 2020) unless ``iau: false`` (the baseline), pooling, a linear classifier."""

    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    iau: bool = True
    parts: int = 4  # STIAU part maps per frame
    temporal: bool = True  # false: every interaction stays inside its frame
    channel: bool = True  # CIAU
    spatial_temporal: bool = True  # STIAU

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1 or self.parts < 2:
            raise ValueError("clip.widths must be non-empty and positive and clip.parts >= 2")
        if self.iau and not (self.channel or self.spatial_temporal):
            raise ValueError("clip.iau needs channel or spatial_temporal")


RECURRENT_ARCHS = ("ram", "soft_rnn", "racnn", "clipnet")


@dataclass
class SpatialTransformerConfig:
    """A spatial transformer before the classifier (Jaderberg et al., 2015; ``vision/attention/stn.py``):
    ``enabled: true`` turns the configured ``arch`` into its ST version (CNN -> ST-CNN). Between stages, use
    ``attention: stn`` with ``attention_position: stage`` instead."""

    enabled: bool = False
    out_size: list[int] | None = None  # [H, W] the classifier sees; default the input size
    loc_channels: list[int] = field(default_factory=lambda: [20, 20])  # localisation net conv widths
    loc_hidden: int = 50  # localisation net FC width
    loc_pool: int = 3  # localisation net adaptive pooling grid side

    def __post_init__(self) -> None:
        if len(self.loc_channels) != 2 or min(self.loc_channels) < 1 or self.loc_hidden < 1 or self.loc_pool < 1:
            raise ValueError("loc_channels must be two sizes >= 1, loc_hidden and loc_pool >= 1")
        if self.out_size is not None and (len(self.out_size) != 2 or min(self.out_size) < 1):
            raise ValueError(f"out_size must be [H, W] with positive sizes, got {self.out_size}")


@dataclass
class ViTConfig:
    """The Vision Transformer (``arch: vit``, Dosovitskiy et al., 2021; see ``vision/models/vit.py``): the
    shared Transformer encoder layers over P x P patches and a class token."""

    patch: int = 4  # P: patch side in pixels; must divide the image size
    dim: int = 192  # D: token width
    depth: int = 6  # L: encoder layers
    heads: int = 3
    mlp_ratio: float = 2.0  # feed-forward width = mlp_ratio * D
    dropout: float = 0.0
    attention_dropout: float = 0.0
    pre_ln: bool = True  # the paper's pre-LN layers and final LayerNorm; False: post-LN

    def __post_init__(self) -> None:
        if min(self.patch, self.dim, self.depth, self.heads) < 1 or not self.mlp_ratio > 0:
            raise ValueError("vit.patch, dim, depth, heads must be >= 1 and mlp_ratio > 0")
        if self.dim % self.heads:
            raise ValueError(f"vit.dim ({self.dim}) must be divisible by vit.heads ({self.heads})")
        if not (0 <= self.dropout < 1 and 0 <= self.attention_dropout < 1):
            raise ValueError("vit.dropout and vit.attention_dropout must be in [0, 1)")


@dataclass
class VisionModelConfig:
    """The backbone and where the attention module goes (see ``vision/models/resnet.py``), a recurrent
    attention model (``arch: ram`` or ``soft_rnn``, configured by ``recurrent``) or the Vision Transformer
    (``arch: vit``, configured by ``vit``).

    ``attention``: a name from ``vision.list_attention()`` or null for the plain ResNet;
    ``attention_kwargs`` go to ``vision.create_attention`` (e.g. ``{rd_ratio: 0.0625}``);
    ``attention_position: block`` puts it in every residual block of ``attention_stages`` (SE-style, all stages
    when null), ``stage`` puts one after each of those stages (non-local style).
    """

    arch: str = "resnet20"
    shortcut: Literal["A", "B"] | None = None  # default: A for CIFAR ResNets and small, B for resnet18
    blocks: list[int] | None = None  # arch small: blocks per stage
    widths: list[int] | None = None  # arch small: channels per stage
    stem_stride: int = 1
    dropout: float = 0.0
    attention: str | None = None
    attention_kwargs: dict[str, Any] = field(default_factory=dict)
    attention_stages: list[int] | None = None
    attention_position: Literal["block", "stage"] = "block"
    recurrent: RecurrentConfig = field(default_factory=RecurrentConfig)  # arch ram and soft_rnn
    spatial_transformer: SpatialTransformerConfig = field(default_factory=SpatialTransformerConfig)
    racnn: RACNNConfig = field(default_factory=RACNNConfig)  # arch racnn
    clip: ClipConfig = field(default_factory=ClipConfig)  # arch clipnet
    vit: ViTConfig = field(default_factory=ViTConfig)  # arch vit

    def __post_init__(self) -> None:
        archs = (*ARCHS, *RECURRENT_ARCHS, "vit")
        if self.arch not in archs:
            raise ValueError(f"unknown arch {self.arch!r}; expected one of {', '.join(archs)}")
        if self.stem_stride < 1:
            raise ValueError(f"stem_stride must be >= 1, got {self.stem_stride}")
        if self.attention in ("", "none"):
            self.attention = None
        if self.arch == "vit" and self.attention is not None:
            raise ValueError(f"attention {self.attention!r}: the modules go into ResNets; arch vit has its own "
                             "self-attention (set attention: null)")
        if self.attention is not None:
            from .registry import check_attention_kwargs, list_attention

            if self.attention not in list_attention():
                raise ValueError(f"unknown attention module {self.attention!r}; available: "
                                 f"{', '.join(list_attention())}")
            try:
                check_attention_kwargs(self.attention, self.attention_kwargs)
            except ValueError as e:
                raise ValueError(f"attention_kwargs: {e}") from None


@dataclass
class VisionConfig:
    """``seq2seq-attn vision train CONFIG``: data, model and the Trainer's ``training`` section."""

    data: VisionDataConfig
    model: VisionModelConfig = field(default_factory=VisionModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    label_smoothing: float = 0.0


@dataclass
class CompareConfig:
    """``seq2seq-attn vision compare``: the modules, the benchmark input and the outputs.

    ``modules``: names from ``vision.list_attention()``, ``none`` for the plain backbone, or ``all`` (every
    registered module plus ``none``). ``module_kwargs`` adds per-module ``attention_kwargs``.
    """

    modules: list[str] = field(default_factory=lambda: ["all"])
    module_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    module_position: dict[str, Literal["block", "stage"]] = field(default_factory=dict)
    module_stages: dict[str, list[int]] = field(default_factory=dict)  # per-module attention_stages
    seeds: list[int] = field(default_factory=lambda: [1])
    train: bool = True  # False: only parameters, FLOPs, latency and memory
    out_dir: str = "runs/vision_compare"
    input_size: list[int] | None = None  # (B, C, H, W) for the benchmark; default (32, C, H, W) of the data
    bench_device: str = "cpu"
    bench_warmup: int = 2
    bench_repeats: int = 5
    bench_threads: int | None = None  # torch.set_num_threads for the CPU benchmark (default: training.cpu_threads)
    map_modules: list[str] | None = None  # modules in the attention-map figure (default: all trained ones)
    map_images: int = 4
    map_min_size: int = 7  # show the deepest map whose feature map is at least this many pixels a side
    skip_failed: bool = True  # a module that cannot be built or run gets a row with its error, not a crash

    def __post_init__(self) -> None:
        if not self.modules:
            raise ValueError("modules must not be empty")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        if self.input_size is not None and (len(self.input_size) != 4 or any(s < 1 for s in self.input_size)):
            raise ValueError(f"input_size must be [B, C, H, W] with positive sizes, got {self.input_size}")
        if self.bench_repeats < 1 or self.bench_warmup < 0:
            raise ValueError("bench_repeats must be >= 1 and bench_warmup >= 0")
        from .registry import check_attention_kwargs, list_attention

        for module, kwargs in self.module_kwargs.items():
            if module not in list_attention():
                raise ValueError(f"module_kwargs: unknown attention module {module!r}; available: "
                                 f"{', '.join(list_attention())}")
            try:
                check_attention_kwargs(module, kwargs)
            except ValueError as e:
                raise ValueError(f"module_kwargs.{module}: {e}") from None


@dataclass
class VisionCompareConfig(VisionConfig):
    """A vision training config (the fixed recipe every module gets) plus the ``compare`` section."""

    compare: CompareConfig = field(default_factory=CompareConfig)
