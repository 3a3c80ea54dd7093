"""The trainer's parts: schedules, optimizer groups, accumulation, early stopping, precision, checkpoint files."""

from __future__ import annotations

import importlib.util
import math
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from _trainer_tasks import TinyRegression, config
from torch import nn

from seq2seq_attn.training import Trainer, TrainingConfig, average_weights, load_weights, read_weights, save_weights
from seq2seq_attn.training.optim import Schedule, build_optimizer
from seq2seq_attn.training.runtime import move_to_device, rng_state, set_rng_state

ROOT = Path(__file__).resolve().parents[1]


def lrs(steps, **cfg) -> list[float]:
    s = Schedule(TrainingConfig(**cfg), total_steps=100)
    return [s.lr(k) for k in steps]


def test_schedules():
    assert lrs([1, 50, 100], lr=0.1) == [0.1, 0.1, 0.1]
    # noam: linear warmup to lr at warmup_steps, then lr * sqrt(warmup / step)
    noam = lrs([1, 5, 10, 40], lr=0.1, schedule="noam", warmup_steps=10)
    assert noam == pytest.approx([0.01, 0.05, 0.1, 0.05])
    # cosine: warmup, then from lr down to min_lr at total_steps
    cos = lrs([5, 10, 55, 100, 120], lr=0.1, min_lr=0.01, schedule="cosine", warmup_steps=10)
    assert cos == pytest.approx([0.05, 0.1, 0.055, 0.01, 0.01])
    assert lrs([1, 10, 11, 25], lr=0.1, schedule="step", step_size=10, gamma=0.5) == pytest.approx(
        [0.1, 0.05, 0.05, 0.025]
    )
    # reduce on plateau: decays after `plateau_patience` evaluations without improvement (mode max)
    s = Schedule(TrainingConfig(lr=0.1, schedule="plateau", plateau_patience=1, gamma=0.5, metric_mode="max"), 100)
    seen = []
    for value in [1.0, 2.0, 1.5, 1.9, 1.0, 3.0, 2.0]:
        s.on_evaluation(value)
        seen.append(s.lr(1))
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    restored = Schedule(s.cfg, 100)
    restored.load_state_dict(s.state_dict())
    assert restored.lr(7) == s.lr(7)


def test_no_weight_decay_on_biases_and_norms():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    opt = build_optimizer(model, TrainingConfig(optimizer="adamw", weight_decay=0.1))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model[0].weight), id(model[2].weight)}
    assert len(plain["params"]) == 4  # two biases, the norm's weight and bias
    assert isinstance(opt, torch.optim.AdamW)
    sgd = build_optimizer(model, TrainingConfig(optimizer="sgd", momentum=0.9, nesterov=True))
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9


def test_lr_scale_multiplies_a_module_through_the_schedule():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1)))
    cfg = TrainingConfig(optimizer="sgd", momentum=0.0, lr=0.1, schedule="cosine", lr_scale={"1": 10, "1.1": 0.5})
    opt = build_optimizer(model, cfg)
    scale = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    assert [scale[id(p)] for p in model.parameters()] == [1.0, 1.0, 10.0, 10.0, 0.5, 0.5]  # longest prefix wins
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    lr = Schedule(cfg, total_steps=4).apply(opt, 3)  # cosine at step 3 of 4
    opt.step()
    assert lr == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.75)))
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(b - p, torch.full_like(p, lr * scale[id(p)]))  # plain SGD: lr x scale x grad
    wrapped = nn.Module()
    wrapped.module = model  # DDP's prefix on parameter names
    assert len(build_optimizer(wrapped, cfg).param_groups) == 6
    with pytest.raises(ValueError, match=r"training.lr_scale.locator: no trainable parameter"):
        build_optimizer(model, TrainingConfig(lr_scale={"locator": 10}))
    with pytest.raises(ValueError, match=r"lr_scale.1 must be a number > 0, got 0"):
        TrainingConfig(lr_scale={"1": 0})


class MergedBatches(TinyRegression):
    """The same data with every two consecutive batches merged into one."""

    def train_batches(self, epoch):
        b = super().train_batches(epoch)
        return [sum(b[i : i + 2], []) for i in range(0, len(b), 2)]


def test_accumulation_equals_one_big_batch(tmp_path):
    """Uneven micro-batches: the loss is normalized by the step's total item count, not per micro-batch."""
    quiet = {"dropout": 0.0, "augment": 0.0}
    a = Trainer(TinyRegression(**quiet), config(str(tmp_path / "a"), accumulate=2, max_epochs=2))
    b = Trainer(MergedBatches(**quiet), config(str(tmp_path / "b"), accumulate=1, max_epochs=2))
    assert a.fit()["steps"] == b.fit()["steps"]
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6)


class Stalling(TinyRegression):
    """The metric never improves after the first evaluation."""

    def evaluate(self, model, device):
        self.evals = getattr(self, "evals", 0) + 1
        return {"mse": 1.0 if self.evals == 1 else 2.0}


