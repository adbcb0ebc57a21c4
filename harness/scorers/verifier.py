"""Verifier scorer: the task verifiers of `harness.rewards`, as labellers of candidates.

The same functions serve as RLOO rewards and eval scorers, so a pair labelled "correct" here is
one the eval suite would score correct and the RL reward would pay 1.0 for.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.data import candidates
from harness.schema import param
from harness.scorers import SCORERS, Score, Scorer

def _countdown_correct(text, numbers, target, **_):
    from harness.rewards.countdown import verify

    return verify(text, list(numbers), int(target)).correct


def _gsm8k_correct(text, answer, **_):
    from harness.rewards.gsm8k import is_correct

    return is_correct(text, answer)


def _choice_correct(text, answer, **_):
    from harness.rewards.multiple_choice import choice_letter

    return choice_letter(text) == str(answer).strip().upper()


# task -> (reward name, metadata fields it reads, correctness of one completion)
TASKS = {
    "countdown": ("countdown", ("numbers", "target"), _countdown_correct),
    "gsm8k": ("gsm8k", ("answer",), _gsm8k_correct),
    "multiple_choice": ("multiple_choice", ("answer",), _choice_correct),
}


@SCORERS.register()
@dataclasses.dataclass(frozen=True)
class Verifier(Scorer):
    """Score = the task's reward (Countdown: 1.0 correct, `format_score` well-formed, 0 otherwise;
    GSM8K and multiple choice: 1 or 0); `correct` = the verifier's verdict."""

    name = "verifier"

    task: Literal["countdown", "gsm8k", "multiple_choice"] = param(help="which verifier")
    mode: Literal["lenient", "tinyzero"] = param("lenient", help="Countdown only: lenient or TinyZero's scoring")
    format_score: float = param(0.1, ge=0.0, le=1.0, help="Countdown only: score of a well-formed wrong answer")

    def required_fields(self):
        return TASKS[self.task][1]

    def score(self, examples, ctx):
        from harness.rewards import REWARDS

        reward_name, fields, correct = TASKS[self.task]
        options = {"mode": self.mode, "format_score": self.format_score} if self.task == "countdown" else {}
        reward = REWARDS.get(reward_name)(**options).make(lambda name: name)
        out = []
        for example in examples:
            meta = {k: example["metadata"][k] for k in fields}
            texts = [c["text"] for c in candidates.of(example)]
            values = reward(texts, **{k: [v] * len(texts) for k, v in meta.items()})
            out.append([Score(v, correct(t, **meta)) for t, v in zip(texts, values)])
        return out
