"""MinHash-LSH near-duplicate detection: planted duplicates, priorities, determinism."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import apply, pair

from harness.data import minhash
from harness.data.steps.minhash_dedup import MinHashDedup
from harness.errors import ConfigError


def corpus(n: int, n_dups: int, seed: int = 0):
    """Random 120-word documents plus `n_dups` copies with 3 words substituted."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    docs = [" ".join(rng.choice(vocab) for _ in range(120)) for _ in range(n)]
    planted = []
    for _ in range(n_dups):
        src = rng.randrange(n)
        words = docs[src].split()
        for pos in rng.sample(range(len(words)), 3):
            words[pos] = rng.choice(vocab)
        planted.append((src, len(docs)))
        docs.append(" ".join(words))
    return docs, planted


def test_planted_near_duplicates_are_found_and_nothing_else():
    docs, planted = corpus(2000, 100)
    result = minhash.near_duplicates(docs, threshold=0.7, ngram=5, num_perm=128, bands=32)
    dropped = set(np.flatnonzero(result >= 0).tolist())
    assert dropped == {copy for _, copy in planted}
    assert all(result[copy] == src for src, copy in planted)


def test_signatures_are_deterministic_and_estimate_jaccard():
    docs, planted = corpus(50, 10, seed=3)
    a = minhash.parallel_signatures(docs, 5, 256, chunk=7)
    b = minhash.signatures(docs, 5, 256)
    assert np.array_equal(a, b)  # chunking and threads do not change signatures
    src, copy = planted[0]
    words_a, words_b = docs[src].split(), docs[copy].split()
    grams = lambda w: {tuple(w[i:i + 5]) for i in range(len(w) - 4)}
    true = len(grams(words_a) & grams(words_b)) / len(grams(words_a) | grams(words_b))
    estimate = float(np.mean(a[src] == a[copy]))
    assert abs(estimate - true) < 0.12
    assert float(np.mean(a[0] == a[1])) < 0.1  # unrelated documents


def test_short_and_empty_documents():
    docs = ["one two", "one two", "", "", "three four five six seven eight"]
    result = minhash.near_duplicates(docs, threshold=0.9, ngram=5, num_perm=64, bands=16)
    assert result.tolist() == [-1, 0, -1, 2, -1]


def test_step_keeps_by_priority_and_records_the_keeper():
    body = " ".join(f"token{i}" for i in range(60))
    rows = [pair("q", body, "no", score_chosen=1.0, score_rejected=0.0),
            pair("q", body + " extra words here", "no", score_chosen=9.0, score_rejected=0.0),
            pair("other", " ".join(f"x{i}" for i in range(60)), "no")]
    kept, ctx = apply(MinHashDedup(field="response", threshold=0.8, ngram=3), rows)
    assert [r["id"] for r in kept] == [rows[0]["id"], rows[2]["id"]]
    assert ctx.drops == {"near_duplicate": 1} and ctx.rejects[0]["duplicate_of"] == rows[0]["id"]
    kept, _ = apply(MinHashDedup(field="response", threshold=0.8, ngram=3, keep="longest"), rows)
    assert [r["id"] for r in kept] == [rows[1]["id"], rows[2]["id"]]
    kept, _ = apply(MinHashDedup(field="response", threshold=0.8, ngram=3, keep="highest_score"), rows)
    assert [r["id"] for r in kept] == [rows[1]["id"], rows[2]["id"]]


def test_bands_must_divide_num_perm():
    from harness.schema import Where, build
    from harness.data.step import Step

    with pytest.raises(ConfigError, match="bands: must divide num_perm"):
        build(Step, {"step": "minhash_dedup", "num_perm": 100, "bands": 32}, Where(file="r.yaml"))
