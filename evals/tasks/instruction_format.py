"""Scorer of the `instruction_format` lm-eval task: does a response obey its format instruction?

Each item names one verifiable check (in the spirit of IFEval's verifiable
instructions, Zhou et al., 2023, arXiv:2311.07911) and its argument. The
checks are plain string rules, so scores are deterministic and need no model,
no network and no extra package. Two metrics, as in IFEval:

- `format_following`: the check passes on the response as given (strict);
- `format_following_loose`: it passes on any of the response variants IFEval's
  loose score tries (markdown `*` removed, first and/or last line dropped), so
  a polite preamble or sign-off line does not count as a format failure.

lm-eval imports this file by path (`!function instruction_format.process_results`),
so it imports nothing from the harness.
"""

from __future__ import annotations

import json
import re

_BULLET = re.compile(r"^\s*[-*\u2022]\s+\S")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*(.*?)\s*```$", re.S)


def _lowercase_word(text: str, arg: str) -> bool:
    return re.fullmatch(r"[a-z]+\.?", text) is not None


def _json_key(text: str, arg: str) -> bool:
    fenced = _FENCE.match(text)
    try:
        value = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        return False
    return isinstance(value, dict) and arg in value


def _ends_with(text: str, arg: str) -> bool:
    words = re.findall(r"[\w']+", text)
    return bool(words) and words[-1].lower() == arg.lower()


def _bullets(text: str, arg: str) -> bool:
    return sum(bool(_BULLET.match(line)) for line in text.splitlines()) == int(arg)


def _uppercase(text: str, arg: str) -> bool:
    return any(c.isalpha() for c in text) and text == text.upper()


def _max_words(text: str, arg: str) -> bool:
    return 1 <= len(text.split()) <= int(arg)


def _starts_with(text: str, arg: str) -> bool:
    return re.match(re.escape(arg) + r"(?!\w)", text, re.I) is not None


def _integer_only(text: str, arg: str) -> bool:
    return re.fullmatch(r"[-+]?\d+\.?", text) is not None


def _includes(text: str, arg: str) -> bool:
    return re.search(r"\b" + re.escape(arg) + r"\b", text, re.I) is not None


def _numbered_list(text: str, arg: str) -> bool:
    return sum(bool(_NUMBERED.match(line)) for line in text.splitlines()) == int(arg)


def _no_commas(text: str, arg: str) -> bool:
    return "," not in text and "\uff0c" not in text


def _quoted(text: str, arg: str) -> bool:
    return len(text) >= 2 and text[0] in "\"\u201c" and text[-1] in "\"\u201d"


CHECKS = {
    "lowercase_word": _lowercase_word,   # exactly one lowercase word (a final period is allowed)
    "json_key": _json_key,               # a JSON object (optionally in a code fence) with key `arg`
    "ends_with": _ends_with,             # the last word is `arg` (any case, punctuation after it allowed)
    "bullets": _bullets,                 # exactly `arg` lines starting with -, * or a bullet
    "uppercase": _uppercase,             # no lowercase letters, at least one letter
    "max_words": _max_words,             # between 1 and `arg` words
    "starts_with": _starts_with,         # begins with the word or phrase `arg` (any case)
    "integer_only": _integer_only,       # nothing but an integer
    "includes": _includes,               # contains the whole word `arg` (any case)
    "numbered_list": _numbered_list,     # exactly `arg` lines like "1. ..." or "2) ..."
    "no_commas": _no_commas,             # no comma anywhere
    "quoted": _quoted,                   # the whole reply is wrapped in double quotes
}


def follows(check: str, arg: str, response: str) -> bool:
    """Strict: the response, stripped of surrounding whitespace, passes the check. Empty never passes."""
    text = response.strip()
    return bool(text) and CHECKS[check](text, arg)


def loose_variants(response: str) -> list[str]:
    """IFEval's loose variants: as given, without its first line, without its last line, without both;
    each also with every `*` removed."""
    lines = response.split("\n")
    cut = [response, "\n".join(lines[1:]), "\n".join(lines[:-1]), "\n".join(lines[1:-1])]
    return cut + [text.replace("*", "") for text in cut]


def follows_loose(check: str, arg: str, response: str) -> bool:
    return any(follows(check, arg, text) for text in loose_variants(response))


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """lm-eval hook: one response per doc in, the item's scores out (means are taken by lm-eval)."""
    response = results[0]
    return {"format_following": float(follows(doc["check"], doc["arg"], response)),
            "format_following_loose": float(follows_loose(doc["check"], doc["arg"], response))}
