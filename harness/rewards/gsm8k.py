"""GSM8K (Cobbe et al., 2021): reference answers end in `#### <number>`."""

from __future__ import annotations

import dataclasses
import re

from harness.rewards import REWARDS, Reward, completion_text

_FINAL = re.compile(r"####\s*(-?[\d,]*\.?\d+)\s*$")
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")


def reference_answer(solution: str) -> str | None:
    """The number after `####` with thousands separators removed, or None."""
    match = _FINAL.search(solution.strip())
    return match.group(1).replace(",", "") if match else None


def last_number(text: str) -> str | None:
    """The last number in a completion (the usual GSM8K exact-match extraction)."""
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "").rstrip(".") if found else None


@REWARDS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class GSM8KReward(Reward):
    """1.0 when the completion's last number equals the `answer` column, else 0."""

    name = "gsm8k"

    def make(self, resolve):
        def gsm8k(completions, answer, **_):
            return [float(_same(last_number(completion_text(c)), a)) for c, a in zip(completions, answer)]
        return gsm8k


def _same(predicted: str | None, reference: str) -> bool:
    if predicted is None:
        return False
    try:
        return float(predicted) == float(reference)
    except ValueError:
        return predicted == reference
