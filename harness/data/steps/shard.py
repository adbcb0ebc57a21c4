"""Disjoint blocks of a seeded order: block k holds the k-th run of `n` examples.

Iterative preference training draws fresh prompts each round: Xu et al. (2023, "Some things are
more CRINGE than others") and Yuan et al. (2024, "Self-Rewarding Language Models") train round
k+1 on prompts round k never saw. In an iterative stage (`iterate:`) a `shard` step without
`block:` takes block k in round k, so rounds are disjoint by construction (a per-round `sample`
seed would only make overlap unlikely). The order is a seeded hash of each example's id, so the
blocks do not depend on the order the pool arrives in.
"""

from __future__ import annotations

import dataclasses

from harness.data.step import STEPS, Step
from harness.data.steps.sample import rank
from harness.errors import HarnessError
from harness.schema import param


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class Shard(Step):
    """Keep block `block` (1 = the first) of `n` examples in a seeded hash order; blocks never overlap."""

    name = "shard"
    version = 1

    n: int = param(ge=1, help="examples per block")
    block: int | None = param(None, ge=1, help="which block, 1 = the first (in an iterative stage, default: the "
                                               "round number)")
    seed: int | None = param(None, help="default: the recipe seed (the same for every round)")

    def needs_iteration(self) -> bool:
        """Without `block:` the block is the round number, so this step belongs in an iterative stage."""
        return self.block is None

    def for_iteration(self, index: int) -> "Shard":
        return self if self.block is not None else dataclasses.replace(self, block=index)

    def apply(self, examples, ctx):
        if self.block is None:
            raise HarnessError("step 'shard' has no block: give `block:` or use it in an iterative stage")
        examples = list(examples)
        seed = ctx.seed if self.seed is None else self.seed
        order = sorted(range(len(examples)), key=lambda i: rank(seed, examples[i]["id"], "shard"))
        first = (self.block - 1) * self.n
        keep = set(order[first:first + self.n])
        ctx.count("pool", len(examples))
        if len(keep) < self.n:   # the pool ran out: fewer rows than asked, said in the card
            ctx.count("short_by", self.n - len(keep))
        for i, example in enumerate(examples):
            if i in keep:
                yield example
            else:
                ctx.drop(example, "other_block")
