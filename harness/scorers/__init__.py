"""Scorers: one interface that scores the candidates of a prompt, for pair building and evaluation.

A scorer is a frozen dataclass registered by name (`scorer: verifier`) whose fields are its YAML
keys. It names what it needs up front, so a recipe fails at validation or before any generation
work rather than half-way through:

- `needs`: metadata fields every example must carry (`numbers`/`target` for the Countdown verifier);
- `model_refs()`: models it loads through `ctx.models` (an earlier stage, `base`, a path or hub id),
  whose fingerprints join the cache key of the step that runs it.

`score(examples, ctx)` returns, per example, one `Score` per candidate. Scores are comparable only
within one prompt. Pointwise scorers (verifiers, reward models, an LLM judge's rubric score) score
each candidate alone. Pairwise scorers (an LLM judge comparing two answers in both orders, a
PairRM-style ranker) set `pairwise = True` and turn their verdicts into per-candidate scores (win
counts of a round-robin or tournament) inside `score`, so every pair builder works on either kind;
they report verdict statistics (position flips, ties, unparseable verdicts) through `ctx.count`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

from harness.registry import Registry
from harness.schema import Component

SCORERS = Registry("scorer", "harness.scorers")


@dataclasses.dataclass(frozen=True)
class Score:
    value: float | None          # higher is better; None when the scorer could not score (counted)
    correct: bool | None = None  # a verifier's verdict; None when the scorer has no notion of correctness


class Scorer(Component, abc.ABC):
    tag: ClassVar[str] = "scorer"
    registry: ClassVar[Registry] = SCORERS
    #: metadata fields each example must carry
    needs: ClassVar[tuple[str, ...]] = ()
    #: the scorer compares candidates with each other rather than scoring each alone
    pairwise: ClassVar[bool] = False

    def model_refs(self) -> tuple[str, ...]:
        return ()

    def identity(self) -> dict:
        """What, beyond the scorer's parameters, pins its scores (a judge's prompt template text);
        it joins the cache key of the step that runs the scorer."""
        return {}

    def preflight(self) -> None:
        """Cheap checks before any data or training work (an endpoint's key and reachability); raise
        a one-line HarnessError when the scorer cannot run."""

    def required_fields(self) -> tuple[str, ...]:
        """The metadata fields this configuration needs (default: the class's `needs`)."""
        return self.needs

    @abc.abstractmethod
    def score(self, examples: list[dict], ctx) -> list[list[Score]]:
        """Per example, one Score per candidate (`harness.data.candidates.of(example)`)."""
