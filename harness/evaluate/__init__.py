"""Eval runners: one file per runner in this package, chosen by `runner:` in a suite.

A suite task is a frozen Runner config (its fields are the YAML keys). A runner
does two things:

- `items(ctx)`: the eval items as plain text (prompt, and the reference answer
  when `index: [prompt, answer]`), so decontamination can index exactly what is
  scored, without loading the model;
- `evaluate(ctx)`: score the model and return a TaskResult with per-item scores,
  from which the orchestrator computes stderr, bootstrap CIs, clean-subset
  metrics and paired comparisons.

Heavy imports (torch, lm_eval, vllm) happen inside these methods, never at
module import, so `harness validate` stays fast.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from harness.registry import Registry
from harness.schema import Component, param

RUNNERS = Registry("runner", "harness.evaluate")

IndexField = Literal["prompt", "answer"]


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """One eval item as decontamination sees it."""

    id: str
    prompt: str
    answer: str = ""

    def text(self, fields) -> str:
        return "\n".join(getattr(self, f) for f in fields if getattr(self, f))


@dataclasses.dataclass
class EvalContext:
    """What a runner gets at call time. `model`/`tokenizer`/`generator` are None in `items()`."""

    model_name: str                        # checkpoint path, hub id or embedded:<name>
    seed: int = 0
    limit: int | None = None               # the task's `limit`, after command-line overrides
    model: Any = None                      # loaded causal LM, eval mode
    tokenizer: Any = None
    generator: Any = None                  # harness.evaluate.generate.Generator
    resolve: Callable[[str], str] = str    # a model reference (stage name, hub id, embedded) -> loadable path
    work_dir: Path | None = None           # scratch folder for this task
    device: str = "cpu"
    log: Callable[[str], None] = print


@dataclasses.dataclass
class TaskResult:
    """A runner's output. `per_item[metric]` is aligned with `item_ids`; a None score means the
    item could not be scored for that metric (counted, never treated as correct)."""

    metrics: dict[str, float | None]
    item_ids: list[str] = dataclasses.field(default_factory=list)
    per_item: dict[str, list[float | None]] = dataclasses.field(default_factory=dict)
    stderr: dict[str, float | None] = dataclasses.field(default_factory=dict)  # when the library gives its own
    counts: dict[str, int] = dataclasses.field(default_factory=dict)           # unparseable, ties, inconsistent, ...
    throughput: dict[str, float] = dataclasses.field(default_factory=dict)     # examples_per_s, tokens_per_s
    version: str = "1"
    data_hash: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)            # e.g. test_set: base | plus
    warnings: list[str] = dataclasses.field(default_factory=list)
    samples: list[dict] = dataclasses.field(default_factory=list)              # a few prompt/output/score rows


@dataclasses.dataclass(frozen=True)
class Decontamination:
    """How eval items are matched against training data (both tests use `harness.decontaminate.ngrams`).

    An item is contaminated when a training document shares any `ngram`-gram
    with it (GPT-3 / lm-eval style), or when one document's `coverage_ngram`-grams
    cover more than `coverage` of its words (Tulu 3 style).
    """

    any_overlap: bool = param(True, help="run the any-shared-n-gram test (off for heavily templated items)")
    ngram: int = param(13, ge=3, le=50, help="n for the any-overlap test")
    coverage_ngram: int = param(8, ge=3, le=50, help="n for the coverage test")
    coverage: float = param(0.5, gt=0.0, le=1.0, help="item word coverage above which an item is contaminated")
    common_fraction: float = param(0.05, gt=0.0, le=1.0,
                                   help="n-grams in more than this share of a task's items are template, not indexed")
    threshold: float = param(0.0, ge=0.0, le=1.0,
                             help="a task whose contaminated rate exceeds this marks the row contaminated")
    worst: int = param(5, ge=0, help="worst matches kept per task in the report")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Runner(Component, abc.ABC):
    """Common task keys; each runner adds its own options."""

    tag: ClassVar[str] = "runner"
    registry: ClassVar[Registry] = RUNNERS
    metrics: ClassVar[tuple[str, ...]] = ()   # metrics this runner reports; the first is the default primary

    task: str = param("", help="task name in reports (defaults to the runner name)")
    metric: str = param("", help="primary metric (defaults to the runner's first)")
    limit: int | None = param(None, ge=1, help="evaluate only the first N items")
    index: tuple[IndexField, ...] = param(["prompt"], help="item fields that decontamination indexes")
    max_new_tokens: int = param(256, ge=1, help="generation budget per response")
    batch_size: int = param(16, ge=1, help="prompts generated together on a CPU")
    gpu_batch_size: int | None = param(None, ge=1, help="prompts generated together on a GPU (default: as many as "
                                                        "free memory holds)")
    decontamination: Decontamination | None = param(None, help="this task's overlap checks (default: the suite's)")

    @property
    def task_name(self) -> str:
        return self.task or self.name

    @property
    def primary(self) -> str:
        return self.metric or (self.metrics[0] if self.metrics else "")

    def items(self, ctx: EvalContext) -> list[EvalItem] | None:
        """The eval items for decontamination; None when they cannot be read offline."""
        return None

    @abc.abstractmethod
    def evaluate(self, ctx: EvalContext) -> TaskResult:
        """Score `ctx.model` on this task."""
