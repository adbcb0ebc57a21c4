"""Multiple choice (MMLU, Hendrycks et al., 2021): which letter A-D an output commits to.

`choice_letter` is the one reading of a multiple-choice answer, used by the reward below, by pair
labelling and by the eval parser. It refuses to guess: an output that names several options
without settling on one, or uses "a" as an English article ("the answer is a bit unclear"), is
unparseable (None), which runners count and never score as right.
"""

from __future__ import annotations

import dataclasses
import re

from harness.rewards import REWARDS, Reward, completion_text

# a letter marked as an option: "(c)", "[B]", "**D**", or a bare capital standing alone
_MARKED = r"(?:\(([A-Da-d])\)|\[([A-Da-d])\]|\*\*([A-Da-d])\*\*|\b([A-D])\b(?![-'\u2019]\w))"
# "the answer is B", "Answer: (c)", "answer is option **D**"
_STATED = re.compile(r"(?i:answer)(?:\s+(?i:is)|\s*:)?\s*(?:(?i:option)\s+)?" + _MARKED)
# a statement naming two options: "the answer is A or C"
_HEDGED = re.compile(r"\s*(?:,|/|(?i:\bor\b)|(?i:\band\b))\s*" + _MARKED)
_LEADING = re.compile(r"\s*(?:\(([A-Da-d])\)|\[([A-Da-d])\]|\*\*([A-Da-d])\*\*|([A-D])(?:[.:)]|[ \t]*(?:\n|$)))")
_BRACKETED = re.compile(r"\(([A-Da-d])\)|\[([A-Da-d])\]")


def _letter(match: re.Match) -> str:
    return next(g for g in match.groups() if g).upper()


def choice_letter(text: str) -> str | None:
    """The letter A-D an output commits to, or None when it commits to none or to several.

    An explicit statement ("the answer is X") wins, the last one when the model restates; one
    that names two options is ambiguous. Otherwise a leading letter ("B. Paris") or parenthesised
    letters ("I think (A) fits") count when they all name the same option.
    """
    stated = list(_STATED.finditer(text))
    if stated:
        last = stated[-1]
        return None if _HEDGED.match(text, last.end()) else _letter(last)
    named = {_letter(m) for m in _BRACKETED.finditer(text)}
    leading = _LEADING.match(text)
    if leading:
        named.add(_letter(leading))
    return named.pop() if len(named) == 1 else None


@REWARDS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class MultipleChoiceReward(Reward):
    """1.0 when the completion's letter (`choice_letter`) equals the `answer` column's, else 0."""

    name = "multiple_choice"

    def make(self, resolve):
        def multiple_choice(completions, answer, **_):
            return [float(choice_letter(completion_text(c)) == str(a).strip().upper())
                    for c, a in zip(completions, answer)]
        return multiple_choice
