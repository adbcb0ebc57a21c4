"""Token lengths under the recipe model's tokenizer, shared by length filters,
the curriculum and the data card so all three count the same thing."""

from __future__ import annotations

from typing import Literal

import numpy as np

from harness.data import example as ex

Field = Literal["prompt", "response", "total"]


def token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text (no special tokens); the Rust backend batches across cores."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return np.fromiter((len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)),
                           dtype=np.int64, count=len(texts))
    return np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]], dtype=np.int64)


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
