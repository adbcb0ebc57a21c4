"""Format adapters: rows in a dataset's own layout -> canonical examples.

An adapter names the columns it needs and the kinds it can produce (the first
is the default). A row it cannot parse raises `Unparseable(reason)`; the source
counts it under that reason and moves on. A dataset that lacks a required
column altogether is a user error reported once, before any row is read.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Iterable, Iterator

from harness.data import example as ex
from harness.errors import HarnessError
from harness.registry import Registry

FORMATS = Registry("format", "harness.data.formats")


class Unparseable(Exception):
    """A row the adapter will not guess about; `reason` is the drop reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Format(abc.ABC):
    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    columns: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def convert(self, row: dict, kind: str, source: str) -> dict:
        """One row as a canonical example of `kind`; raise Unparseable(reason) if it cannot be."""


def adapt(rows: Iterable[dict], columns: list[str], format_name: str, kind: str | None,
          source: str, ctx) -> Iterator[dict]:
    """Convert rows with the named format; unparseable rows become counted drops."""
    fmt = FORMATS.get(format_name)()
    missing = [c for c in fmt.columns if c not in columns]
    if missing:
        raise HarnessError(f"source '{source}': column '{missing[0]}' is missing for format "
                           f"'{format_name}' (found: {', '.join(columns) or 'none'}); "
                           f"pick the matching `format:` or fix the file")
    kind = kind or fmt.kinds[0]
    for i, row in enumerate(rows):
        try:
            yield fmt.convert(row, kind, source)
        except Unparseable as err:
            ctx.drop({"row": i, **_short(row)}, err.reason)


def _short(row: dict) -> dict:
    return {k: (v[:500] if isinstance(v, str) else v) for k, v in row.items()}


# ----------------------------------------------------------- shared parsing

def text(row: dict, column: str) -> str:
    value = row.get(column)
    if not isinstance(value, str) or not value.strip():
        raise Unparseable(f"missing_{column}")
    return value


def parse_messages(value, column: str = "messages") -> list[dict]:
    """A clean list of {role, content} messages, or Unparseable('bad_<column>')."""
    if not isinstance(value, list) or not value:
        raise Unparseable(f"bad_{column}")
    out = []
    for m in value:
        if (not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str)):
            raise Unparseable(f"bad_{column}")
        out.append({"role": _ROLES[m["role"]], "content": m["content"]})
    return out


# one shared string per role: a row read from Arrow brings its own copy of each role name, which
# across a million three-message rows is ~170 MB of "user" and "assistant"
_ROLES = {role: role for role in ("system", "user", "assistant")}


def split_last_turn(conversation: list[dict], column: str) -> tuple[list[dict], list[dict]]:
    """(prompt messages, [final assistant message]) from a full conversation."""
    if len(conversation) < 2 or conversation[-1]["role"] != "assistant":
        raise Unparseable(f"no_assistant_turn_in_{column}")
    if not conversation[-1]["content"].strip():
        raise Unparseable(f"empty_{column}")
    return conversation[:-1], [conversation[-1]]


def pair_from_conversations(chosen: list[dict], rejected: list[dict]) -> tuple[list, list, list]:
    """Preference (prompt, chosen, rejected) from two full conversations sharing a prompt."""
    prompt, chosen_turn = split_last_turn(chosen, "chosen")
    prompt_r, rejected_turn = split_last_turn(rejected, "rejected")
    if prompt != prompt_r:
        raise Unparseable("prompt_mismatch")
    return prompt, chosen_turn, rejected_turn


def from_pair(kind: str, prompt: list, chosen: list, rejected: list, source: str, **extra) -> dict:
    """A preference pair as the requested kind (sft trains on the chosen answer)."""
    meta = extra.pop("metadata", {})
    if kind == "preference":
        return ex.preference(prompt, chosen, rejected, source, metadata=meta, **extra)
    if kind == "sft":
        return ex.sft(prompt + chosen, source, meta)
    return ex.prompt(prompt, source, meta)


def from_conversation(kind: str, conversation: list, source: str, metadata: dict | None = None) -> dict:
    if kind == "sft":
        if not any(m["role"] == "assistant" for m in conversation):
            raise Unparseable("no_assistant_turn")
        return ex.sft(conversation, source, metadata)
    prompt, _ = split_last_turn(conversation, "messages")
    return ex.prompt(prompt, source, metadata)
