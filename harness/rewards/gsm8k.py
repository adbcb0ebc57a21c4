"""GSM8K (Cobbe et al., 2021): reference answers end in `#### <number>`."""

from __future__ import annotations

import re

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
