"""Countdown near misses: wrong answers one edit away from a correct one.

A near miss keeps the whole response and changes one token of the expression in its last
`<answer>` block: one binary operator for another (`+ - * /`), or one number for another of the
problem's numbers (a reused number) or for itself plus or minus one (a misread number). Each
variant is checked WRONG by the shared verifier, so an operator swap that happens to give the same
value (`2 + 2` and `2 * 2`) is never offered as a negative. Such pairs differ in one token of the
answer, the minimal-edit negatives of contrastive training (Gardner et al., 2020, contrast sets)
applied to preference data.
"""

from __future__ import annotations

import re

from harness.rewards import countdown as verifier

OPERATORS = "+-*/"
_TOKEN = re.compile(r"\d+|[+\-*/]")


def near_misses(text: str, numbers: list[int], target: int) -> list[tuple[str, str]]:
    """[(response with one edit in its answer, the edit as "operator:+->-" or "number:7->8")], each
    verified wrong, in the order of the tokens they change; [] when the response has no answer."""
    found = list(verifier.ANSWER.finditer(text))
    if not found:
        return []
    start, end = found[-1].span(1)
    expression = text[start:end]
    values = {str(n) for n in numbers}
    out: dict[str, str] = {}
    for token in _TOKEN.finditer(expression):
        old = token.group()
        if old.isdigit():
            kind = "number"
            options = sorted(values | {str(int(old) + 1)} | ({str(int(old) - 1)} if int(old) > 0 else set()), key=int)
        else:
            before = expression[:token.start()].rstrip()
            if not before or before[-1] not in "0123456789)":  # a sign, not an operator
                continue
            kind, options = "operator", list(OPERATORS)
        for new in options:
            if new == old:
                continue
            edited = expression[:token.start()] + new + expression[token.end():]
            variant = text[:start] + edited + text[end:]
            if variant not in out and not verifier.verify(variant, numbers, target).correct:
                out[variant] = f"{kind}:{old}->{new}"
    return list(out.items())
