"""One trainer for every task: see :class:`Trainer` and the :class:`Task` protocol."""

from .checkpoint import CheckpointError, average_weights, load_weights, read_weights, save_weights
from .cli import add_training_args, overrides_from_args, run_training, train_from_args
from .config import TrainingConfig
from .rundir import prepare_run_dir
from .task import StepOutput, Task
from .trainer import NonFiniteLossError, Trainer

__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "StepOutput",
    "Task",
    "Trainer",
    "TrainingConfig",
    "add_training_args",
    "average_weights",
    "load_weights",
    "overrides_from_args",
    "prepare_run_dir",
    "read_weights",
    "run_training",
    "save_weights",
    "train_from_args",
]
