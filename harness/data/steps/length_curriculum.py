"""Order examples by token length so training sees them short-to-long (or the reverse).

Curriculum learning (Bengio et al., 2009). The order is the row order of the
prepared dataset; the manifest records `order: {step: length_curriculum, ...}`
and a trainer that finds it must iterate sequentially instead of shuffling.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Literal

import numpy as np

from harness.data.lengths import Field, measure
from harness.data.step import STEPS, Step
from harness.schema import param


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class LengthCurriculum(Step):
    """Sort by token length: `ascending`, `descending`, or `bucketed`.

    `bucketed` splits the data into `buckets` length quantiles, presented
    shortest bucket first, and shuffles (seeded) inside each bucket: easy-to-hard
    at the coarse level without ordering artefacts inside a bucket.
    Ties keep their incoming order (stable sort).
    """

    name = "length_curriculum"
    version = 1
    uses_tokenizer = True
    sets_order = True

    order: Literal["ascending", "descending", "bucketed"] = "ascending"
    field: Field = "total"
    buckets: int = param(4, ge=1)
    seed: int | None = param(None, help="shuffle seed inside buckets (default: the recipe seed)")

    def apply(self, examples, ctx):
        examples = list(examples)
        lengths = measure(examples, self.field, ctx.tokenizer)
        if self.order == "descending":
            index = np.argsort(-lengths, kind="stable")
        else:
            index = np.argsort(lengths, kind="stable")
        if self.order == "bucketed":
            rng = random.Random(ctx.seed if self.seed is None else self.seed)
            parts = [list(p) for p in np.array_split(index, min(self.buckets, max(len(index), 1)))]
            for part in parts:
                rng.shuffle(part)
            index = [i for part in parts for i in part]
        for i in index:
            yield examples[int(i)]
