"""Reading LLM-judge verdicts: which answer a pairwise verdict prefers, the rating a rubric verdict gives,
and what two verdicts on the same pair, shown in both orders, amount to.

Shared by the eval-side win rate (`harness.evaluate.judge_winrate`) and the data-side `judge`
scorer (`harness.scorers.judge`), so a verdict reads the same whether it labels training pairs or
scores a model. Nothing is guessed: a verdict that commits to no answer (or no rating in range) is
None, and callers count it as unparseable.

LLM judges favour whichever answer is shown first (Zheng et al., 2023, "Judging LLM-as-a-Judge
with MT-Bench and Chatbot Arena"), so a pair is judged in both orders and a preference counts only
when both verdicts pick the same answer; a verdict that follows the position is a tie.
"""

from __future__ import annotations

import re

# `[[A]]`, the MT-Bench verdict format (Zheng et al., 2023)
_BRACKETED = re.compile(r"\[\[\s*([AB])\s*\]\]")
# "The answer is B", "Verdict: A", "I prefer (B)", "the better response is A"; the letter must be a capital
_STATED = re.compile(r"(?i:\b(?:answer|verdict|choice|winner|prefer|preferred|choose|pick|better(?: response| one)?)\b)"
                     r"\s*(?i:is|would be|:|-)?\s*(?i:(?:response|output|assistant)\s*)?[\[(*\"']*([AB])\b")
# the output starts with the letter: "A", "B.", "(A)", "**B**", "Response A", "B is better", "A is more helpful"
_LEADING = re.compile(r"^\W*(?i:(?:response|output|assistant)\s*)?[(\[]?([AB])(?:[)\]]|\b)"
                      r"(?=\s*$|\s*[.,:;!*\n]"
                      r"|\s+(?i:is\s+(?:the\s+)?(?:better|preferred|more|superior)\b|wins\b|because\b))")

# `[[7]]` (MT-Bench's single-answer grading format), "Rating: 7", "score: 7/10", or a bare number
_RATING_BRACKETED = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_RATING_STATED = re.compile(r"(?i:\b(?:rating|score|grade)\b)\s*(?i:is|of|:|=|-)?\s*\**\s*(\d+(?:\.\d+)?)"
                            r"(?:\s*(?:/|out of)\s*\d+)?")
_RATING_ALONE = re.compile(r"^\W*(\d+(?:\.\d+)?)\s*(?:(?:/|out of)\s*\d+)?\W*$")

# what two verdicts on one pair amount to: the first answer wins, the second wins, or neither
FIRST, SECOND, FLIP, UNPARSEABLE = "first", "second", "position_flip", "unparseable"


def parse_preference(text: str) -> str | None:
    """The response a judge output prefers, "A" or "B", or None when it commits to neither.

    A `[[X]]` verdict wins; then an explicit statement ("answer is X", the last
    one, as judges restate); then a leading letter. Nothing is guessed from
    mere mentions ("Response A is wrong, ...").
    """
    bracketed = set(_BRACKETED.findall(text))
    if bracketed:
        return bracketed.pop() if len(bracketed) == 1 else None
    stated = _STATED.findall(text)
    if stated:
        return stated[-1]
    leading = _LEADING.match(text)
    return leading.group(1) if leading else None


def parse_rating(text: str, low: float, high: float) -> float | None:
    """The rating a rubric verdict gives, within [low, high], or None.

    `[[x]]` first (all such marks must agree), then the last "rating/score: x", then a verdict
    that is only a number ("7", "7/10"). A number out of range is not a rating."""
    found = set(_RATING_BRACKETED.findall(text))
    if len(found) > 1:
        return None
    if not found:
        stated = _RATING_STATED.findall(text)
        alone = _RATING_ALONE.match(text)
        found = {stated[-1]} if stated else ({alone.group(1)} if alone else set())
    if not found:
        return None
    value = float(found.pop())
    return value if low <= value <= high else None


def parse_margin(text: str) -> float | None:
    """A logprob verdict's margin, log p("A") - log p("B") (see `harness.judge_client.LocalJudge`), or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def both_orders(x_first: str | None, x_second: str | None) -> str:
    """What two verdicts on answers x and y amount to: x shown as A in the first, as B in the second.

    FIRST (x is preferred in both orders), SECOND (y is), FLIP (each verdict picks by position: a
    tie) or UNPARSEABLE (a verdict is unreadable)."""
    if x_first is None or x_second is None:
        return UNPARSEABLE
    x_wins_first, x_wins_second = x_first == "A", x_second == "B"
    if x_wins_first != x_wins_second:
        return FLIP
    return FIRST if x_wins_first else SECOND
