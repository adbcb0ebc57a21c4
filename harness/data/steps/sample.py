"""Seeded subsample by count or fraction, stable under upstream filtering."""

from __future__ import annotations

import dataclasses

import xxhash

from harness.data.step import STEPS, Step
from harness.errors import FieldError
from harness.schema import param


def rank(seed: int, example_id: str, salt: str) -> int:
    """A per-example random number that depends only on (seed, id): stable when other rows are removed."""
    return xxhash.xxh3_64_intdigest(f"{salt}:{seed}:{example_id}".encode("utf-8"))


def chosen_ids(examples: list[dict], k: int, seed: int, salt: str) -> set[int]:
    """Positions of the k examples with the smallest (seed, id) rank."""
    order = sorted(range(len(examples)), key=lambda i: rank(seed, examples[i]["id"], salt))
    return set(order[:k])


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class Sample(Step):
    """Keep `n` examples, or a `fraction` of them, chosen by a seeded hash of each id.

    Order is preserved. Because selection ranks examples by hash(seed, id), the
    same seed keeps the same examples even after an upstream filter changes.
    """

    name = "sample"
    version = 1

    n: int | None = param(None, ge=0)
    fraction: float | None = param(None, ge=0.0, le=1.0)
    seed: int | None = param(None, help="default: the recipe seed")

    def __post_init__(self) -> None:
        if (self.n is None) == (self.fraction is None):
            raise FieldError("n", "give exactly one of n or fraction")

    def apply(self, examples, ctx):
        examples = list(examples)
        k = self.n if self.n is not None else round(self.fraction * len(examples))
        keep = chosen_ids(examples, min(k, len(examples)), ctx.seed if self.seed is None else self.seed, "sample")
        for i, example in enumerate(examples):
            if i in keep:
                yield example
            else:
                ctx.drop(example, "not_sampled")
