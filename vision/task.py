"""Image classification as a Trainer task (unit "img"): data, model, loss and evaluation.

Batches travel as uint8 images; :meth:`VisionTask.loss` augments them (random crop + flip) and normalizes them
on the training device. The augmentation of a batch is drawn from a ``torch.Generator`` seeded by the run's seed
and the batch's example indices, so an interrupted and resumed run sees exactly the same augmented batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.training.task import StepOutput

from .config import VisionConfig, VisionDataConfig, VisionModelConfig
from .data import (
    ImageSet,
    InputSpec,
    Normalize,
    augment,
    batch_seed,
    channel_stats,
    check_split,
    load_hf,
    load_npz,
    num_classes_of,
)
from .models import build_resnet
from .models.clipnet import ClipNet
from .models.racnn import RecurrentAttentionCNN
from .models.ram import RecurrentAttentionModel, SoftAttentionRNN, policy_loss
from .models.stn import SpatialTransformerNetwork
from .models.vit import VisionTransformer


def load_split(cfg: VisionDataConfig, split: str) -> ImageSet:
    """``split`` ("train"/"test") of the configured source."""
    if cfg.source == "npz":
        return load_npz(cfg.path, split, cfg.cache_dir, cfg.variant, cfg.variant_seed)
    hf_split = cfg.hf_train_split if split == "train" else cfg.hf_test_split
    return load_hf(cfg.hf_name or "", hf_split, cfg.hf_config, cfg.image_column, cfg.label_column)


def prepare_data(cfg: VisionDataConfig) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(train, valid, test) after the holdout split and the ``max_train``/``max_test`` subsets.

    Every split is checked here, before any training: none may be empty, and every label must be one of the
    training classes (``ValueError`` naming the file, split and image)."""
    train, test = load_split(cfg, "train"), load_split(cfg, "test")
    source = cfg.path if cfg.source == "npz" else cfg.hf_name
    num_classes = num_classes_of(train)
    check_split(train, num_classes, f"{source}: train split")
    check_split(test, num_classes, f"{source}: test split")
    if train.images.shape[1:] != test.images.shape[1:]:
        raise ValueError(f"train images {tuple(train.images.shape[1:])} and test images "
                         f"{tuple(test.images.shape[1:])} differ in shape")
    g = torch.Generator().manual_seed(cfg.data_seed)
    order = torch.randperm(len(train), generator=g)
    if cfg.valid == "holdout":
        if cfg.valid_size >= len(train):
            raise ValueError(f"data.valid_size {cfg.valid_size} leaves no training images (of {len(train)})")
        valid_idx, order = order[:cfg.valid_size], order[cfg.valid_size:]
    if cfg.max_train is not None:
        order = order[:cfg.max_train]
    if cfg.max_test is not None and cfg.max_test < len(test):
        test = test.subset(torch.randperm(len(test), generator=g)[:cfg.max_test].sort().values)
    valid = train.subset(valid_idx) if cfg.valid == "holdout" else test
    return train.subset(order.sort().values), valid, test


def build_model(cfg: VisionModelConfig, num_classes: int, in_channels: int,
                image_size: Sequence[int] | None = None) -> nn.Module:
    """The configured ResNet with its attention modules, a recurrent attention model or a ViT (which needs
    ``image_size`` (H, W) for its position embeddings; ``ValueError`` without it); behind a spatial
    transformer when ``spatial_transformer.enabled``."""
    st = cfg.spatial_transformer
    seen = st.out_size if st.enabled and st.out_size else image_size  # the size the classifier sees
    model = _build_classifier(cfg, num_classes, in_channels, seen)
    if not st.enabled:
        return model
    from .attention.stn import SpatialTransformer

    return SpatialTransformerNetwork(SpatialTransformer(in_channels, st.loc_channels, st.loc_hidden, st.loc_pool,
                                                        st.out_size), model)


def _build_classifier(cfg: VisionModelConfig, num_classes: int, in_channels: int,
                      image_size: Sequence[int] | None = None) -> nn.Module:
    r = cfg.recurrent
    if cfg.arch == "vit":
        if image_size is None:
            raise ValueError("arch vit needs the image size (H, W) to build its position embeddings")
        v = cfg.vit
        return VisionTransformer(num_classes, in_channels, image_size, v.patch, v.dim, v.depth, v.heads,
                                 v.mlp_ratio, v.dropout, v.attention_dropout, v.pre_ln)
    if cfg.arch == "ram":
        return RecurrentAttentionModel(num_classes, in_channels, r.glimpses, r.patch, r.scales, r.std,
                                       r.what_hidden, r.where_hidden, r.hidden, r.core, tuple(r.glimpse_conv),
                                       r.policy_trains_core, r.locator_hidden, r.location_gradient,
                                       r.eval_samples, r.policy, r.window)
    if cfg.arch == "clipnet":
        c = cfg.clip
        return ClipNet(num_classes, in_channels, tuple(c.widths), c.iau, c.parts, c.temporal, c.channel,
                       c.spatial_temporal)
    if cfg.arch == "racnn":
        a = cfg.racnn
        return RecurrentAttentionCNN(num_classes, in_channels, a.scales, tuple(a.widths), a.zoom, a.k, a.margin,
                                     a.apn_hidden, a.apn_pool, a.min_half, a.max_half, a.init_half, a.warmup,
                                     a.alternate_every)
    if cfg.arch == "soft_rnn":
        return SoftAttentionRNN(num_classes, in_channels, r.glimpses, tuple(r.cnn_widths), r.hidden,
                                r.attention_dim, r.core)
    return build_resnet(
        cfg.arch, num_classes=num_classes, in_channels=in_channels, shortcut=cfg.shortcut, blocks=cfg.blocks,
        widths=cfg.widths, stem_stride=cfg.stem_stride, dropout=cfg.dropout, attention=cfg.attention,
        attention_kwargs=cfg.attention_kwargs, attention_stages=cfg.attention_stages,
        attention_position=cfg.attention_position,
    )


