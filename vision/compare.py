"""Side-by-side comparison of attention modules on one backbone (``seq2seq-attn vision compare``).

For each module: parameters, forward FLOPs (``torch.utils.flop_counter.FlopCounterMode``: matrix products and
convolutions only, elementwise gating is not counted), forward and forward+backward latency (median of
``bench_repeats`` after ``bench_warmup``) and peak memory at ``input_size``, and test accuracy after the fixed
recipe (the config's ``training`` section) for every seed, as mean ± sample std. Outputs in ``out_dir``:
``results.md`` (Markdown table), ``results.csv``, ``comparison.png`` (bar charts) and ``attention_maps.png``
(each module's map, from ``capture_attention``, overlaid on the same test images).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` minus the allocation before the call; on the CPU the
peak of the bytes allocated by PyTorch's CPU allocator during the call, read from the ``Total Allocated``
counter of the profiler's memory events (``torch.profiler``, ``profile_memory=True``). Both count tensors
(activations, gradients, workspace), not the Python heap or the allocator's caches.

Every (module, seed) run stores ``result.json`` in its run dir; a rerun with the same config reuses it, so an
interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from seq2seq_attn.attention import capture_attention
from seq2seq_attn.config import to_dict

from .config import VisionCompareConfig, VisionConfig, VisionModelConfig
from .data import ImageSet
from .registry import list_attention
from .task import VisionTask, build_model, prepare_data

BASELINE = "none"


@dataclass
class ModuleResult:
    """One table row."""

    module: str
    params: int | None = None
    flops: int | None = None  # forward FLOPs per image
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    fwd_peak: int | None = None  # bytes
    fwd_bwd_peak: int | None = None
    accs: list[float] = field(default_factory=list)  # test accuracy (%) per seed
    train_seconds: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a run stopped by training.max_minutes
    error: str | None = None

    @property
    def acc_mean(self) -> float | None:
        return statistics.fmean(self.accs) if self.accs else None

    @property
    def acc_std(self) -> float | None:
        return statistics.stdev(self.accs) if len(self.accs) > 1 else (0.0 if self.accs else None)


def expand_modules(names: list[str]) -> list[str]:
    """``all`` -> the baseline and every registered module; checks the other names; keeps order, no repeats."""
    available = list_attention()
    out: list[str] = []
    for name in names:
        if name == "all":
            items = [BASELINE, *available]
        elif name == BASELINE or name in available:
            items = [name]
        else:
            raise ValueError(f"compare.modules: unknown module {name!r}; available: none, all, {', '.join(available)}")
        out.extend(i for i in items if i not in out)
    return out


def module_model_config(cfg: VisionCompareConfig, module: str) -> VisionModelConfig:
    """The backbone config with ``module`` inserted (its ``module_kwargs`` and ``module_position`` applied)."""
    kwargs = {**cfg.model.attention_kwargs, **cfg.compare.module_kwargs.get(module, {})}
    position = cfg.compare.module_position.get(module, cfg.model.attention_position)
    stages = cfg.compare.module_stages.get(module, cfg.model.attention_stages)
    return dataclasses.replace(
        cfg.model, attention=None if module == BASELINE else module, attention_kwargs=kwargs,
        attention_position=position, attention_stages=stages,
    )


# ------------------------------------------------------------------------------------------- measuring


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Forward FLOPs of ``model(x)`` (a multiply-add counts 2), in eval mode.

    Autograd stays on: under ``no_grad`` a view of a parameter (e.g. an expanded learned query) requires grad
    without a grad_fn, which the counter's module tracker rejects. Only the forward pass is counted.
    """
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls (device synchronized)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_peak_allocated(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by PyTorch's CPU allocator during ``fn()``, above the level when it started.

    Read from the profiler's memory events, whose ``Total Allocated`` counts allocations made while profiling.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, trace = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(trace)
        with open(trace, encoding="utf-8") as fh:
            events = json.load(fh)["traceEvents"]
    finally:
        os.unlink(trace)
    mem = sorted(
        (e for e in events if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type") == 0),
        key=lambda e: e["ts"],
    )
    if not mem:
        return 0
    start = mem[0]["args"]["Total Allocated"] - mem[0]["args"]["Bytes"]
    return max(0, max(e["args"]["Total Allocated"] for e in mem) - start)


def peak_memory(fn: Callable[[], Any], device: torch.device) -> int:
    """Peak tensor memory of ``fn()`` in bytes above the level before it (CUDA allocator or CPU profiler)."""
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return max(0, torch.cuda.max_memory_allocated(device) - before)
    return cpu_peak_allocated(fn)


def benchmark(model: nn.Module, input_size: list[int], num_classes: int, device: torch.device,
              warmup: int = 2, repeats: int = 5) -> dict[str, float | int]:
    """Parameters, forward FLOPs per image, latency (ms) and peak memory (bytes) at ``input_size`` (B, C, H, W)."""
    model = model.to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*input_size, generator=g).to(device)
    y = torch.randint(0, num_classes, (input_size[0],), generator=g).to(device)
    flops = count_flops(model, x) // input_size[0]

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)  # gradients are allocated inside the call, as in training
        F.cross_entropy(model(x), y).backward()

    model.eval()
    fwd = median_seconds(forward, device, warmup, repeats)
    fwd_peak = peak_memory(forward, device)
    model.train()
    fwd_bwd = median_seconds(forward_backward, device, warmup, repeats)
    fwd_bwd_peak = peak_memory(forward_backward, device)
    model.zero_grad(set_to_none=True)
    return {"params": count_parameters(model), "flops": flops, "fwd_ms": 1e3 * fwd, "fwd_bwd_ms": 1e3 * fwd_bwd,
            "fwd_peak": fwd_peak, "fwd_bwd_peak": fwd_bwd_peak}


