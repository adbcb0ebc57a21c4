"""Near-duplicate removal with MinHash-LSH (Broder, 1997), as in Gopher/RefinedWeb-style
pipelines; the vectorised engine is `harness.data.minhash`."""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.data import example as ex
from harness.data.step import STEPS, Step
from harness.errors import FieldError
from harness.schema import param

@STEPS.register()
@dataclasses.dataclass(frozen=True)
class MinHashDedup(Step):
    """Drop near-duplicates: estimated Jaccard of word `ngram`s >= `threshold`.

    Candidates come from LSH with `bands` bands of `num_perm / bands` rows each;
    every candidate is verified against `threshold` before it counts. In each
    cluster the example kept is chosen by `keep`: `first` (earliest in the
    stream), `longest` (most characters in the compared text) or `highest_score`
    (largest `score_chosen`, then earliest).
    """

    name = "minhash_dedup"
    version = 1

    field: Literal["prompt", "response", "example"] = "example"
    threshold: float = param(0.8, gt=0.0, le=1.0, help="estimated Jaccard similarity to count as duplicate")
    ngram: int = param(5, ge=1, help="words per shingle")
    num_perm: int = param(128, ge=8, le=4096, help="signature length (number of hash bins)")
    bands: int = param(32, ge=1, help="LSH bands; rows per band = num_perm / bands")
    keep: Literal["first", "longest", "highest_score"] = "first"

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise FieldError("bands", f"must divide num_perm ({self.num_perm})")

    def apply(self, examples, ctx):
        import numpy as np

        from harness.data.minhash import near_duplicates

        examples = list(examples)
        texts = [ex.TEXT_VIEWS[self.field](e) for e in examples]
        if self.keep == "longest":
            priority = np.lexsort((np.arange(len(texts)), -np.array([len(t) for t in texts])))
        elif self.keep == "highest_score":
            scores = np.array([e.get("score_chosen") or 0.0 for e in examples])
            priority = np.lexsort((np.arange(len(texts)), -scores))
        else:
            priority = np.arange(len(texts))
        rank = np.empty(len(texts), dtype=np.int64)
        rank[priority] = np.arange(len(texts))
        duplicate_of = near_duplicates(texts, threshold=self.threshold, ngram=self.ngram,
                                       num_perm=self.num_perm, bands=self.bands, priority=rank)
        for example, keeper in zip(examples, duplicate_of.tolist()):
            if keeper >= 0:
                ctx.drop(example, "near_duplicate", duplicate_of=examples[keeper]["id"])
            else:
                yield example