def test_early_stopping_and_step_limits(tmp_path):
    _, summary = _fit(tmp_path / "es", Stalling(), eval_every=3, patience=2, max_epochs=10)
    assert summary["stopped"] == "early_stopping" and summary["steps"] == 9 and summary["best_step"] == 3
    _, summary = _fit(tmp_path / "ms", TinyRegression(), max_steps=17, max_epochs=10)
    assert summary["stopped"] == "max_steps" and summary["steps"] == 17 and summary["epochs"] == 1
    # max_steps ends mid-epoch: a final evaluation and checkpoint still happen at step 17
    assert load_weights(TinyRegression().build_model(), tmp_path / "ms", "latest").name == "step-000017.safetensors"
    _, summary = _fit(tmp_path / "mm", TinyRegression(), max_minutes=1e-6, max_epochs=10)
    assert summary["stopped"] == "max_minutes" and summary["steps"] == 1


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu_trains(tmp_path, precision):
    trainer, summary = _fit(tmp_path / precision, TinyRegression(), precision=precision, max_epochs=2)
    assert trainer.amp_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    assert math.isfinite(summary["best_value"])
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.emb.weight


def test_tied_weights_are_stored_once_and_restored(tmp_path):
    model = Tied()
    save_weights(model.state_dict(), tmp_path / "t.safetensors")
    state = read_weights(tmp_path / "t.safetensors")
    assert torch.equal(state["out.weight"], model.emb.weight.detach())
    fresh = Tied()
    load_weights(fresh, tmp_path / "t.safetensors")
    assert torch.equal(fresh.emb.weight, model.emb.weight) and fresh.out.weight is fresh.emb.weight


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_average_checkpoints_script(tmp_path, capsys):
    trainer, _ = _fit(tmp_path / "run", TinyRegression(), max_epochs=1, save_every=2, keep_last=3)
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert len(ckpts) == 3
    states = [read_weights(p) for p in ckpts]
    expected = {k: sum(s[k].double() for s in states) / 3 for k in states[0]}
    averaged = average_weights(ckpts)
    for k, v in expected.items():
        assert averaged[k].dtype == torch.float32
        torch.testing.assert_close(averaged[k].double(), v, rtol=0, atol=1e-7)

    script = _load_script("average_checkpoints")
    out = tmp_path / "avg.safetensors"
    assert script.main([str(tmp_path / "run"), "-n", "2", "-o", str(out)]) == 0
    model = TinyRegression().build_model()
    load_weights(model, out)
    two = {k: (states[1][k] + states[2][k]) / 2 for k in states[0]}
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, two[k])
    assert script.main([str(tmp_path / "missing.safetensors"), "-o", str(out)]) == 2
    assert "missing.safetensors: not a checkpoint file" in capsys.readouterr().err


Pair = namedtuple("Pair", "a b")


@dataclass
class Item:
    x: torch.Tensor
    name: str


def test_move_to_device_nested_batches():
    batch = {"p": Pair(torch.ones(2), [torch.zeros(1, 2, 3, 4)]), "i": Item(torch.ones(1), "n"), "k": 3}
    moved = move_to_device(batch, torch.device("cpu"), channels_last=True)
    assert isinstance(moved["p"], Pair) and isinstance(moved["i"], Item) and moved["k"] == 3
    assert moved["i"].name == "n" and torch.equal(moved["p"].a, torch.ones(2))
    assert moved["p"].b[0].is_contiguous(memory_format=torch.channels_last)


def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    import random

    import numpy as np

    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def _fit(run_dir, task, **cfg):
    trainer = Trainer(task, config(str(run_dir), **cfg))
    return trainer, trainer.fit()


def test_deterministic_flag_is_on_during_fit_and_restored_after(tmp_path):
    seen = []

    class Probe(TinyRegression):
        def loss(self, model, batch):
            seen.append(torch.are_deterministic_algorithms_enabled())
            return super().loss(model, batch)

    before = torch.are_deterministic_algorithms_enabled()
    _fit(tmp_path / "det", Probe(), deterministic=True, max_steps=2)
    assert seen == [True, True] and torch.are_deterministic_algorithms_enabled() == before


def test_sharding_gives_each_rank_a_strided_share_and_a_zero_weight_stand_in():
    from seq2seq_attn.training.batches import EpochBatches

    class Echo:
        def collate(self, indices):
            return list(indices)

    batches = [[10, 11, 12, 13, 14], [20, 21]]
    shares = [[EpochBatches(Echo(), batches, rank, 3, seed=0, epoch=0)[i] for i in range(2)] for rank in range(3)]
    assert [(s[0].batch, s[0].live) for s in shares] == [([10, 13], True), ([11, 14], True), ([12], True)]
    # a batch smaller than the world: rank 2 runs a stand-in example whose loss is weighted 0
    assert [(s[1].batch, s[1].live) for s in shares] == [([20], True), ([21], True), ([20], False)]


def test_tensorboard_gets_the_scalars_when_installed(tmp_path, monkeypatch):
    import sys
    import types

    scalars = []

    class FakeWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            scalars.append((tag, step))

        def close(self):
            scalars.append(("closed", self.log_dir))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    _fit(tmp_path / "tb", TinyRegression(), max_steps=2, tensorboard=True)
    assert ("train/loss", 1) in scalars and ("train/lr", 2) in scalars and ("eval/mse", 2) in scalars
    assert scalars[-1] == ("closed", str(tmp_path / "tb" / "tensorboard"))
