"""Token lengths under the recipe model's tokenizer, shared by length filters,
the curriculum and the data card so all three count the same thing.

A text's count is the length of its encoding without special tokens (no chat
template). Counting runs at the tokenizer library's own speed:

- each distinct text is encoded once per tokenizer and run: the counts are kept
  (`TokenCounter`), so a curriculum after a length filter, or the card after
  both, encodes nothing again;
- the texts go to the Rust backend's `encode_batch` in chunks of a few million
  characters, which keeps every core busy while bounding the memory held by
  encodings (about 120 bytes per token: a million-row corpus encoded in one call
  would hold tens of GB);
- only `len(encoding)` crosses into Python, not the id lists.
"""

from __future__ import annotations

import time
import weakref
from typing import Iterable, Literal

import numpy as np

from harness.data import example as ex

Field = Literal["prompt", "response", "total"]

#: characters per `encode_batch` call: about half a million tokens of English, ~60 MB of encodings at a time,
#: and still thousands of texts per call to spread over the cores
CHUNK_CHARS = 1 << 21


class TokenCounter:
    """Token counts of texts under one tokenizer; each distinct text is encoded once.

    `texts`, `tokens`, `seconds` and `cpu_seconds` say how much encoding was actually
    done (memo hits excluded), so a caller can compare its throughput with the library's.
    """

    def __init__(self, tokenizer, chunk_chars: int = CHUNK_CHARS):
        self._tokenizer = weakref.ref(tokenizer)  # not a strong reference: counters are kept per live tokenizer
        self.chunk_chars = chunk_chars
        self.counts: dict[str, int] = {}
        self.texts = self.tokens = 0
        self.seconds = self.cpu_seconds = 0.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        counts = self.counts
        todo = list(dict.fromkeys(t for t in texts if t not in counts))
        if todo:
            start, cpu = time.perf_counter(), time.process_time()
            for chunk in _chunks(todo, self.chunk_chars):
                lengths = self._encode(chunk)
                counts.update(zip(chunk, lengths))
                self.tokens += sum(lengths)
            self.texts += len(todo)
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu
        return np.fromiter(map(counts.__getitem__, texts), dtype=np.int64, count=len(texts))

    def _encode(self, texts: list[str]) -> list[int]:
        tokenizer = self._tokenizer()
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            # `encode_batch` over `encode_batch_fast`: the latter skips offsets but measured slower here
            return [len(e) for e in backend.encode_batch(texts, add_special_tokens=False)]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _chunks(texts: list[str], chunk_chars: int) -> Iterable[list[str]]:
    start, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text)
        if size >= chunk_chars:
            yield texts[start:i + 1]
            start, size = i + 1, 0
    if start < len(texts):
        yield texts[start:]


# one counter per live tokenizer object: steps of one run (and the card after them) share it
_COUNTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def counter(tokenizer) -> TokenCounter:
    """The shared counter of this tokenizer object (created on first use)."""
    found = _COUNTERS.get(tokenizer)
    if found is None:
        found = _COUNTERS[tokenizer] = TokenCounter(tokenizer)
    return found


def token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text (no special tokens)."""
    return counter(tokenizer)(texts)


def measure(examples: list[dict], field: Field, tokenizer) -> np.ndarray:
    """Per-example token count of the prompt, the response, or both.

    For preference pairs the response is the longer of chosen and rejected,
    since that is what a DPO `max_length` truncates first.
    """
    count = counter(tokenizer)
    prompt = count([ex.prompt_text(e) for e in examples]) if field != "response" else 0
    if field == "prompt":
        return prompt
    response = count([ex.response_text(e, "chosen") for e in examples])
    pairs = [i for i, e in enumerate(examples) if e["kind"] == "preference"]
    if pairs:
        rejected = count([ex.response_text(examples[i], "rejected") for i in pairs])
        response[pairs] = np.maximum(response[pairs], rejected)
    return response + prompt