# ------------------------------------------------------------------------------------------- training


def run_config(cfg: VisionCompareConfig, module: str, seed: int) -> VisionConfig:
    """The plain training config of one (module, seed) run of the comparison."""
    run_dir = Path(cfg.compare.out_dir) / "runs" / f"{module}-seed{seed}"
    training = dataclasses.replace(cfg.training, seed=seed, run_dir=str(run_dir))
    return VisionConfig(data=cfg.data, model=module_model_config(cfg, module), training=training,
                        label_smoothing=cfg.label_smoothing)


def train_and_test(run_cfg: VisionConfig, data: tuple[ImageSet, ImageSet, ImageSet],
                   device: str | None = None) -> tuple[dict[str, float], nn.Module, VisionTask]:
    """Train one run with the Trainer (or reuse its ``result.json``) and return its test metrics and model."""
    from seq2seq_attn.training import Trainer, load_weights

    task = VisionTask(run_cfg, data=data)
    run_dir = Path(run_cfg.training.run_dir)
    result_file = run_dir / "result.json"
    plain = to_dict(run_cfg)
    if result_file.is_file():
        saved = json.loads(result_file.read_text(encoding="utf-8"))
        if saved.get("config") == json.loads(json.dumps(plain)):
            model = task.build_model()
            load_weights(model, run_dir, which="latest")
            return saved["test"], model, task
    trainer = Trainer(task, run_cfg.training, run_cfg, overwrite=True, device=device)
    summary = trainer.fit()
    if summary["stopped"] == "signal":
        raise KeyboardInterrupt(f"{run_dir}: stopped by a signal")
    model = trainer.model
    if run_cfg.data.valid == "test" and summary["last_metrics"]:
        test = dict(summary["last_metrics"])  # the trainer's final evaluation already was on the test split
    else:
        test = task.evaluate_test(model, trainer.device)
    test.update(train_seconds=float(summary["wall_seconds"]), steps=summary["steps"], stopped=summary["stopped"])
    result_file.write_text(json.dumps({"config": plain, "test": test}, indent=1), encoding="utf-8")
    return test, model.cpu(), task


# ------------------------------------------------------------------------------------------- attention maps


