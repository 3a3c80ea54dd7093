"""One trainer for every task: see :class:`Trainer` and the :class:`Task` protocol.

A task's ``train`` (in its lifecycle module, see :mod:`.lifecycle`) is a few lines::

    cfg = load_task_config(MyConfig, path, overrides)       # MyConfig has a `training:` section; sets cpu_threads
    return run_training(MyTask(cfg), cfg.training, cfg, resume=resume, overwrite=overwrite, device=device)

What the trainer writes to ``training.run_dir``: ``config.yaml``, ``train.log``, ``metrics.jsonl`` (one record
per log step and per evaluation), ``checkpoints/step-NNNNNN.{safetensors,state.pt}`` (the last
``keep_last``), ``latest.json`` and ``best.safetensors`` + ``best.json``. ``load_weights(model, run_dir)``
loads the best weights (or the latest, with ``which="latest"``) for inference. ``--resume`` continues bit for
bit on CPU (same losses and weights as an uninterrupted run); SIGINT/SIGTERM finish the step, checkpoint and
exit with 128 + the signal number. Under ``torchrun`` each rank takes ``indices[rank::world]`` of every global
batch, and the loss is divided by the global item count, so N processes train exactly like one.
"""

from .checkpoint import CheckpointError, WriteError, average_weights, load_weights, read_weights, save_weights
from .cli import add_train_command, add_training_args, overrides_from_args, run_training
from .config import TrainingConfig
from .rundir import prepare_run_dir
from .task import StepOutput, Task
from .trainer import NonFiniteLossError, Trainer

__all__ = [
    "CheckpointError",
    "WriteError",
    "NonFiniteLossError",
    "StepOutput",
    "Task",
    "Trainer",
    "TrainingConfig",
    "add_train_command",
    "add_training_args",
    "average_weights",
    "load_weights",
    "overrides_from_args",
    "prepare_run_dir",
    "read_weights",
    "run_training",
    "save_weights",
]
