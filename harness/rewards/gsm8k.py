"""GSM8K (Cobbe et al., 2021): reference answers end in `#### <number>`.

`final_number` is the one reading of a completion's answer: the RLOO reward, pair
labelling and the eval parser all call it, so a reward and an eval score cannot
disagree on what a model answered.
"""

from __future__ import annotations

import dataclasses
import re

from harness.rewards import REWARDS, Reward, completion_text

# an optional minus sign (ASCII or U+2212) on either side of an optional dollar sign, then digits
# with thousands separators and an optional decimal part: "-$5", "$-5", "1,234.50", "−3"
_NUMBER = re.compile(r"([-\u2212]?)\$?([-\u2212]?)(\d[\d,]*(?:\.\d+)?)")
_MARKER = re.compile(r"####\s*")


def _number(match: re.Match) -> str:
    sign = "-" if match.group(1) or match.group(2) else ""
    digits = match.group(3).replace(",", "")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".") or "0"
    return sign + digits


def final_number(text: str) -> str | None:
    """The answer a completion commits to, normalised ("-5", "1234", "3.5"), or None.

    The number right after the first `####` when there is one (lm-eval's GSM8K `strict-match`
    reads that marker; a model often goes on generating after it, so the first marker, not the
    last number, is the answer), otherwise the last number in the text (`flexible-extract`).
    """
    marker = _MARKER.search(text)
    if marker:
        match = _NUMBER.match(text, marker.end())
        if match:
            return _number(match)
    found = list(_NUMBER.finditer(text))
    return _number(found[-1]) if found else None


def reference_answer(solution: str) -> str | None:
    """The number after a GSM8K reference solution's final `####`, or None when it has none."""
    parts = solution.rsplit("####", 1)
    if len(parts) < 2:
        return None
    match = _NUMBER.match(parts[1].strip())
    return _number(match) if match else None


def is_correct(completion: str, answer: str) -> bool:
    """Whether the completion's final number equals the reference `answer` (numerically)."""
    predicted, reference = final_number(completion), final_number(str(answer))
    if predicted is None or reference is None:
        return False
    return float(predicted) == float(reference)


@REWARDS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class GSM8KReward(Reward):
    """1.0 when the completion's final number (`final_number`) equals the `answer` column, else 0."""

    name = "gsm8k"

    def make(self, resolve):
        def gsm8k(completions, answer, **_):
            return [float(is_correct(completion_text(c), a)) for c, a in zip(completions, answer)]
        return gsm8k