def _spatial(weights: torch.Tensor, batch: int, channels: int, h: int, w: int) -> torch.Tensor | None:
    """A recorded attention map as a (B, H, W) spatial map, or None when it has no spatial extent.

    Spatial maps (..., H, W) are averaged over their other dimensions; weights whose keys are the positions
    (..., HW), such as affinities (B, HW, HW) or GC's context weights (B, 1, HW), give the mean attention
    each position receives. Channel weights and channel affinities have no spatial map.
    """
    if weights.shape[0] != batch:
        if weights.shape[0] % batch:
            return None
        weights = weights.reshape(batch, -1, *weights.shape[1:])  # (B, heads, ...)
    weights = weights.float()
    if h * w > 1 and weights.dim() >= 3 and tuple(weights.shape[-2:]) == (h, w):
        return weights.reshape(batch, -1, h, w).mean(1)
    hw = h * w
    if hw > 1 and weights.dim() >= 2 and weights.shape[-1] == hw and hw != channels:
        return weights.reshape(batch, -1, hw).mean(1).reshape(batch, h, w)
    return None


@torch.no_grad()
def attention_heatmaps(model: nn.Module, x: torch.Tensor, min_size: int = 7) -> tuple[torch.Tensor, str] | None:
    """(B, H_img, W_img) heatmaps in [0, 1] from the deepest attention module whose feature map is at least
    ``min_size`` a side (else the first one), and a note on what is shown; None without attention modules.

    The module's recorded maps are used where they are spatial; for channel-only modules the figure shows the
    channel mean of the module's output magnitude instead (noted as such).
    """
    modules = model.attention_modules() if hasattr(model, "attention_modules") else []
    if not modules:
        return None
    seen: dict[int, tuple[tuple[int, ...], torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.__setitem__(id(mod), (tuple(inp[0].shape), out)))
             for m in modules]
    model.eval()
    try:
        with capture_attention(model) as maps:
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    big = [m for m in modules if min(seen[id(m)][0][-2:]) >= min_size]
    chosen = big[-1] if big else modules[0]
    names = {id(m): n for n, m in model.named_modules()}
    prefix = names[id(chosen)]
    (b, c, h, w), out = seen[id(chosen)]
    spatial = [s for name, calls in maps.items() if name == prefix or name.startswith(prefix + ".")
               for weights in calls if (s := _spatial(weights, b, c, h, w)) is not None]
    if spatial:
        heat, note = torch.stack(spatial).mean(0), f"map at {h}x{w}"
    else:
        heat, note = out.float().abs().mean(1), f"|output| {h}x{w} (no spatial map)"
    heat = F.interpolate(heat[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    lo = heat.amin(dim=(1, 2), keepdim=True)
    hi = heat.amax(dim=(1, 2), keepdim=True)
    return (heat - lo) / (hi - lo).clamp_min(1e-12), note


def plot_attention_maps(images: torch.Tensor, heatmaps: dict[str, tuple[torch.Tensor, str]], path: Path,
                        groups_per_row: int = 3) -> None:
    """One panel group per module (the input images first): its map overlaid on the same images.

    Groups are laid out ``groups_per_row`` to a row so that many modules still give a readable figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = images.shape[0]
    entries: list[tuple[str, tuple[torch.Tensor, str] | None]] = [("input", None), *heatmaps.items()]
    per_row = max(1, min(groups_per_row, len(entries)))
    rows = math.ceil(len(entries) / per_row)
    fig, axes = plt.subplots(rows, per_row * n, figsize=(1.0 * per_row * n, 1.25 * rows), squeeze=False)
    shown = images.float().permute(0, 2, 3, 1).numpy() / 255.0  # (N, H, W, C)
    gray = shown.shape[-1] == 1
    for ax in axes.flat:
        ax.axis("off")
    for k, (label, entry) in enumerate(entries):
        r, c0 = divmod(k, per_row)
        for i in range(n):
            ax = axes[r][c0 * n + i]
            ax.imshow(shown[i, ..., 0] if gray else shown[i], cmap="gray" if gray else None, vmin=0, vmax=1)
            if entry is not None:
                ax.imshow(entry[0][i].numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
        title = label if entry is None else f"{label}: {entry[1]}"
        axes[r][c0 * n].set_title(title, fontsize=7, loc="left")
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.3 / rows, bottom=0.01, wspace=0.04, hspace=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------- reporting


def _fmt(value: float | int | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def write_table(results: list[ModuleResult], path: Path, header: str) -> str:
    base = next((r for r in results if r.module == BASELINE and r.params is not None), None)
    lines = [header, "",
             "| module | params | Δ params | MFLOPs/img | fwd ms | fwd+bwd ms | fwd peak MB | fwd+bwd peak MB "
             "| test acc % (mean ± std) | seeds | train s/run | note |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        if r.error:
            lines.append(f"| {r.module} |  |  |  |  |  |  |  |  |  |  | error: {r.error} |")
            continue
        delta = "–" if base is None or r.params is None else f"{r.params - base.params:+,}"
        acc = "–" if r.acc_mean is None else f"{r.acc_mean:.2f} ± {r.acc_std:.2f}"
        mb = [None if v is None else v / 2**20 for v in (r.fwd_peak, r.fwd_bwd_peak)]
        lines.append(
            f"| {r.module} | {_fmt(r.params, ',')} | {delta} | {_fmt(r.flops and r.flops / 1e6, '.2f')} "
            f"| {_fmt(r.fwd_ms, '.2f')} | {_fmt(r.fwd_bwd_ms, '.2f')} | {_fmt(mb[0], '.2f')} | {_fmt(mb[1], '.2f')} "
            f"| {acc} | {len(r.accs)} | {_fmt(statistics.fmean(r.train_seconds) if r.train_seconds else None, '.0f')} "
            f"| {'; '.join(r.notes)} |"
        )
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def write_csv(results: list[ModuleResult], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["module", "params", "flops_per_image", "fwd_ms", "fwd_bwd_ms", "fwd_peak_bytes",
                         "fwd_bwd_peak_bytes", "acc_mean", "acc_std", "seeds", "accs", "train_seconds", "notes",
                         "error"])
        for r in results:
            writer.writerow([r.module, r.params, r.flops, r.fwd_ms, r.fwd_bwd_ms, r.fwd_peak, r.fwd_bwd_peak,
                             r.acc_mean, r.acc_std, len(r.accs), " ".join(f"{a:.2f}" for a in r.accs),
                             " ".join(f"{s:.1f}" for s in r.train_seconds), "; ".join(r.notes), r.error or ""])


def plot_bars(results: list[ModuleResult], path: Path, title: str) -> None:
    """Horizontal bars per module: test accuracy (± std), parameters, forward+backward latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.error is None]
    names = [r.module for r in rows]
    panels = [("test accuracy %", [r.acc_mean for r in rows], [r.acc_std for r in rows]),
              ("parameters (K)", [r.params / 1e3 if r.params else None for r in rows], None),
              ("fwd+bwd ms", [r.fwd_bwd_ms for r in rows], None)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.28 * len(rows) + 1.6), sharey=True)
    ys = list(range(len(rows)))
    for ax, (label, values, errs) in zip(axes, panels):
        vals = [v if v is not None else math.nan for v in values]
        colors = ["tab:gray" if n == BASELINE else "tab:blue" for n in names]  # the baseline stands out
        ax.barh(ys, vals, xerr=[e or 0.0 for e in errs] if errs else None, color=colors, alpha=0.8)
        ax.set_xlabel(label)
        finite = [v for v in vals if math.isfinite(v)]
        if label.startswith("test") and finite:
            spread = max(finite) - min(finite)
            ax.set_xlim(max(0.0, min(finite) - max(spread, 0.5)), min(100.0, max(finite) + 0.3 * max(spread, 0.5)))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------- driver


