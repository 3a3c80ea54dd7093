"""Side-by-side comparison of attention modules on one backbone (``seq2seq-attn vision compare``).

For each module: parameters, forward FLOPs, forward and forward+backward latency and peak memory at
``input_size`` (:mod:`vision.benchmark`), and test accuracy after the fixed recipe (the config's ``training``
section) for every seed, as mean ± sample std. Outputs in ``out_dir`` (:mod:`vision.report`,
:mod:`vision.attention_maps`): ``results.md`` (Markdown table), ``results.csv``, ``comparison.png`` (bar charts)
and ``attention_maps.png`` (each module's map overlaid on the same test images).

Every (module, seed) run stores ``result.json`` in its run dir; a rerun with the same config reuses it, so an
interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from seq2seq_attn.config import to_dict
from seq2seq_attn.training.config import cpu_threads

from .attention_maps import attention_heatmaps, plot_attention_maps
from .benchmark import benchmark
from .config import VisionCompareConfig, VisionConfig, VisionModelConfig
from .data import ImageSet
from .registry import list_attention
from .report import BASELINE, ModuleResult, plot_bars, write_csv, write_table
from .task import VisionTask, build_model, prepare_data


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


def seed_config(cfg: VisionCompareConfig, module: str, seed: int) -> VisionConfig:
    """The plain training config of one (module, seed) run of the comparison (run dir
    ``out_dir/runs/{module}-seed{seed}``)."""
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



def compare_modules(cfg: VisionCompareConfig, device: str | None = None,
                    log: Callable[[str], None] = print) -> list[ModuleResult]:
    """Run the whole comparison of ``cfg`` and write its outputs to ``cfg.compare.out_dir``; returns one row
    per module (a module that failed has ``error`` set when ``compare.skip_failed``)."""
    with cpu_threads(cfg.training.cpu_threads):
        return _compare(cfg, device, log)


def _benchmark_module(cfg: VisionCompareConfig, row: ModuleResult, num_classes: int, input_size: list[int],
                      bench_device: torch.device) -> None:
    """Fill ``row``'s parameters, FLOPs, latency and memory (``compare.bench_threads`` CPU threads)."""
    cc = cfg.compare
    torch.manual_seed(0)
    model = build_model(module_model_config(cfg, row.module), num_classes, input_size[1], input_size[2:])
    with cpu_threads((cc.bench_threads or None) if bench_device.type == "cpu" else None):
        stats = benchmark(model, input_size, num_classes, bench_device, cc.bench_warmup, cc.bench_repeats)
    for k, v in stats.items():
        setattr(row, k, v)


def _train_module(cfg: VisionCompareConfig, row: ModuleResult, data: tuple[ImageSet, ImageSet, ImageSet],
                  device: str | None, map_images: torch.Tensor | None,
                  log: Callable[[str], None]) -> tuple[torch.Tensor, str] | None:
    """Train ``row.module`` once per seed and fill its accuracies; returns the first seed's attention maps of
    ``map_images`` (None when not asked for or the model has no attention module)."""
    maps = None
    for i, seed in enumerate(cfg.compare.seeds):
        test, trained, task = train_and_test(seed_config(cfg, row.module, seed), data, device)
        row.accs.append(test["acc"])
        row.train_seconds.append(test["train_seconds"])
        if test["stopped"] not in ("max_epochs", "max_steps"):
            row.notes.append(f"seed {seed} stopped by {test['stopped']} at step {test['steps']}")
        log(f"[{row.module}] seed {seed}: test acc {test['acc']:.2f}%")
        if i == 0 and map_images is not None:
            trained.cpu()
            maps = attention_heatmaps(trained, task.normalize(map_images), cfg.compare.map_min_size)
    return maps


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
    g = torch.Generator().manual_seed(cfg.data.data_seed)
    map_images = data[2].images[torch.randperm(len(data[2]), generator=g)[:cc.map_images]]  # uint8 (N, C, H, W)
    heatmaps: dict[str, tuple[torch.Tensor, str]] = {}
    results = []
    for module in modules:
        row = ModuleResult(module)
        results.append(row)
        try:
            _benchmark_module(cfg, row, probe.num_classes, input_size, bench_device)
            log(f"[{module}] params {row.params:,}, {row.flops / 1e6:.2f} MFLOPs/img, fwd {row.fwd_ms:.2f} ms, "
                f"fwd+bwd {row.fwd_bwd_ms:.2f} ms at {input_size} on {bench_device}")
            wants_map = module != BASELINE and (cc.map_modules is None or module in cc.map_modules)
            maps = _train_module(cfg, row, data, device, map_images if wants_map else None, log) if cc.train else None
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
    threads = cc.bench_threads or torch.get_num_threads()
    where = f"{bench_device}" + (f", {threads} threads" if bench_device.type == "cpu" else "")
    header = (f"Backbone {cfg.model.arch}, data {cfg.data.path or cfg.data.hf_name}; latency/memory at input "
              f"{input_size} on {where}, torch {torch.__version__}; accuracy on {len(data[2])} test images "
              f"after the config's training recipe, seeds {cc.seeds}.")
    write_table(results, out / "results.md", header)
    write_csv(results, out / "results.csv")
    plot_bars(results, out / "comparison.png", header)
    if heatmaps:
        plot_attention_maps(map_images, heatmaps, out / "attention_maps.png")
    log(f"wrote {out / 'results.md'}, results.csv, comparison.png" + (", attention_maps.png" if heatmaps else ""))
    return results
