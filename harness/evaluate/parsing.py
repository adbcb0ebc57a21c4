"""Answer extraction from free-form generations.

Each helper returns None when the output holds no answer of the expected form;
runners count those as `unparseable` and score them wrong, never guess. The
number and `<answer>` rules are the ones the rewards use (`harness.rewards`),
so a training reward and an eval score cannot disagree on what was answered.
"""

from __future__ import annotations

import re

from harness.rewards.countdown import extract_answer
from harness.rewards.gsm8k import last_number, reference_answer

_LETTER_PATTERNS = [
    # "The correct answer is B", "answer: (c)", "Answer is **D**"
    re.compile(r"answer\s*(?:is|:)?\s*(?:option\s*)?[\s*(\[]*([A-D])\b[)\].*]*", re.IGNORECASE),
    re.compile(r"^\s*[(\[]?([A-D])[)\].:]?(?:\s|$)"),   # the output starts with the letter
    re.compile(r"\(([A-D])\)"),                          # "(B) ..." somewhere
]


def mmlu_letter(text: str) -> str | None:
    """The multiple-choice letter A-D an output commits to, or None.

    Explicit "answer is X" statements win (the last one, as models restate);
    then a leading letter; then a single parenthesised letter. Several
    different parenthesised letters without a statement are ambiguous: None.
    """
    stated = _LETTER_PATTERNS[0].findall(text)
    if stated:
        return stated[-1].upper()
    leading = _LETTER_PATTERNS[1].match(text)
    if leading:
        return leading.group(1).upper()
    bracketed = {m.upper() for m in _LETTER_PATTERNS[2].findall(text)}
    return bracketed.pop() if len(bracketed) == 1 else None


def gsm8k_number(text: str) -> str | None:
    """The final number: after `####` when present (the GSM8K answer format), else the last number."""
    return reference_answer(text) or _after_marker(text) or last_number(text)


def _after_marker(text: str) -> str | None:
    found = re.findall(r"####\s*(-?[\d,]*\.?\d+)", text)
    return found[-1].replace(",", "") if found else None


def answer_tag(text: str) -> str | None:
    """The content of the last `<answer>...</answer>` block (TinyZero format), or None."""
    return extract_answer(text)
