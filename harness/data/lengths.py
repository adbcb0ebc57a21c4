"""Token lengths under the recipe model's tokenizer, shared by length filters,
the curriculum and the data card so all three count the same thing."""

from __future__ import annotations

import weakref
from typing import Literal

import numpy as np

from harness.data import example as ex

Field = Literal["prompt", "response", "total"]


# token counts per tokenizer, so a length filter and a curriculum in one run tokenize each text once
_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text (no special tokens); the Rust backend batches across cores."""
    memo = _MEMO.setdefault(tokenizer, {})
    todo = list(dict.fromkeys(t for t in texts if t not in memo))
    if todo:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
            counts = [len(e.ids) for e in encode(todo, add_special_tokens=False)]
        else:
            counts = [len(ids) for ids in tokenizer(todo, add_special_tokens=False)["input_ids"]]
        memo.update(zip(todo, counts))
    return np.fromiter((memo[t] for t in texts), dtype=np.int64, count=len(texts))


def measure(examples: list[dict], field: Field, tokenizer) -> np.ndarray:
    """Per-example token count of the prompt, the response, or both.

    For preference pairs the response is the longer of chosen and rejected,
    since that is what a DPO `max_length` truncates first.
    """
    prompt = token_counts(tokenizer, [ex.prompt_text(e) for e in examples]) if field != "response" else 0
    if field == "prompt":
        return prompt
    response = token_counts(tokenizer, [ex.response_text(e, "chosen") for e in examples])
    pairs = [i for i, e in enumerate(examples) if e["kind"] == "preference"]
    if pairs:
        rejected = token_counts(tokenizer, [ex.response_text(examples[i], "rejected") for i in pairs])
        response[pairs] = np.maximum(response[pairs], rejected)
    return response + prompt
