"""Name -> component registries that fail loudly.

Each family (sources, formats, steps, backends) lives in one package with one
module per component; the registry imports that package's modules on first
lookup, so `validate` pays only for light config classes. An unknown name is a
KeyError carrying a "did you mean"; a second registration under the same name
is an error. `pkg.module:Attr` names a component outside the harness.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from harness.errors import did_you_mean


class Registry:
    def __init__(self, kind: str, package: str) -> None:
        self.kind, self.package = kind, package
        self._items: dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str | None = None) -> Callable:
        def add(obj):
            key = name or getattr(obj, "name")
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} '{key}' is registered twice "
                                 f"({self._items[key].__module__} and {obj.__module__})")
            self._items[key] = obj
            return obj
        return add

    def get(self, name: str) -> Any:
        if ":" in name:
            return self._import(name)
        self._load()
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} '{name}'{did_you_mean(name, self._items)}")
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        module = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def _import(self, spec: str) -> Any:
        module_name, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise KeyError(f"cannot import {self.kind} '{spec}': {err}") from None
        return obj
