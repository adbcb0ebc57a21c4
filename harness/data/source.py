"""The source protocol: a frozen dataclass that yields canonical examples.

Sources are named by the `source:` key in a recipe. A row a source cannot turn
into a canonical example is counted under a named reason via `ctx.drop`, never
guessed at and never fatal. `identity()` returns what, beyond the config,
pins the content (a file hash, a hub revision) for the cache fingerprint.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Iterator

from harness.data.step import StepContext
from harness.registry import Registry
from harness.schema import Component

SOURCES = Registry("source", "harness.data.sources")


class Source(Component, abc.ABC):
    tag: ClassVar[str] = "source"
    registry: ClassVar[Registry] = SOURCES

    @abc.abstractmethod
    def load(self, ctx: StepContext) -> Iterator[dict]:
        """Yield the examples this source produces."""

    @property
    def display_name(self) -> str:
        """The label examples carry in `source`; defaults to the source's name."""
        return getattr(self, "label", None) or self.name

    def identity(self) -> dict:
        return {}

    def describe(self) -> dict:
        """Provenance for the manifest and data card: where from, which revision, licence."""
        return {"label": self.display_name, "source": self.name}
