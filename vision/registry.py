"""Registry of vision attention modules: ``create_attention(name, channels, **kwargs)``, ``list_attention()``.

Modules register themselves with ``@register_attention("name")``; every module in ``vision.attention`` is
imported on first use, so adding a file is enough to add a module (as in timm's ``create_attn``).
"""

from __future__ import annotations

import importlib
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
    if name not in _REGISTRY:
        raise ValueError(f"unknown attention module {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](channels, **kwargs)
