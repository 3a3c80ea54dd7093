"""Registry of vision attention modules: ``create_attention(name, channels, **kwargs)``, ``list_attention()``.

Modules register themselves with ``@register_attention("name")``; every module in ``vision.attention`` is
imported on first use, so adding a file is enough to add a module (as in timm's ``create_attn``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_loaded = False


def register_attention(name: str) -> Callable:
    """Class/function decorator: make ``name`` buildable by :func:`create_attention`."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"attention module {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    from . import attention as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    _loaded = True


def list_attention() -> list[str]:
    """Names of all registered modules, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def create_attention(name: str | None, channels: int, **kwargs) -> nn.Module:
    """Build the attention module ``name`` for ``channels`` input channels; ``None``/"" gives identity."""
    if not name:
        return nn.Identity()
    _load_all()
    check_attention_kwargs(name, kwargs)
    try:
        return _REGISTRY[name](channels, **kwargs)
    except TypeError as e:  # the names fit (checked above), so a value has the wrong type
        raise ValueError(f"attention module {name!r} with {kwargs}: {e}") from e


def attention_arguments(name: str) -> list[str] | None:
    """The keyword arguments module ``name`` takes besides ``channels`` (None: it takes any)."""
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown attention module {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    params = list(inspect.signature(_REGISTRY[name]).parameters.values())[1:]  # after channels
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_attention_kwargs(name: str, kwargs: dict) -> None:
    """Raise ``ValueError`` naming the module and its accepted arguments when ``kwargs`` has a key that
    module ``name`` does not take."""
    accepted = attention_arguments(name)
    if accepted is None:
        return
    unknown = [str(k) for k in kwargs if k not in accepted]
    if unknown:
        raise ValueError(f"attention module {name!r} takes no argument {', '.join(map(repr, unknown))} "
                         f"(accepted: {', '.join(accepted) or 'none'})")
