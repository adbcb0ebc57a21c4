"""Score every candidate of every prompt with a scorer from `harness.scorers`.

    - step: score
      scorer: {scorer: verifier, task: countdown}     # or {scorer: reward_model, model: rm}

Each candidate gets `score` (and `correct`, from verifiers). A candidate a scorer cannot score
keeps `score: None` and is counted (`unscored`); pair builders never use it.
"""

from __future__ import annotations

import dataclasses

from harness.data import candidates
from harness.data.step import STEPS, Step
from harness.errors import HarnessError
from harness.scorers import Scorer
from harness.schema import param


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class ScoreCandidates(Step):
    """Fill in each candidate's score with `scorer`."""

    name = "score"
    version = 1
    requires = ("candidates",)
    provides = ("scores",)

    scorer: Scorer = param(help="a scorer: {scorer: verifier, task: countdown}, {scorer: reward_model, model: rm}")

    def model_refs(self):
        return self.scorer.model_refs()

    def identity(self):
        return self.scorer.identity()

    def preflight(self):
        self.scorer.preflight()

    def required_metadata(self):
        return self.scorer.required_fields()

    def apply(self, examples, ctx):
        examples = list(examples)
        for example in examples:
            if not candidates.of(example):
                raise HarnessError(f"step 'score': example {example['id']} has no candidates; "
                                   f"put a `generate` step (or a source with candidates) before it")
        scores = self.scorer.score(examples, ctx)
        for example, found in zip(examples, scores):
            scored = []
            for c, s in zip(candidates.of(example), found):
                ctx.count("scored" if s.value is not None else "unscored")
                if s.correct is not None:
                    ctx.count("correct" if s.correct else "wrong")
                scored.append({**c, "score": s.value, "correct": s.correct})
            yield candidates.with_candidates(example, scored)
