"""The study config (``seq2seq-attn study CONFIG``): tasks × mechanisms × seeds, expanded to cells.

A study file is YAML with four sections::

    study:                      # where and how (StudySection)
      out_dir: runs/study_cpu
      seeds: [1, 2, 3]
    tasks:                      # name -> a base config of an existing task and its budget (StudyTask)
      sst2:
        kind: classify          # classify | translation | vision | captioning
        config: configs/cls_sst2.yaml
        set: {training.max_epochs: 2}
        mechanisms: [none, additive, dot]   # optional: default every mechanism that has settings for the kind
    mechanisms:                 # name -> --set overrides per task kind (Mechanism)
      dot:
        family: score
        set:
          classify: {model.score: dot}
          translation: {model.rnn.decoder: luong, model.rnn.score: dot}
    growth: {...}               # optional: cost growth with the number of positions (GrowthConfig)

Every override key is checked against the task's typed config before anything trains: a key the task's
config does not have is a ``ConfigError`` naming the study file, the mechanism and the key.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import ConfigError, from_dict, load_config, load_yaml

KINDS = ("classify", "translation", "vision", "captioning")
#: the quality figure of each kind's report table (its test split's metric of that name)
DEFAULT_METRICS = {"classify": "accuracy", "translation": "bleu", "vision": "acc", "captioning": "bleu"}
#: the other test figures the report shows beside it (means over the seeds)
DEFAULT_ALSO = {"classify": ["macro_f1"], "translation": ["chrf"], "vision": [],
                "captioning": ["word_acc", "exact", "attn_correctness"]}


def task_config_class(kind: str) -> type:
    """The typed config of a task kind (imported lazily: the tasks sit above the study in the layers)."""
    if kind == "classify":
        from ..classification.config import ClassificationConfig

        return ClassificationConfig
    if kind == "translation":
        from ..translation.config import TranslationConfig

        return TranslationConfig
    if kind == "captioning":
        from ..captioning.config import CaptionConfig

        return CaptionConfig
    from vision.config import VisionConfig

    return VisionConfig


@dataclass
class StudySection:
    """Where the study writes (``out_dir``: ``cells/`` and the report) and how every cell is measured.

    ``stat_batches``: training-split batches (model in eval mode) whose captured attention gives the
    statistics; ``bench_*``: the cost measurement on one training batch (``bench_threads`` CPU threads).
    """

    out_dir: str = "runs/study"
    seeds: list[int] = field(default_factory=lambda: [1])
    device: str = "cpu"
    stat_batches: int = 2
    bench_warmup: int = 1
    bench_repeats: int = 3
    bench_threads: int = 1
    title: str = "Attention study"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds: at least one seed")
        if self.stat_batches < 1 or self.bench_repeats < 1 or self.bench_warmup < 0:
            raise ValueError("stat_batches and bench_repeats must be >= 1, bench_warmup >= 0")


@dataclass
class StudyTask:
    """One task: ``kind``, a ``config`` file of that task (relative paths: from the working directory), the
    ``set`` overrides giving the study's budget, and the ``mechanisms`` compared on it (default: all that
    have settings for ``kind``). ``metric`` names the quality figure (filled from the kind when empty),
    ``also`` the other test figures shown beside it (default: :data:`DEFAULT_ALSO` of the kind)."""

    kind: Literal["classify", "translation", "vision", "captioning"]
    config: str
    set: dict[str, Any] = field(default_factory=dict)
    mechanisms: list[str] | None = None
    metric: str = ""
    also: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.metric:
            self.metric = DEFAULT_METRICS[self.kind]
        if self.also is None:
            self.also = [m for m in DEFAULT_ALSO[self.kind] if m != self.metric]


@dataclass
class Mechanism:
    """One attention mechanism: its ``family`` (score, normalizer, structure, baseline; grouping in the
    report) and, per task kind, the ``--set`` overrides that select it in that task's config."""

    family: str = "other"
    set: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        bad = [k for k in self.set if k not in KINDS]
        if bad:
            raise ValueError(f"set: unknown task kind {bad[0]!r} (expected {', '.join(KINDS)})")


