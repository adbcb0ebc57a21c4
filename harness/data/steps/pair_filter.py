"""Drop preference pairs that teach nothing or contradict each other."""

from __future__ import annotations

import collections
import dataclasses

import xxhash

from harness.data import example as ex
from harness.data.step import STEPS, Step, require_kind


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class PairFilter(Step):
    """Drop identical chosen/rejected, score ties, and contradicted pairs.

    - `identical_pair`: chosen equals rejected after normalisation;
    - `tie`: both scores exist and are equal (no preference signal);
    - `contradicted`: this pair's chosen is another pair's rejected for the same prompt.
    """

    name = "pair_filter"
    version = 1

    identical: bool = True
    ties: bool = True
    contradictions: bool = True

    def apply(self, examples, ctx):
        examples = list(examples)
        keys = []  # (prompt, chosen, rejected) per pair, each normalised once and kept as a 128-bit hash
        rejected_by_prompt: dict[int, set] = collections.defaultdict(set)
        for example in examples:
            require_kind(example, "preference", self.name)
            key = tuple(_digest(t) for t in (ex.prompt_text(example), ex.response_text(example, "chosen"),
                                             ex.response_text(example, "rejected")))
            keys.append(key)
            rejected_by_prompt[key[0]].add(key[2])
        for example, (prompt, chosen, rejected) in zip(examples, keys):
            if self.identical and chosen == rejected:
                ctx.drop(example, "identical_pair")
            elif self.ties and example.get("score_chosen") is not None and example["score_chosen"] == example.get("score_rejected"):
                ctx.drop(example, "tie")
            elif self.contradictions and chosen in rejected_by_prompt[prompt]:
                ctx.drop(example, "contradicted")
            else:
                yield example


def _digest(text: str) -> int:
    """xxh3-128 of the normalised text: equal texts compare equal as before (a collision has odds of
    about n^2 / 2^129), and a million pairs hold three small ints each instead of three normalised
    copies of their texts (several GB)."""
    return xxhash.xxh3_128_intdigest(ex.normalize(text).encode("utf-8"))