def run_compare(cfg: VisionCompareConfig, device: str | None = None,
                log: Callable[[str], None] = print) -> list[ModuleResult]:
    """Run the whole comparison of ``cfg`` and write its outputs to ``cfg.compare.out_dir``."""
    threads = torch.get_num_threads()
    cfg.training.apply_cpu_threads()
    try:
        return _compare(cfg, device, log)
    finally:
        torch.set_num_threads(threads)


def _compare(cfg: VisionCompareConfig, device: str | None, log: Callable[[str], None]) -> list[ModuleResult]:
    cc = cfg.compare
    out = Path(cc.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    modules = expand_modules(cc.modules)
    data = prepare_data(cfg.data)
    probe = VisionTask(cfg, data=data)
    c, h, w = probe.image_shape
    input_size = list(cc.input_size) if cc.input_size is not None else [32, c, h, w]
    if input_size[1] != c:
        raise ValueError(f"compare.input_size has {input_size[1]} channels but the images have {c}")
    bench_device = torch.device(cc.bench_device)
    if bench_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("compare.bench_device: cuda is not available here (use cpu)")
    map_names = set(cc.map_modules) if cc.map_modules is not None else None
    g = torch.Generator().manual_seed(cfg.data.data_seed)
    map_idx = torch.randperm(len(data[2]), generator=g)[:cc.map_images]
    map_images = data[2].images[map_idx]  # uint8 (N, C, H, W)
    heatmaps: dict[str, tuple[torch.Tensor, str]] = {}
    threads = torch.get_num_threads()
    results = []
    for module in modules:
        row = ModuleResult(module)
        results.append(row)
        try:
            model_cfg = module_model_config(cfg, module)
            torch.manual_seed(0)
            model = build_model(model_cfg, probe.num_classes, c)
            if cc.bench_threads and bench_device.type == "cpu":
                torch.set_num_threads(cc.bench_threads)
            try:
                stats = benchmark(model, input_size, probe.num_classes, bench_device, cc.bench_warmup,
                                  cc.bench_repeats)
            finally:
                torch.set_num_threads(threads)
            for k, v in stats.items():
                setattr(row, k, v)
            log(f"[{module}] params {row.params:,}, {row.flops / 1e6:.2f} MFLOPs/img, fwd {row.fwd_ms:.2f} ms, "
                f"fwd+bwd {row.fwd_bwd_ms:.2f} ms at {input_size} on {bench_device}")
            if not cc.train:
                continue
            for i, seed in enumerate(cc.seeds):
                test, trained, task = train_and_test(run_config(cfg, module, seed), data, device)
                row.accs.append(test["acc"])
                row.train_seconds.append(test["train_seconds"])
                if test["stopped"] not in ("max_epochs", "max_steps"):
                    row.notes.append(f"seed {seed} stopped by {test['stopped']} at step {test['steps']}")
                log(f"[{module}] seed {seed}: test acc {test['acc']:.2f}%")
                if i == 0 and module != BASELINE and (map_names is None or module in map_names):
                    trained.cpu()
                    maps = attention_heatmaps(trained, task.normalize(map_images), cc.map_min_size)
                    if maps is not None:
                        heatmaps[module] = maps
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if not cc.skip_failed:
                raise
            row.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:160]
            log(f"[{module}] failed: {row.error}")
            (out / f"error-{module}.txt").write_text(traceback.format_exc(), encoding="utf-8")
    where = f"{bench_device}" + (f", {cc.bench_threads or threads} threads" if bench_device.type == "cpu" else "")
    header = (f"Backbone {cfg.model.arch}, data {cfg.data.path or cfg.data.hf_name}; latency/memory at input "
              f"{input_size} on {where}, torch {torch.__version__}; accuracy on {len(data[2])} test images "
              f"after the config's training recipe, seeds {cc.seeds}.")
    write_table(results, out / "results.md", header)
    write_csv(results, out / "results.csv")
    plot_bars(results, out / "comparison.png", header)
    if heatmaps:
        plot_attention_maps(map_images, heatmaps, out / "attention_maps.png")
    log(f"wrote {out / 'results.md'}, results.csv, comparison.png"
        + (", attention_maps.png" if heatmaps else ""))
    return results
