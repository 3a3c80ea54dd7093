"""The one training loop shared by translation, text classification and vision.

A :class:`~seq2seq_attn.training.task.Task` supplies the model, batches, loss and metrics; the trainer owns
devices, precision, optimization, evaluation, checkpoints, resumption, signals, distribution and logging.

Exact resumption rests on three things: the epoch's batch list is a pure function of (seed, epoch) and is
built without touching the global RNGs; the checkpoint records how many batches of the epoch were consumed
and every RNG state (per rank); and a DataLoader never draws from the global RNG (it gets its own
generator; worker processes seed themselves from (seed, epoch, batch index)).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import to_dict
from .batches import EpochBatches, load_batches
from .checkpoint import (
    CKPT_DIR,
    init_weights,
    load_state_dict_checked,
    read_latest,
    read_state,
    read_weights,
    remove_stale_temp_files,
    write_best,
    write_checkpoint,
)
from .config import TrainingConfig
from .evaluation import evaluate_on_main, improves
from .guard import NonFiniteGuard, NonFiniteLossError, loss_and_grad_norm
from .meters import LogWindow, StepSums
from .optim import Schedule, build_optimizer
from .rundir import prepare_run_dir
from .runlog import RunLogger
from .runtime import (
    DistContext,
    move_to_device,
    preserve_rng,
    resolve_device,
    resolve_precision,
    rng_state,
    seed_everything,
    seed_rank_streams,
    set_deterministic,
)
from .task import StepOutput

_TASK_METHODS = ("build_model", "train_batches", "collate", "loss", "evaluate")
__all__ = ["NonFiniteLossError", "Trainer"]


class Trainer:
    """``Trainer(task, cfg, full_config).fit()`` trains ``task`` as ``cfg`` (the ``training:`` section) says.

    ``full_config`` (dataclass or dict) is saved as ``config.yaml`` in the run dir and compared on resume.
    ``resume`` continues from ``latest.json``; ``overwrite`` clears the trainer's files from the run dir;
    ``device`` overrides ``cfg.device``. After ``fit()``, ``trainer.model`` is the trained (unwrapped) model.
    """

    def __init__(
        self,
        task: Any,
        cfg: TrainingConfig,
        full_config: Any = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        device: str | None = None,
    ) -> None:
        missing = [m for m in _TASK_METHODS if not callable(getattr(task, m, None))]
        if missing:
            raise TypeError(f"{type(task).__name__} is not a Task: missing {', '.join(missing)}")
        if not isinstance(cfg, TrainingConfig):
            raise TypeError(f"cfg must be a TrainingConfig, got {type(cfg).__name__}")
        if device:
            cfg = dataclasses.replace(cfg, device=device)
        self.task, self.cfg = task, cfg
        cfg.apply_cpu_threads()
        plain = to_dict(full_config) if full_config is not None else {}
        if isinstance(plain, dict):
            plain["training"] = to_dict(cfg)  # the effective settings, --device and --set included
        self.full_config = plain
        self.resume, self.overwrite = resume, overwrite
        self.run_dir = Path(cfg.run_dir)
        self.model: nn.Module | None = None
        self.summary: dict[str, Any] = {}
        self._signal: int | None = None

    # ------------------------------------------------------------------------------------------ public

    def fit(self) -> dict[str, Any]:
        """Train; returns a summary (steps, epochs, why it stopped, best metric, wall time)."""
        cfg = self.cfg
        self.dist = DistContext.from_env()
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        self.amp_dtype, use_scaler = resolve_precision(cfg.precision, self.device)
        self.dist.init(self.device)
        old_handlers = self._install_signal_handlers()
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        self.log: RunLogger | None = None
        try:
            # Every rank checks the run dir and reads the checkpoint before rank 0 changes anything on disk.
            guarded = tuple(getattr(self.task, "resume_keys", ()))
            prepare_run_dir(self.run_dir, self.full_config, self.resume, self.overwrite, write=False, guarded=guarded)
            notes = self._setup(use_scaler)
            self.dist.barrier()
            if self.dist.is_main:
                # Every check has passed: only now is anything written (config.yaml, then the task's files).
                prepare_run_dir(self.run_dir, self.full_config, self.resume, self.overwrite, write=True,
                                guarded=guarded)
                if callable(getattr(self.task, "write_run_files", None)):
                    self.task.write_run_files(self.run_dir)
                stale = [*remove_stale_temp_files(self.run_dir), *remove_stale_temp_files(self.run_dir / CKPT_DIR)]
                if stale:
                    notes.append(f"removed {len(stale)} temporary files left by an interrupted save: "
                                 f"{', '.join(p.name for p in stale[:3])}{' ...' if len(stale) > 3 else ''}")
            self.dist.barrier()
            self.log = RunLogger(self.run_dir, self.dist.is_main, cfg.tensorboard)
            if self.resumed_from is not None:
                self.log.truncate_after(self.step)
            for note in notes:
                self.log.info(note)
            self.summary = self._train()
            return self.summary
        finally:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            set_deterministic(was_deterministic)
            if self.log is not None:
                self.log.close()
            self.dist.shutdown()

    # ------------------------------------------------------------------------------------------- setup

    def _setup(self, use_scaler: bool) -> list[str]:
        """Build the model and optimizer and load the checkpoint to resume from; reads, never writes."""
        cfg, device = self.cfg, self.device
        notes = []
        set_deterministic(cfg.deterministic)
        seed_everything(cfg.seed)
        raw = self.task.build_model()
        if not isinstance(raw, nn.Module):
            raise TypeError(f"{type(self.task).__name__}.build_model() must return an nn.Module, got {type(raw)}")
        raw.to(device)
        if cfg.channels_last:
            raw.to(memory_format=torch.channels_last)
        self.model = raw
        self.optimizer = build_optimizer(raw, cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        with preserve_rng():
            first = self.task.train_batches(0)
        if len(first) == 0:
            raise ValueError(f"{type(self.task).__name__}.train_batches(0) returned no batches")
        steps_per_epoch = math.ceil(len(first) / cfg.accumulate)
        total = steps_per_epoch * cfg.max_epochs
        self.schedule = Schedule(cfg, min(total, cfg.max_steps) if cfg.max_steps else total)
        self.step = self.epoch = self.position = 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0
        self.guard = NonFiniteGuard(cfg.max_nonfinite, self.run_dir)
        self.last_eval_step = self.last_save_step = -1
        self.last_metrics: dict[str, float] = {}
        self.resumed_from: int | None = None
        self.window = LogWindow()
        self.epoch_len = 0  # batches in the current epoch

        rng_states = None
        latest = read_latest(self.run_dir) if self.resume else None
        if latest is not None:
            state = read_state(latest["state"])
            load_state_dict_checked(raw, read_weights(latest["weights"], device), latest["weights"])
            self._load_state(state)
            rng_states = state["rng"]
            self.resumed_from = self.step
            notes.append(
                f"resumed from {latest['weights']}: epoch {self.epoch + 1}, step {self.step}, "
                f"batch {self.position} of the epoch, lr {self.schedule.lr(max(1, self.step)):.3g}"
            )
        elif self.resume:
            notes.append(f"{self.run_dir}: no checkpoint yet, starting a new run")
        if latest is None and cfg.init_from:
            notes.append(f"initialized from {init_weights(raw, cfg.init_from, device)}")

        model = self.dist.wrap(raw, device, cfg.ddp_find_unused_parameters)
        self.train_model = torch.compile(model) if cfg.compile else model
        seed_rank_streams(rng_states, self.dist.rank, self.dist.world_size, cfg.seed, self.step)
        params = sum(p.numel() for p in raw.parameters())
        notes.append(
            f"training {type(raw).__name__} ({params:,} parameters) on {device}"
            f"{f' x{self.dist.world_size}' if self.dist.enabled else ''}, precision "
            f"{str(self.amp_dtype).replace('torch.', '') if self.amp_dtype else 'fp32'}, run dir {self.run_dir}"
        )
        return notes

    def _state(self) -> dict:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "schedule": self.schedule.state_dict(),
            "best": self.best,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "nonfinite": self.guard.count,
            "last_eval_step": self.last_eval_step,
            "world_size": self.dist.world_size,
            # the unlogged part of the log window, so a resumed run logs the same averages
            "window": self.window.state_dict(),
        }

    def _load_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.schedule.load_state_dict(state["schedule"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.best, self.best_step = state["best"], state["best_step"]
        self.bad_evals, self.guard.count = state["bad_evals"], state["nonfinite"]
        self.last_eval_step, self.last_save_step = state["last_eval_step"], self.step
        self.window = LogWindow(**state["window"])

    # -------------------------------------------------------------------------------------------- loop

    def _train(self) -> dict[str, Any]:
        cfg = self.cfg
        self.start_time = time.monotonic()
        self.window.start = time.perf_counter()
        stop: str | None = None
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            stop = "max_steps"
        while stop is None and self.epoch < cfg.max_epochs:
            stop = self._run_epoch()
        stop = stop or "max_epochs"
        if stop != "signal" and self.last_eval_step != self.step:
            self._evaluate()
        if self.last_save_step != self.step or stop == "signal":
            self._save()
        wall = time.monotonic() - self.start_time
        if stop == "signal":
            name = signal.Signals(self._signal).name if self._signal else "signal"
            self.log.info(
                f"stopped by {name} at epoch {self.epoch + 1}, step {self.step}; checkpoint saved. "
                f"Continue with --resume (run dir {self.run_dir})"
            )
        else:
            self.log.info(
                f"done ({stop}): {self.step} steps in {wall:.1f}s; best {cfg.metric} "
                f"{self.best if self.best is not None else 'n/a'} at step {self.best_step}"
            )
        return {
            "run_dir": str(self.run_dir),
            "rank": self.dist.rank,
            "world_size": self.dist.world_size,
            "steps": self.step,
            "epochs": self.epoch,
            "stopped": stop,
            "signal": signal.Signals(self._signal).name if self._signal else None,
            "best_metric": cfg.metric,
            "best_value": self.best,
            "best_step": self.best_step,
            "last_metrics": self.last_metrics,
            "resumed_from_step": self.resumed_from,
            "wall_seconds": wall,
        }

    def _run_epoch(self) -> str | None:
        cfg = self.cfg
        with preserve_rng():  # a task that shuffles with the global RNG must not shift training randomness
            batches = list(self.task.train_batches(self.epoch))
        n = self.epoch_len = len(batches)
        if self.position > n:
            raise ValueError(f"checkpoint position {self.position} is past epoch {self.epoch}'s {n} batches")
        dataset = EpochBatches(self.task, batches, self.dist.rank, self.dist.world_size, cfg.seed, self.epoch)
        loader = load_batches(dataset, self.position, cfg.num_workers, pin=self.device.type == "cuda")
        bar = tqdm(
            total=n,
            initial=self.position,
            desc=f"epoch {self.epoch + 1}/{cfg.max_epochs}",
            unit="batch",
            disable=not (self.dist.is_main and cfg.progress),
            dynamic_ncols=True,
            leave=False,
            mininterval=1.0,
        )
        stop: str | None = None
        acc = StepSums()
        micro = 0
        try:
            for i, loaded in enumerate(loader, start=self.position):
                last = micro + 1 == cfg.accumulate or i + 1 == n
                self._forward_backward(loaded.batch, loaded.live, acc, first=micro == 0, last=last)
                bar.update(1)
                micro += 1
                if not last:
                    continue
                micro = 0
                self.position = i + 1
                stop = self._finish_step(acc, bar)
                acc = StepSums()
                if stop is not None:
                    break
        finally:
            bar.close()
        if self.position == n and stop != "signal":
            self.epoch, self.position = self.epoch + 1, 0
            if cfg.eval_every is None:
                stop = self._evaluate() or stop
                if cfg.save_every is None:
                    self._save()
        return stop

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _forward_backward(self, batch: Any, live: bool, acc: StepSums, first: bool, last: bool) -> None:
        cuda = self.device.type == "cuda"
        batch = move_to_device(batch, self.device, non_blocking=cuda, channels_last=self.cfg.channels_last)
        no_sync = self.dist.enabled and not last
        with self.train_model.no_sync() if no_sync else contextlib.nullcontext():
            with self._autocast():
                out: StepOutput = self.task.loss(self.train_model, batch)
            items = int(out.num_items) if live else 0
            if first:
                # Divide by the global item count of the whole step. Known exactly for one micro-batch;
                # with accumulation, estimated from the first and corrected in _finish_step.
                first_items = self._global_sum([float(items)])[0]
                acc.ref = max(first_items, 1.0) * self.cfg.accumulate
            scale = (self.dist.world_size / acc.ref) if live else 0.0
            self.scaler.scale(out.loss_sum * scale).backward()
        if live:
            acc.add(out.loss_sum, items, int(out.num_units), out.logs)

    def _global_sum(self, values: list[float]) -> list[float]:
        if not self.dist.enabled:
            return values
        reduce_device = self.device if self.device.type == "cuda" else torch.device("cpu")
        return self.dist.all_reduce_sum(torch.tensor(values, dtype=torch.float64, device=reduce_device)).tolist()

    def _finish_step(self, acc: StepSums, bar: tqdm) -> str | None:
        cfg = self.cfg
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        # A finite loss can still have non-finite gradients: measure their norm unless clipping does.
        check = cfg.clip_grad_norm is None and not self.scaler.is_enabled() and bool(grads)
        loss_t = acc.loss if acc.loss is not None else torch.zeros((), device=self.device)
        loss_sum, grad_check = loss_and_grad_norm(loss_t, grads, check)
        out_of_time = (
            self.dist.is_main
            and cfg.max_minutes is not None
            and time.monotonic() - self.start_time >= cfg.max_minutes * 60
        )
        loss_sum, items, units, signalled, timed_out = self._global_sum(
            [loss_sum, float(acc.items), float(acc.units), float(self._signal is not None), float(out_of_time)]
        )
        stepped, problem = False, None
        if not math.isfinite(loss_sum):
            problem = f"non-finite loss ({loss_sum})"
        elif items > 0:
            if items != acc.ref:  # accumulation: rescale from the estimated to the true global item count
                grads = [p.grad for p in self.model.parameters() if p.grad is not None]
                torch._foreach_mul_(grads, acc.ref / items)
            grad_norm = None
            if cfg.clip_grad_norm is not None:
                self.scaler.unscale_(self.optimizer)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad_norm))
            elif check:
                grad_norm = grad_check * acc.ref / items if items != acc.ref else grad_check
            if grad_norm is not None and not math.isfinite(grad_norm) and not self.scaler.is_enabled():
                # A finite loss with overflowing gradients (fp16's GradScaler skips those steps itself).
                problem = f"non-finite gradient norm ({grad_norm})"
            else:
                lr = self.schedule.apply(self.optimizer, self.step + 1)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.step += 1
                stepped = True
                self.guard.passed()
                self._log_step(loss_sum, items, units, lr, grad_norm, acc.logs, bar)
        self.optimizer.zero_grad(set_to_none=True)
        if problem is not None:
            self.guard.skip(problem, self.epoch, self.step, self.log)

        if signalled:
            return "signal"
        stop = None
        if stepped and cfg.eval_every is not None and self.step % cfg.eval_every == 0:
            stop = self._evaluate()
            if cfg.save_every is None:
                self._save()
        if stepped and cfg.save_every is not None and self.step % cfg.save_every == 0:
            self._save()
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return stop or "max_steps"
        if timed_out:
            return stop or "max_minutes"
        return stop

    def _log_step(
        self, loss_sum: float, items: float, units: float, lr: float, grad_norm: Any, logs: dict, bar: tqdm
    ) -> None:
        self.window.add(loss_sum, items, units, logs)
        if self.step % self.cfg.log_every:
            return
        unit = getattr(self.task, "unit", "item")
        record = self.window.record(self.epoch + 1, lr, unit, grad_norm)
        self.log.metrics("train", self.step, record)
        bar.set_postfix(
            loss=f"{record['loss']:.4f}",
            lr=f"{lr:.3g}",
            **{f"{unit}/s": f"{record[f'{unit}_per_s']:.0f}"},
            refresh=False,
        )
        self.window = LogWindow()

    # --------------------------------------------------------------------------- evaluation, checkpoints

    def _evaluate(self) -> str | None:
        """Evaluate on rank 0, share the metrics, track the best; returns "early_stopping" when patience ran out."""
        cfg = self.cfg
        payload = evaluate_on_main(self.task, self.model, self.device, self.dist, cfg.metric, self._autocast())
        self.last_eval_step = self.step
        self.last_metrics = payload
        # epochs done, with the fraction of the current one (evaluations may fall mid-epoch)
        epochs = round(self.epoch + (self.position / self.epoch_len if self.epoch_len else 0.0), 3)
        value = payload[cfg.metric]
        improved = improves(value, self.best, cfg.metric_mode)
        if improved:
            self.guard.check_weights(self.model, self.step)
            self.best, self.best_step, self.bad_evals = value, self.step, 0
            if self.dist.is_main:
                info = {
                    "metric": cfg.metric,
                    "mode": cfg.metric_mode,
                    "value": value,
                    "step": self.step,
                    "epochs": epochs,
                    "metrics": payload,
                }
                write_best(self.run_dir, self.model.state_dict(), info)
        else:
            self.bad_evals += 1
        self.schedule.on_evaluation(value)
        self.log.metrics("eval", self.step, {"epochs": epochs, **payload, "best": self.best})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in payload.items())
        self.log.info(f"eval at step {self.step} ({epochs:g} epochs): {shown}{' (best)' if improved else ''}")
        if cfg.patience is not None and self.bad_evals >= cfg.patience:
            self.log.info(f"early stopping: no better {cfg.metric} in {self.bad_evals} evaluations")
            return "early_stopping"
        return None

    def _save(self) -> None:
        self.guard.check_weights(self.model, self.step)
        state = self._state()
        state["rng"] = self.dist.gather(rng_state())  # every rank's streams, for an exact continuation
        if self.dist.is_main:
            write_checkpoint(self.run_dir, self.model.state_dict(), state, self.step, self.cfg.keep_last)
        self.last_save_step = self.step

    # ----------------------------------------------------------------------------------------- signals

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, self._on_signal)
        return old

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signal is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self._signal = signum
