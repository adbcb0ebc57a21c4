"""Canonical examples: three kinds, each mapping 1:1 onto a TRL dataset type.

An example is a plain dict:

- `sft`:        `messages` (a full conversation);
- `preference`: `prompt` (messages), `chosen` and `rejected` (assistant messages),
                optional `score_chosen` / `score_rejected`;
- `prompt`:     `prompt` (messages) plus task `metadata` (answer, target, ...).

Every example also has `id`, `kind`, `source` (the source label) and `metadata`.
The `id` is a content hash taken at ingestion, so seeded per-example decisions
(noise flips, sampling) never shift when a filter removes other rows. Steps must
not mutate examples in place: they yield a new dict for a changed row.
"""

from __future__ import annotations

import json

import xxhash

KINDS = ("sft", "preference", "prompt")
_CONTENT = ("kind", "messages", "prompt", "chosen", "rejected")


def content_hash(obj) -> str:
    return xxhash.xxh3_64_hexdigest(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8"))


def with_id(example: dict) -> dict:
    """Set `id` from the example's content (and, for prompts, its task metadata)."""
    content = {k: example[k] for k in _CONTENT if k in example}
    if example["kind"] == "prompt":
        content["metadata"] = example.get("metadata", {})
    example["id"] = content_hash(content)
    return example


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def sft(messages: list, source: str, metadata: dict | None = None) -> dict:
    return with_id({"kind": "sft", "source": source, "messages": messages, "metadata": metadata or {}})


def preference(prompt: list, chosen: list, rejected: list, source: str, *,
               score_chosen: float | None = None, score_rejected: float | None = None,
               metadata: dict | None = None) -> dict:
    example = {"kind": "preference", "source": source, "prompt": prompt, "chosen": chosen,
               "rejected": rejected, "metadata": metadata or {}}
    if score_chosen is not None and score_rejected is not None:
        example["score_chosen"], example["score_rejected"] = float(score_chosen), float(score_rejected)
    return with_id(example)


def prompt(messages: list, source: str, metadata: dict | None = None) -> dict:
    return with_id({"kind": "prompt", "source": source, "prompt": messages, "metadata": metadata or {}})


# ------------------------------------------------------------ text views

def _join(messages) -> str:
    return "\n".join(m["content"] for m in messages)


def prompt_messages(example: dict) -> list:
    if example["kind"] == "sft":
        messages = example["messages"]
        last = len(messages) - 1 if messages and messages[-1]["role"] == "assistant" else len(messages)
        return messages[:last]
    return example["prompt"]


def prompt_text(example: dict) -> str:
    return _join(prompt_messages(example))


def response_text(example: dict, which: str = "chosen") -> str:
    """The trained-on response: the last assistant turn (sft) or chosen/rejected (preference)."""
    kind = example["kind"]
    if kind == "sft":
        messages = example["messages"]
        return messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
    if kind == "preference":
        return _join(example[which])
    return ""


def full_text(example: dict) -> str:
    kind = example["kind"]
    if kind == "sft":
        return _join(example["messages"])
    if kind == "preference":
        return "\n".join((_join(example["prompt"]), _join(example["chosen"]), _join(example["rejected"])))
    return _join(example["prompt"])


# the text a step can compare or scan, by the name recipes use for it (`field:`)
TEXT_VIEWS = {"prompt": prompt_text, "response": response_text, "example": full_text}


def normalize(text: str) -> str:
    """Case- and whitespace-insensitive form used by exact dedup and pair checks."""
    return " ".join(text.lower().split())