class VisionTask:
    """The Trainer's view of image classification (see ``seq2seq_attn.training.task.Task``)."""

    unit = "img"
    #: Keys that change which images and classes the weights were trained on, or their normalization: a
    #: resume with any of them changed is refused.
    resume_keys = ("data.source", "data.path", "data.hf_name", "data.hf_config", "data.hf_train_split",
                   "data.image_column", "data.label_column", "data.mean", "data.std", "data.variant",
                   "data.variant_seed")

    def __init__(self, config: VisionConfig, data: tuple[ImageSet, ImageSet, ImageSet] | None = None) -> None:
        self.config = config
        self.train_set, self.valid_set, self.test_set = data if data is not None else prepare_data(config.data)
        d = config.data
        if d.mean is not None and d.std is not None:
            mean, std = d.mean, d.std
        else:
            mean, std = channel_stats(self.train_set.images)
        channels = self.train_set.images.shape[1]
        if len(mean) != channels:
            raise ValueError(f"data.mean/std have {len(mean)} values for {channels}-channel images")
        self.normalize = Normalize(mean, std)
        self.num_classes = num_classes_of(self.train_set)
        self.seed = config.training.seed
        c, h, w = self.train_set.images.shape[1:]
        classes = [str(name) for name in self.train_set.classes]
        self.input_spec = InputSpec([float(v) for v in mean], [float(v) for v in std], classes, self.num_classes,
                                    c, h, w)

    def write_run_files(self, run_dir: Path) -> None:
        """Save ``inputs.json`` (what inference needs, so the run loads without its data); the Trainer calls
        this on rank 0 once its checks have passed."""
        self.input_spec.save(Path(run_dir))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.input_spec.image_shape

    def build_model(self) -> nn.Module:
        return build_model(self.config.model, self.num_classes, self.image_shape[0], self.image_shape[1:])

    def train_batches(self, epoch: int) -> list[list[int]]:
        """A fresh permutation per epoch, from (seed, epoch) only."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_set), generator=g).tolist()
        bs = self.config.data.batch_size
        batches = [order[i:i + bs] for i in range(0, len(order), bs)]
        if self.config.data.drop_last and len(batches) > 1 and len(batches[-1]) < bs:
            batches.pop()
        return batches

    def collate(self, indices: Sequence[int]) -> dict[str, Any]:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return {
            "images": self.train_set.images[idx],  # uint8 (B, C, H, W)
            "labels": self.train_set.labels[idx],  # (B,)
            "seed": batch_seed(self.seed, idx),  # the batch's augmentation seed (an int: no device sync)
        }

    def prepare_inputs(self, images: torch.Tensor, seed: int | torch.Tensor | None = None) -> torch.Tensor:
        """uint8 images on the device -> augmented (when ``seed`` is given and augmentation is on), normalized."""
        d = self.config.data
        if seed is not None and d.augment and (d.crop_padding > 0 or d.flip):
            g = torch.Generator(device=images.device)
            g.manual_seed(int(seed))
            images = augment(images, g, padding=d.crop_padding, flip=d.flip)
        return self.normalize(images)  # float (B, C, H, W)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> StepOutput:
        labels, images = batch["labels"], self.prepare_inputs(batch["images"], batch["seed"])
        r = self.config.model.recurrent
        samples = r.samples if self.config.model.arch == "ram" else 1
        if samples > 1:  # RAM: M glimpse sequences per image, scored against each other (policy_loss)
            images, labels = images.repeat_interleave(samples, 0), labels.repeat_interleave(samples, 0)
        logits = model(images)  # (B M, num_classes)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum", label_smoothing=self.config.label_smoothing)
        n = labels.shape[0]
        logs = {"acc": (logits.argmax(-1) == labels).sum().item() / max(n, 1)}
        policy = policy_loss(model, logits, labels, samples, r.reward)  # RAM: REINFORCE on the locations + baseline
        if policy is not None:
            loss = loss + policy[0]
            logs.update(policy[1])
        for module in model.modules():  # models with their own loss terms (RA-CNN): through DDP/compile wrappers
            extra = module.auxiliary_loss(logits, labels) if hasattr(module, "auxiliary_loss") else None
            if extra is not None:
                loss = loss + extra[0]
                logs.update(extra[1])
        return StepOutput(loss_sum=loss, num_items=n, num_units=n // samples, logs=logs)

    @torch.no_grad()
    def evaluate_set(self, model: nn.Module, images: ImageSet, device: torch.device | str) -> dict[str, float]:
        """Loss, accuracy (%) and error (%) of ``model`` on ``images`` (no augmentation)."""
        was_training = model.training
        model.eval()
        total_loss, correct = 0.0, 0
        bs = self.config.data.eval_batch_size
        for start in range(0, len(images), bs):
            x = images.images[start:start + bs].to(device, non_blocking=True)
            y = images.labels[start:start + bs].to(device, non_blocking=True)
            logits = model(self.prepare_inputs(x)).float()  # (B, num_classes)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(-1) == y).sum().item())
        model.train(was_training)
        n = max(len(images), 1)
        acc = 100.0 * correct / n
        return {"loss": total_loss / n, "acc": acc, "err": 100.0 - acc}

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        return self.evaluate_set(model, self.valid_set, device)

    def evaluate_test(self, model: nn.Module, device: torch.device | str) -> dict[str, float]:
        return self.evaluate_set(model, self.test_set, device)
