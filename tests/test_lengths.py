"""Token counting for length filters, the curriculum and the card: the same counts as the
tokenizer's own, each distinct text encoded once per run, in bounded chunks."""

from __future__ import annotations

import gc
import weakref

import numpy as np
from helpers import apply, chat, pair

from harness.data import lengths
from harness.data.steps.length_curriculum import LengthCurriculum
from harness.data.steps.length_filter import LengthFilter

TEXTS = ["", "hello world", "héllo — wörld 😀\n\nnew  lines\t tabs", "word " * 300, " leading space",
         "trailing ", "<|im_start|>user\nhi<|im_end|>", "x" * 5000, "日本語のテキスト", "hello world"]


def reference(tokenizer, texts):
    """What the tokenizer itself says, one text at a time."""
    return [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


def test_counts_match_the_tokenizer_across_chunk_boundaries(tokenizer):
    expected = reference(tokenizer, TEXTS)
    assert expected[3] >= 300 and expected[1] == expected[-1]
    for chunk_chars in (1, 40, 10_000, lengths.CHUNK_CHARS):  # one text per call ... everything in one call
        counter = lengths.TokenCounter(tokenizer, chunk_chars=chunk_chars)
        assert counter(TEXTS).tolist() == expected
        assert counter.texts == len(set(TEXTS)) and counter.tokens == sum(reference(tokenizer, set(TEXTS)))


def test_chunks_cover_every_text_once_and_stay_near_the_budget():
    texts = [f"t{i} " + "a" * (i % 37) for i in range(500)]
    chunks = list(lengths._chunks(texts, 200))
    assert [t for c in chunks for t in c] == texts
    assert len(chunks) > 10
    # a chunk closes as soon as it reaches the budget, so it exceeds it by less than its last text
    assert all(sum(map(len, c)) - len(c[-1]) < 200 for c in chunks)


def test_a_curriculum_after_a_filter_encodes_nothing_again(tokenizer):
    rows = [pair(f"question {i}", "answer " * (i + 1), "other " * (30 - i)) for i in range(30)]
    counter = lengths.TokenCounter(tokenizer)
    lengths._COUNTERS[tokenizer] = counter  # a fresh shared counter, so earlier tests' texts do not count
    try:
        kept, _ = apply(LengthFilter(field="total", max_tokens=25), rows, tokenizer=tokenizer)
        encoded = counter.texts
        assert encoded == 90 and counter.tokens > 0  # 30 prompts, 30 chosen, 30 rejected
        ordered, _ = apply(LengthCurriculum(order="ascending"), kept, tokenizer=tokenizer)
        assert counter.texts == encoded  # every count came from the filter's
        totals = [reference(tokenizer, [r["prompt"][0]["content"]])[0]
                  + max(reference(tokenizer, [r["chosen"][0]["content"], r["rejected"][0]["content"]]))
                  for r in ordered]
        assert totals == sorted(totals) and max(totals) <= 25 and len(ordered) == len(kept) < 30
    finally:
        del lengths._COUNTERS[tokenizer]


def test_the_shared_counter_does_not_keep_a_tokenizer_alive():
    class Words:
        """A tokenizer without a Rust backend: the slow path, one token per word."""

        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [t.split() for t in texts]}

    words = Words()
    assert lengths.token_counts(words, ["a b c", "", "a b c", "d"]).tolist() == [3, 0, 3, 1]
    assert lengths.counter(words).texts == 3 and lengths.counter(words).tokens == 4
    held = len(lengths._COUNTERS)
    alive = weakref.ref(words)
    del words
    gc.collect()
    assert alive() is None and len(lengths._COUNTERS) == held - 1


def test_measure_fields_on_mixed_kinds(tokenizer):
    rows = [chat("a question here", "an answer"), pair("q", "short", "a much longer rejected answer")]
    prompt = lengths.measure(rows, "prompt", tokenizer)
    response = lengths.measure(rows, "response", tokenizer)
    total = lengths.measure(rows, "total", tokenizer)
    assert prompt.tolist() == reference(tokenizer, ["a question here", "q"])
    assert response.tolist() == [reference(tokenizer, ["an answer"])[0],
                                 max(reference(tokenizer, ["short", "a much longer rejected answer"]))]
    assert np.array_equal(total, prompt + response)