@dataclass
class GrowthConfig:
    """Cost growth with the number of positions N (see :mod:`.growth`): text sequences of ``text_lengths``
    tokens, images of ``image_sides`` × ``image_sides`` positions; ``mechanisms`` by name (default all of
    :data:`.growth.MECHANISMS`); a size whose predicted peak memory exceeds ``memory_cap_mb`` or whose
    predicted time exceeds ``time_cap_s`` is recorded as out of budget and not run."""

    text_lengths: list[int] = field(default_factory=lambda: [64, 256, 1024, 4096, 16384])
    image_sides: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128])
    mechanisms: list[str] | None = None
    dim: int = 64
    channels: int = 64
    batch: int = 1
    device: str = "cpu"
    threads: int = 1
    repeats: int = 3
    warmup: int = 1
    memory_cap_mb: float = 4096.0
    time_cap_s: float = 20.0
    backward: bool = True

    def __post_init__(self) -> None:
        if min(self.text_lengths + self.image_sides, default=1) < 1 or self.dim < 1 or self.channels < 1:
            raise ValueError("text_lengths, image_sides, dim and channels must be >= 1")
        if self.repeats < 1 or self.warmup < 0 or self.batch < 1 or self.threads < 1:
            raise ValueError("repeats, batch and threads must be >= 1, warmup >= 0")
        if not (self.memory_cap_mb > 0 and self.time_cap_s > 0):
            raise ValueError("memory_cap_mb and time_cap_s must be > 0")


@dataclass
class StudyConfig:
    """A whole study file."""

    study: StudySection = field(default_factory=StudySection)
    tasks: dict[str, StudyTask] = field(default_factory=dict)
    mechanisms: dict[str, Mechanism] = field(default_factory=dict)
    growth: GrowthConfig = field(default_factory=GrowthConfig)
    path: str = ""  # the file it was read from (set by load_study)


@dataclass(frozen=True)
class Cell:
    """One training run of the study: ``task`` × ``mechanism`` × ``seed``, number ``index`` in the study's
    order, with the ``overrides`` applied to the task's config file ``config``."""

    index: int
    task: str
    kind: str
    mechanism: str
    family: str
    seed: int
    config: str
    overrides: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.task}__{self.mechanism}__seed{self.seed}"

    def identity(self) -> dict[str, Any]:
        """What makes two cells the same run: every field but ``index`` (the place in the study's order and
        so the shard; adding a task or mechanism shifts it without changing what the cell trains), as JSON
        values (tuples as lists), so that it compares equal to a ``result.json``'s ``cell`` record."""
        return cell_identity(dataclasses.asdict(self))


def cell_identity(record: Any) -> dict[str, Any] | None:
    """The identity of a saved cell record (a ``result.json``'s ``cell``, with or without ``index``): the
    record without ``index``, in JSON values; None when it is not a mapping."""
    if not isinstance(record, dict):
        return None
    return json.loads(json.dumps({k: v for k, v in record.items() if k != "index"}))


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass inside ``tp`` (``X``, ``X | None``), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _is_mapping(tp: Any) -> bool:
    """``dict[...]`` or a union holding one: free-form keys below it."""
    return typing.get_origin(tp) is dict or tp is dict or any(_is_mapping(a) for a in typing.get_args(tp))


def missing_key(cls: type, dotted: str) -> str | None:
    """The first prefix of ``dotted`` that the typed config ``cls`` has no field for (None when every part
    exists; keys inside a free-form ``dict`` field are not checked)."""
    node: Any = cls
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        types = _field_types(node)
        if part not in types:
            return ".".join(parts[: i + 1])
        node = _dataclass_of(types[part])
        if node is None:
            deeper = i + 1 < len(parts)
            return ".".join(parts[: i + 2]) if deeper and not _is_mapping(types[part]) else None
    return None


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study file: types, task config files present, mechanism names known, every
    override key present in its task's config. Raises ``ConfigError`` naming ``path`` (and the task,
    mechanism and key)."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    cfg = from_dict(StudyConfig, data, str(path))
    cfg.path = str(path)
    for name, task in cfg.tasks.items():
        if not Path(task.config).is_file():
            raise ConfigError(f"{path}: tasks.{name}.config: {task.config}: config file not found")
        for mech in task.mechanisms or []:
            if mech not in cfg.mechanisms:
                raise ConfigError(f"{path}: tasks.{name}.mechanisms: unknown mechanism {mech!r} "
                                  f"(defined: {', '.join(cfg.mechanisms) or 'none'})")
            if task.kind not in cfg.mechanisms[mech].set:
                raise ConfigError(f"{path}: tasks.{name}.mechanisms: mechanism {mech!r} has no settings for "
                                  f"{task.kind} tasks (mechanisms.{mech}.set.{task.kind})")
    _check_keys(cfg)
    return cfg


