"""Inject preference-label noise: swap chosen and rejected on a fraction of pairs.

For robustness studies of DPO/reward models under noisy labels (e.g. rDPO,
Chowdhury et al., 2024). A pair flips when hash(seed, id) falls below
`flip_rate`, so the decision for an example never depends on which other
examples survived upstream. Flipped rows carry `metadata.label_flipped`.
"""

from __future__ import annotations

import dataclasses

from harness.data.step import STEPS, Step, require_kind
from harness.data.steps.sample import rank
from harness.schema import param


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class LabelNoise(Step):
    """Swap chosen/rejected on `flip_rate` of pairs, decided per (seed, id)."""

    name = "label_noise"
    version = 1

    flip_rate: float = param(ge=0.0, le=1.0, help="probability that a pair's labels are swapped")
    seed: int | None = param(None, help="default: the recipe seed")

    def apply(self, examples, ctx):
        seed = ctx.seed if self.seed is None else self.seed
        threshold = self.flip_rate * 2.0**64
        for example in examples:
            require_kind(example, "preference", self.name)
            if rank(seed, example["id"], "label_noise") < threshold:
                flipped = {**example, "chosen": example["rejected"], "rejected": example["chosen"],
                           "metadata": {**example["metadata"], "label_flipped": True}}
                if "score_chosen" in example:
                    flipped["score_chosen"], flipped["score_rejected"] = example["score_rejected"], example["score_chosen"]
                ctx.count("flipped")
                yield flipped
            else:
                yield example
