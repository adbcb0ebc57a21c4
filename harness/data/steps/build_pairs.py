"""Preference pairs from scored candidates: prompt examples in, preference examples out.

    - {step: generate, model: sft, n: 4}
    - {step: score, scorer: {scorer: verifier, task: countdown}}
    - {step: build_pairs, rule: best_vs_worst, margin: 0.5}

Rules:

- `best_vs_worst`: one pair per prompt, the highest- against the lowest-scoring candidate (the
  on-policy DPO recipe of Xiong et al., 2024, and SimPO's self-generated pairs, Meng et al., 2024);
- `all_pairs`: every pair whose score difference reaches the margin (more pairs per prompt, as in
  the pairwise data of Ouyang et al., 2022, where K responses give up to K(K-1)/2 comparisons);
- `best_vs_random`: the best against a random worse candidate, drawn by hash(seed, prompt id,
  candidate text), so the draw never depends on row or candidate order.

Candidates whose normalised text is the same count as one. A pair needs a score difference above 0
and at least `margin`. A prompt without a pair is dropped with its reason:
`fewer_than_two_distinct_candidates`, `unscored` (no candidate has a score), `tie` (all distinct
candidates score the same) or `below_margin`. Candidates with no score are left out and counted.

Every built pair carries `metadata.pairing` (what the data card reads): the step and rule, the
prompt's id, the number of distinct candidates, the score margin, and the candidates' origins.
The helpers here are shared with `hard_negatives`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.data import candidates as cands
from harness.data import example as ex
from harness.data.step import STEPS, Step, require_kind
from harness.data.steps.sample import rank
from harness.errors import HarnessError
from harness.schema import param

PAIRING = "pairing"  # metadata key of a built pair
EPS = 1e-9  # score differences are compared with this slack: 0.3 - 0.1 reaches a margin of 0.2


def check_candidates(examples: list[dict], step: str, need_scores: bool = True) -> None:
    """One clear line before any work when the input cannot give pairs at all."""
    for example in examples:
        require_kind(example, "prompt", step)
    if not any(cands.of(e) for e in examples):
        raise HarnessError(f"step '{step}': none of the {len(examples)} examples has candidates; "
                           f"add a generate step (and a score step) before {step}")
    if need_scores and not any(c.get("score") is not None for e in examples for c in cands.of(e)):
        raise HarnessError(f"step '{step}': no candidate of the {len(examples)} examples has a score; "
                           f"add a score step before {step}")


def distinct(found: list[dict]) -> tuple[list[dict], int]:
    """(candidates with distinct normalised text in their first order, how many duplicates were folded).

    Of duplicates the first scored one is kept, so a duplicate never hides a score."""
    kept: dict[str, dict] = {}
    for c in found:
        key = ex.normalize(c["text"])
        if key not in kept or (kept[key].get("score") is None and c.get("score") is not None):
            kept[key] = c
    return list(kept.values()), len(found) - len(kept)


def pick(found: list[dict], seed: int, example_id: str, salt: str) -> dict:
    """A seeded random choice among candidates, by hash(seed, prompt id, text): order never matters."""
    return min(found, key=lambda c: (rank(seed, f"{example_id}:{ex.normalize(c['text'])}", salt), c["text"]))


def worse(chosen: dict, other: dict, margin: float) -> bool:
    """`other` scores below `chosen` by more than 0 and by at least `margin`."""
    gap = chosen["score"] - other["score"]
    return gap > 0 and gap >= margin - EPS


def make_pair(example: dict, chosen: dict, rejected: dict, step: str, rule: str, n_distinct: int,
              **extra) -> dict:
    """A preference example with the `pairing` record the data card reads."""
    margin = None
    if chosen.get("score") is not None and rejected.get("score") is not None:
        margin = float(chosen["score"]) - float(rejected["score"])
    record = {"step": step, "rule": rule, "prompt_id": example["id"], "candidates": n_distinct, "margin": margin,
              "chosen_origin": chosen.get("origin"), "rejected_origin": rejected.get("origin"), **extra}
    return cands.to_pair(example, chosen, rejected, **{PAIRING: record})


def count_candidates(ctx, found: list[dict], duplicates: int, unscored: int) -> None:
    ctx.count(f"candidates_per_prompt:{len(found) + duplicates}")
    if duplicates:
        ctx.count("duplicate_candidates", duplicates)
    if unscored:
        ctx.count("unscored_candidates", unscored)


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class BuildPairs(Step):
    """Turn each prompt's scored candidates into preference pairs by `rule`."""

    name = "build_pairs"
    version = 1
    requires = ("scores",)

    rule: Literal["best_vs_worst", "all_pairs", "best_vs_random"] = param(
        "best_vs_worst", help="best_vs_worst (one pair per prompt), all_pairs, or best_vs_random")
    margin: float = param(0.0, ge=0.0, help="least score difference of a pair (ties are always dropped)")
    seed: int | None = param(None, help="best_vs_random's draw (default: the recipe seed)")

    @property
    def adds_rows(self) -> bool:  # all_pairs gives several pairs per prompt; the others one or none
        return self.rule == "all_pairs"

    def apply(self, examples, ctx):
        examples = list(examples)
        check_candidates(examples, self.name)
        seed = ctx.seed if self.seed is None else self.seed
        for example in examples:
            found, duplicates = distinct(cands.of(example))
            scored = [c for c in found if c.get("score") is not None]
            count_candidates(ctx, found, duplicates, len(found) - len(scored))
            if found and not scored:
                ctx.drop(example, "unscored", hint=f"add a score step before {self.name}")
                continue
            if len(scored) < 2:
                ctx.drop(example, "fewer_than_two_distinct_candidates")
                continue
            best = max(c["score"] for c in scored)
            lowest = min(c["score"] for c in scored)
            if best == lowest:
                ctx.drop(example, "tie")
                continue
            if best - lowest < self.margin - EPS:
                ctx.drop(example, "below_margin")
                continue
            pairs = list(self._pairs(scored, best, lowest, seed, example["id"]))
            ctx.count("pairs", len(pairs))
            ctx.count("prompts_paired")
            for chosen, rejected in pairs:
                yield make_pair(example, chosen, rejected, self.name, self.rule, len(found))

    def _pairs(self, scored, best, lowest, seed, example_id):
        top = pick([c for c in scored if c["score"] == best], seed, example_id, "build_pairs:best")
        if self.rule == "best_vs_worst":
            yield top, pick([c for c in scored if c["score"] == lowest], seed, example_id, "build_pairs:worst")
        elif self.rule == "best_vs_random":
            yield top, pick([c for c in scored if worse(top, c, self.margin)], seed, example_id, "build_pairs:random")
        else:  # every qualifying pair, higher score first, in candidate order
            ordered = sorted(scored, key=lambda c: -c["score"])
            for i, chosen in enumerate(ordered):
                for rejected in ordered[i + 1:]:
                    if worse(chosen, rejected, self.margin):
                        yield chosen, rejected
