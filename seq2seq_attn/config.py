"""Typed YAML configs.

A config file is a YAML mapping whose sections (``data``, ``model``, ``training``, ``decoding``, ...) are
loaded into dataclasses. Each task declares its own top-level dataclass; this module turns a nested dict
into it, checking every key and type before any work starts. Errors name the file and the dotted key::

    configs/demo.yaml: model.hidden_size: expected int, got str ('big')
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")

_MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A config value is unknown, missing or of the wrong type. The message names file and key."""


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = get_origin(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp))
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _mismatch(value: Any, tp: Any, key: str, where: str, expected: str | None = None) -> ConfigError:
    """"FILE: KEY: expected TYPE, got VALUE_TYPE (VALUE)", the value shortened to 60 characters."""
    shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
    return ConfigError(f"{where}: {key}: expected {expected or _type_name(tp)}, got {type(value).__name__} ({shown})")


_REJECT = object()  # a scalar checker's answer for a value of the wrong type


def _to_float(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    # YAML 1.1 reads "1e-3" (no dot) as a string; accept numeric strings of that form.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return _REJECT


#: Scalar type -> checker returning the converted value or ``_REJECT`` (bools are not ints here).
_SCALARS: dict[Any, Callable[[Any], Any]] = {
    bool: lambda v: v if isinstance(v, bool) else _REJECT,
    int: lambda v: v if isinstance(v, int) and not isinstance(v, bool) else _REJECT,
    float: _to_float,
    str: lambda v: v if isinstance(v, str) else _REJECT,
    Path: lambda v: Path(v) if isinstance(v, (str, Path)) else _REJECT,
}


def _convert_union(value: Any, tp: Any, key: str, where: str) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg, key, where)
        except ConfigError:
            pass
    raise _mismatch(value, tp, key, where)


def _convert_literal(value: Any, tp: Any, key: str, where: str) -> Any:
    if value in get_args(tp):
        return value
    raise ConfigError(f"{where}: {key}: expected one of {_type_name(tp)}, got {value!r}")


def _convert_sequence(value: Any, tp: Any, key: str, where: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise _mismatch(value, tp, key, where)
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise _mismatch(value, tp, key, where, f"{len(args)} items")
        items = [_convert(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args))]
    else:
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]", where) for i, v in enumerate(value)]
    return items if origin is list else tuple(items)


def _convert_dict(value: Any, tp: Any, key: str, where: str) -> Any:
    if not isinstance(value, dict):
        raise _mismatch(value, tp, key, where)
    k_tp, v_tp = get_args(tp) or (Any, Any)
    return {_convert(k, k_tp, f"{key}.{k}", where): _convert(v, v_tp, f"{key}.{k}", where) for k, v in value.items()}


#: Generic origin (``list`` of ``list[int]``, ``Union`` of ``int | None``, ...) -> converter.
_GENERICS: dict[Any, Callable[[Any, Any, str, str], Any]] = {
    Union: _convert_union,
    types.UnionType: _convert_union,
    typing.Literal: _convert_literal,
    list: _convert_sequence,
    tuple: _convert_sequence,
    dict: _convert_dict,
}


def _convert(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against type ``tp`` and convert (ints to floats, lists to tuples, dicts to dataclasses).

    Raises ``ConfigError`` naming ``where`` (the file) and ``key`` (dotted, with list indices)."""
    if tp is Any:
        return value
    converter = _GENERICS.get(get_origin(tp))
    if converter is not None:
        return converter(value, tp, key, where)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise _mismatch(value, tp, key, where, f"a mapping ({tp.__name__})")
        return _build(tp, value, key, where)
    checker = _SCALARS.get(tp)
    if checker is not None:
        converted = checker(value)
        if converted is not _REJECT:
            return converted
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise _mismatch(value, tp, key, where)


def _build(cls: type[T], data: dict, prefix: str, where: str) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in data:
        if k not in fields:
            full = f"{prefix}.{k}" if prefix else str(k)
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: {full}: unknown key (known keys: {known})")
    kwargs = {}
    for name, f in fields.items():
        full = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], full, where)
        elif f.default is _MISSING and f.default_factory is _MISSING:
            raise ConfigError(f"{where}: {full}: required value is missing")
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        # __post_init__ checks raise plain ValueErrors; give them the file and section.
        raise ConfigError(f"{where}: {prefix or '<top>'}: {e}") from e
    return obj


def from_dict(cls: type[T], data: dict, where: str = "<config>") -> T:
    """Build dataclass ``cls`` from a nested dict, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a mapping, got {type(data).__name__}")
    return _build(cls, data, "", where)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; syntax errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line}: invalid YAML: {getattr(e, 'problem', e)}") from e
    return data if data is not None else {}


def apply_overrides(data: dict, overrides: dict[str, Any] | None) -> dict:
    """Set each dotted key of ``overrides`` (``{"training.lr": 3e-4}``, as ``--set`` gives them) in the nested
    mapping ``data``, creating sections as needed; returns ``data``. The one implementation of ``--set``.

    Raises ``ConfigError`` naming the key when it is empty or runs through a plain value
    ("--set training.lr.x: training.lr is a value (0.1), not a section").
    """
    for dotted, value in (overrides or {}).items():
        parts = str(dotted).split(".")
        if not all(p.strip() for p in parts):
            raise ConfigError(f"--set {dotted!r}: expected a dotted key such as training.lr")
        node = data
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                section = ".".join(parts[: i + 1])
                raise ConfigError(f"--set {dotted}: {section} is a value ({node!r}), not a section")
        node[parts[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path, overrides: dict | None = None) -> T:
    """Load ``path`` into ``cls``; ``overrides`` (dotted keys, see :func:`apply_overrides`) are applied before
    checking."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return from_dict(cls, apply_overrides(data, overrides), str(path))


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) to plain YAML-safe data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_config(obj: Any, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(to_dict(obj), fh, sort_keys=False)


def parse_override(text: str) -> tuple[str, Any]:
    """``training.lr=3e-4`` -> ("training.lr", 0.0003); the value is read as YAML (a YAML error is a
    :class:`ConfigError` naming the override)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. training.max_epochs=3")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r}: empty key; expected KEY=VALUE, e.g. training.max_epochs=3")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"--set {text}: invalid YAML value ({problem})") from None
    return key.strip(), value
