"""Exact deduplication on a chosen key, after case and whitespace normalisation."""

from __future__ import annotations

import dataclasses
from typing import Literal

import xxhash

from harness.data import example as ex
from harness.data.step import STEPS, Step


def dedup_key(example: dict, key: str) -> str:
    if key == "prompt":
        return ex.normalize(ex.prompt_text(example))
    if key == "triple":
        return "\x00".join(ex.normalize(t) for t in (ex.prompt_text(example), ex.response_text(example, "chosen"),
                                                       ex.response_text(example, "rejected")))
    return ex.normalize(ex.full_text(example))


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class Dedup(Step):
    """Keep the first example for each normalised key; later copies are dropped.

    `key: prompt` keeps one example per prompt, `triple` one per
    (prompt, chosen, rejected), `example` one per full example text.
    """

    name = "dedup"
    version = 1

    key: Literal["prompt", "example", "triple"] = "example"

    def apply(self, examples, ctx):
        seen: dict[int, str] = {}
        for example in examples:
            digest = xxhash.xxh3_128_intdigest(dedup_key(example, self.key).encode("utf-8"))
            if digest in seen:
                ctx.drop(example, f"duplicate_{self.key}", duplicate_of=seen[digest])
                continue
            seen[digest] = example["id"]
            yield example
