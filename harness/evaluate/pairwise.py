"""What the two win-rate tasks share: answers from the model and a reference, and the outcome arithmetic.

Both tasks compare the model's answer with a reference model's answer to the
*same* prompt and turn the comparison into a per-prompt outcome: 1 (the model
wins), 0.5 (a tie) or 0 (the model loses). The win rate is the mean outcome,
ties counting as half a win, as in AlpacaEval (Li et al., 2023) and the
reward-model win rate of Stanford CS224R. Scores are only ever compared
within a prompt, never across prompts. Two identical answers are a tie without
asking the judge or comparing rewards (batch padding alone can move a reward
by a rounding error).
"""

from __future__ import annotations

import dataclasses

from harness.evaluate import EvalContext
from harness.evaluate.prompts import HubPrompts, PromptSet, PromptTask
from harness.schema import param

WIN, TIE, LOSS = 1.0, 0.5, 0.0


def outcome(model_score: float, reference_score: float, tie_margin: float = 0.0) -> float:
    """1 when the model's score beats the reference's by more than `tie_margin`, 0 when it trails by more, else 0.5."""
    difference = model_score - reference_score
    if difference > tie_margin:
        return WIN
    if difference < -tie_margin:
        return LOSS
    return TIE


def tally(outcomes: list[float]) -> dict[str, int]:
    """Counts of wins, ties and losses; they add up to the number of outcomes."""
    return {"wins": sum(o == WIN for o in outcomes), "ties": sum(o == TIE for o in outcomes),
            "losses": sum(o == LOSS for o in outcomes)}


def win_rate(outcomes: list[float]) -> float:
    """Mean outcome: wins count 1, ties 0.5, losses 0."""
    return sum(outcomes) / len(outcomes)


@dataclasses.dataclass
class Answers:
    prompt_set: PromptSet
    model: list[str]
    reference: list[str]
    throughput: dict[str, float]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairwiseTask(PromptTask):
    """The model and a reference model answer every prompt (greedy); a subclass compares the answers."""

    prompts: str | HubPrompts = param("evals/data/chat_prompts.jsonl",
                                      help="jsonl file (`prompt`, optional `id`, `category`) or {hub, split, column}")
    reference: str = param(help="model answering the same prompts: an earlier stage, a local folder, a hub id "
                                "or embedded:<name>")

    def answers(self, ctx: EvalContext) -> Answers:
        from harness.evaluate import auxiliary

        prompt_set = self.prompt_set(ctx)
        messages = [p.messages for p in prompt_set.prompts]
        generations = ctx.generator.generate(messages, max_new_tokens=self.max_new_tokens)
        with auxiliary.causal_lm(ctx, self.reference, "reference", self.task_name, self.batch_size) as reference:
            reference_texts = reference.generate(messages, max_new_tokens=self.max_new_tokens).texts
        return Answers(prompt_set, [t[0] for t in generations.texts], [t[0] for t in reference_texts],
                       generations.throughput)
