"""Win rate against a reference model, judged by a reward model (the Stanford CS224R evaluation).

The model and the reference answer each prompt greedily; a reward model (a
`trl_reward` stage or a hub sequence classifier) scores both answers to the
same prompt, and the model wins that prompt when its reward is higher by more
than `tie_margin`. Rewards are compared only within a prompt: a reward model's
scale drifts between prompts, so a mean reward says little, while the
within-prompt comparison is what its Bradley-Terry training objective
(Ouyang et al., 2022) makes meaningful.
"""

from __future__ import annotations

import dataclasses

from harness.evaluate import RUNNERS, EvalContext, TaskResult
from harness.evaluate.pairwise import TIE, PairwiseTask, outcome, tally, win_rate
from harness.schema import param


@RUNNERS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class RewardWinRate(PairwiseTask):
    """Share of prompts where a reward model prefers the model's answer to the reference's (ties count half)."""

    name = "reward_winrate"
    version = 1
    metrics = ("win_rate", "reward_margin")

    reward_model: str = param(help="an earlier trl_reward stage, or a sequence-classification model id or path")
    tie_margin: float = param(0.0, ge=0.0, help="reward differences up to this size are ties")
    max_length: int = param(2048, ge=8, help="prompt + answer tokens the reward model reads")

    def evaluate(self, ctx: EvalContext) -> TaskResult:
        from harness.evaluate import auxiliary

        answers = self.answers(ctx)
        prompts = answers.prompt_set.prompts
        messages = [p.messages for p in prompts]
        with auxiliary.reward_model(ctx, self.reward_model, self.task_name, self.batch_size,
                                    self.max_length) as scorer:
            model_scores = scorer.score(messages, answers.model)
            reference_scores = scorer.score(messages, answers.reference)
        identical = [m == r for m, r in zip(answers.model, answers.reference)]
        outcomes = [TIE if same else outcome(m, r, self.tie_margin)
                    for same, m, r in zip(identical, model_scores, reference_scores)]
        margins = [0.0 if same else m - r for same, m, r in zip(identical, model_scores, reference_scores)]
        samples = [{"id": p.id, "prompt": p.text, "output": out, "reference": ref, "reward": m,
                    "reference_reward": r, "outcome": o}
                   for p, out, ref, m, r, o in zip(prompts, answers.model, answers.reference, model_scores,
                                                   reference_scores, outcomes)][:5]
        return TaskResult(
            metrics={"win_rate": win_rate(outcomes), "reward_margin": sum(margins) / len(margins)},
            item_ids=[p.id for p in prompts], per_item={"win_rate": outcomes, "reward_margin": margins},
            counts={**tally(outcomes), "identical": sum(identical)},
            throughput=answers.throughput, version=str(self.version), data_hash=answers.prompt_set.data_hash,
            info={"prompts": answers.prompt_set.source, "reference": self.reference,
                  "reward_model": self.reward_model, "tie_margin": self.tie_margin},
            samples=samples)