def _check_keys(cfg: StudyConfig) -> None:
    """Every override key of every task and of every mechanism on it exists in the task's config class."""
    for name, task in cfg.tasks.items():
        cls = task_config_class(task.kind)
        for key in task.set:
            if (bad := missing_key(cls, key)) is not None:
                raise ConfigError(f"{cfg.path}: tasks.{name}.set: key {key!r}: {task.kind} configs have no {bad!r}")
        for mech in task_mechanisms(cfg, name):
            for key in cfg.mechanisms[mech].set[task.kind]:
                if (bad := missing_key(cls, key)) is not None:
                    raise ConfigError(f"{cfg.path}: mechanism {mech!r} on task {name!r}: key {key!r}: "
                                      f"{task.kind} configs ({task.config}) have no {bad!r}")


def task_mechanisms(cfg: StudyConfig, task: str) -> list[str]:
    """The mechanisms compared on ``task``: its own list, else every mechanism with settings for its kind."""
    t = cfg.tasks[task]
    if t.mechanisms is not None:
        return list(t.mechanisms)
    return [m for m, mech in cfg.mechanisms.items() if t.kind in mech.set]


def modality(kind: str) -> str:
    """What the attention of a task kind runs over: ``image`` positions (vision; captioning's decoder attends
    over the feature map) or ``text`` tokens (classify, translation)."""
    return "image" if kind in ("vision", "captioning") else "text"


def expand_cells(cfg: StudyConfig) -> list[Cell]:
    """Every (task, mechanism, seed) cell in a fixed order (task, then mechanism, then seed), numbered."""
    cells: list[Cell] = []
    for name, task in cfg.tasks.items():
        for mech in task_mechanisms(cfg, name):
            m = cfg.mechanisms[mech]
            for seed in cfg.study.seeds:
                overrides = {**task.set, **m.set[task.kind], "training.seed": seed}
                cells.append(Cell(len(cells), name, task.kind, mech, m.family, seed, task.config, overrides))
    return cells


def check_cell_configs(cfg: StudyConfig, cells: list[Cell]) -> None:
    """Build each cell's typed task config once (values too: a bad score name fails here, before any cell
    trains). Raises ``ConfigError`` naming the study file, the task and the mechanism."""
    for cell in cells:
        try:
            load_config(task_config_class(cell.kind), cell.config, {**cell.overrides, "training.run_dir": "x"})
        except ConfigError as e:
            raise ConfigError(f"{cfg.path}: mechanism {cell.mechanism!r} on task {cell.task!r}: {e}") from None


def _resolved(cfg: StudyConfig, task: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The task's typed config with ``overrides`` applied, as a dict (run dir and seed left out)."""
    t = cfg.tasks[task]
    typed = load_config(task_config_class(t.kind), t.config, {**t.set, **overrides, "training.run_dir": "x"})
    out = dataclasses.asdict(typed)
    out["training"].pop("seed", None)
    return out


def default_mechanism(cfg: StudyConfig, task: str) -> str | None:
    """The mechanism of ``task`` that changes nothing in its config (e.g. ``additive`` on a classifier whose
    config already scores additively; ``none`` on a vision config without a module), or None: what a
    mechanism added on top of the task's own model (a channel gate) is read against."""
    t = cfg.tasks[task]
    base = _resolved(cfg, task, {})
    for mech in task_mechanisms(cfg, task):
        if _resolved(cfg, task, cfg.mechanisms[mech].set[t.kind]) == base:
            return mech
    return None

