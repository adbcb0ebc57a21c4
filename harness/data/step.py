"""The step protocol: a frozen dataclass that maps a stream of examples to a stream.

A step's fields are its YAML keys. `apply` receives the examples in order and
yields the ones it keeps (a new dict for a changed row, never an in-place edit).
Every removal goes through `ctx.drop(example, reason)`: the runner checks that
`rows in - drops == rows out` for steps that do not add rows, so nothing
disappears without a reason. Global steps (dedup, curriculum) may materialise
the stream inside `apply`; the signature stays the same.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
from typing import Any, Callable, ClassVar, Iterable, Iterator

from harness.registry import Registry
from harness.schema import Component

STEPS = Registry("step", "harness.data.steps")


class Step(Component, abc.ABC):
    tag: ClassVar[str] = "step"
    registry: ClassVar[Registry] = STEPS
    #: the step reads token counts, so the tokenizer is part of its cache key
    uses_tokenizer: ClassVar[bool] = False
    #: the step sets a row order that training must keep (a curriculum)
    sets_order: ClassVar[bool] = False
    #: the step may add rows (oversampling); others may only keep or drop
    adds_rows: ClassVar[bool] = False
    #: what the step adds to examples for later steps ("candidates", "scores") and what it needs
    #: from earlier ones; a recipe whose steps need something no earlier step provides fails validation
    provides: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()

    def identity(self) -> dict:
        """What, beyond the step's parameters, pins its output (e.g. the content of files it reads)."""
        return {}

    def preflight(self) -> None:
        """Cheap checks run before any data or training work when the step is not cached (a judge
        endpoint's key and reachability); raise a one-line HarnessError when the step cannot run."""

    def required_metadata(self) -> tuple[str, ...]:
        """Metadata fields every input example must carry (`numbers`/`target` for a Countdown
        verifier); checked once the sources are loaded, before any step runs."""
        return ()

    def model_refs(self) -> tuple[str, ...]:
        """Models this step loads through `ctx.models` (an earlier stage's name, `base`, a local path
        or a hub id). Their fingerprints join the step's cache key, and a stage whose data names an
        earlier stage is prepared only once that stage has trained."""
        return ()

    @abc.abstractmethod
    def apply(self, examples: Iterable[dict], ctx: "StepContext") -> Iterator[dict]:
        """Yield the examples this step keeps."""


@dataclasses.dataclass
class StepContext:
    """What a running step may use and report: seed, tokenizer, drops and counters."""

    label: str
    seed: int
    tokenizer_factory: Callable[[], Any] | None = None
    keep_rejects: bool = True
    #: loads the models named by the step's `model_refs()`: `ctx.models.load(name) -> (model, tokenizer)`
    models: Any = None
    drops: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    counters: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    rejects: list = dataclasses.field(default_factory=list)
    _tokenizer: Any = None

    def drop(self, example: dict, reason: str, **detail: Any) -> None:
        self.drops[reason] += 1
        if self.keep_rejects:
            self.rejects.append({"reason": reason, **detail, "example": example})

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            if self.tokenizer_factory is None:
                raise RuntimeError(f"{self.label}: no tokenizer available")
            self._tokenizer = self.tokenizer_factory()
        return self._tokenizer


def require_kind(example: dict, kind: str, step: str) -> None:
    """Steps that only make sense for one kind say so in one clear line."""
    from harness.errors import HarnessError

    if example["kind"] != kind:
        raise HarnessError(f"step '{step}' needs {kind} examples, but source '{example['source']}' "
                           f"gives {example['kind']} examples (id {example['id']}); "
                           f"move the step or change the source's kind")
