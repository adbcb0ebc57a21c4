"""`make bench` section: data-pipeline speed and quality on a synthetic 200k-pair corpus.

The corpus has a known set of planted near-duplicates (by default 5% of rows
are copies of another row with 3 words substituted in each response), so
recall and precision are exact. Every figure is printed beside a baseline
measured in the same run, because shared machines are noisy:

- `minhash_dedup` vs a straightforward `datasketch.MinHashLSH` loop with the
  same threshold, shingles, permutations and bands;
- exact `dedup` throughput;
- the 13-gram decontamination scan vs a plain-Python set scan;
- `harness validate` of every shipped recipe vs a bare interpreter start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness.data import example as ex
from harness.data.step import StepContext

PARAMS = dict(threshold=0.7, ngram=5, num_perm=128, bands=32)


def make_corpus(n: int, dup_fraction: float, words: int, seed: int = 0):
    """(examples, planted) where planted is a list of (original id, copy id)."""
    rows, planted = corpus_rows(n, dup_fraction, words, seed)
    examples = [ex.preference([ex.user(p)], [ex.assistant(c)], [ex.assistant(r)], "synthetic") for p, c, r in rows]
    return examples, planted


def corpus_rows(n: int, dup_fraction: float, words: int, seed: int = 0, exact_fraction: float = 0.0):
    """(rows, planted): n (prompt, chosen, rejected) texts in corpus order, and the positions of each
    (original, near-duplicate) pair. `exact_fraction` of rows are exact duplicates of another row
    up to case and spacing, which exact dedup (and only it) must remove."""
    planted, rows = corpus_stream(n, dup_fraction, words, seed, exact_fraction)
    return list(rows), planted


PROMPT_WORDS = 15
EDITS = 3  # words substituted in each response of a near-duplicate


def corpus_stream(n: int, dup_fraction: float, words: int, seed: int = 0, exact_fraction: float = 0.0,
                  chunk: int = 4096):
    """(planted, rows) as in `corpus_rows`, with `rows` an iterator that builds the texts a chunk at a
    time, so a million-row corpus is written in about a minute without its texts in memory.

    Every decision is drawn up front as arrays: the words of each original row (Zipf-like over
    the vocabulary, as uint16 indices, two bytes a word), which rows are near-duplicates of which
    (3 words substituted, uniformly, in each response) and which are exact copies up to case and
    spacing, and the shuffled corpus order; texts are joined only when their rows are written.
    """
    rng = np.random.default_rng(seed)
    vocab = english_words()
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 0.8
    cdf = np.cumsum(weights / weights.sum())
    n_copies = int(n * dup_fraction)
    n_exact = int(n * exact_fraction)
    n_orig = n - n_copies - n_exact
    if words - 30 < EDITS:
        raise ValueError(f"words must be at least {EDITS + 30} (responses have words +- 30 words)")

    length = rng.integers(words - 30, words + 31, size=n_orig)  # words per response (chosen and rejected)
    start = np.concatenate(([0], np.cumsum(PROMPT_WORDS + 2 * length)))
    drawn = np.empty(int(start[-1]), dtype=np.uint16 if len(vocab) <= 1 << 16 else np.uint32)
    for i in range(0, len(drawn), 1 << 23):
        block = drawn[i:i + (1 << 23)]
        block[:] = np.minimum(np.searchsorted(cdf, rng.random(len(block))), len(vocab) - 1)

    copy_of = rng.choice(n_orig, size=n_copies, replace=False)
    edits = []  # (positions, words) substituted in the chosen, then the rejected response of each copy
    for _ in ("chosen", "rejected"):
        keys = rng.random((n_copies, words + 31))
        keys[np.arange(words + 31) >= length[copy_of][:, None]] = 2.0  # only real words are edited
        edits.append((np.argpartition(keys, EDITS, axis=1)[:, :EDITS],
                      rng.integers(len(vocab), size=(n_copies, EDITS))))
    exact_of = rng.choice(n_orig, size=n_exact, replace=False) if n_exact else np.zeros(0, np.int64)
    order = rng.permutation(n)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    planted = [(int(position[a]), int(position[n_orig + j])) for j, a in enumerate(copy_of.tolist())]
    vocab_array = np.array(vocab, dtype=object)

    def rows():
        for c in range(0, n, chunk):
            picks = order[c:c + chunk].tolist()
            segments, bases = [], []
            for j in picks:
                base = j if j < n_orig else copy_of[j - n_orig] if j < n_orig + n_copies else exact_of[j - n_orig - n_copies]
                segment = drawn[start[base]:start[base + 1]]
                if n_orig <= j < n_orig + n_copies:
                    segment, m, k = segment.copy(), j - n_orig, length[base]
                    for offset, (where, what) in zip((PROMPT_WORDS, PROMPT_WORDS + k), edits):
                        segment[offset + where[m]] = what[m]
                segments.append(segment)
                bases.append(int(base))
            text = vocab_array[np.concatenate(segments)].tolist()
            at = 0
            for j, base in zip(picks, bases):
                k = int(length[base])
                prompt = f"Question {base}: " + " ".join(text[at:at + PROMPT_WORDS])
                chosen = " ".join(text[at + PROMPT_WORDS:at + PROMPT_WORDS + k])
                rejected = " ".join(text[at + PROMPT_WORDS + k:at + PROMPT_WORDS + 2 * k])
                at += PROMPT_WORDS + 2 * k
                if j >= n_orig + n_copies:  # an exact copy up to case and spacing
                    prompt, chosen, rejected = prompt.upper(), chosen.replace(" ", "  "), " " + rejected.capitalize()
                yield prompt, chosen, rejected

    return planted, rows()


def english_words() -> list[str]:
    """Whole lower-case words from the embedded tokenizer's vocabulary (about one token each),
    so token counts per word resemble real English text."""
    from harness.models import load_tokenizer
    from harness.recipe import ModelConfig

    vocab = load_tokenizer(ModelConfig()).get_vocab()
    return sorted(t[1:] for t in vocab if t.startswith("\u0120") and t[1:].isalpha() and t[1:].islower() and len(t) > 3)


def score(dropped: set[int], planted: list[tuple[int, int]]) -> tuple[float, float]:
    """Recall: planted pairs with exactly one member dropped; precision: drops that are such members."""
    hits = sum((a in dropped) != (b in dropped) for a, b in planted)
    return hits / len(planted), (hits / len(dropped) if dropped else 1.0)


def run_minhash(examples):
    from harness.data.steps.minhash_dedup import MinHashDedup

    ctx = StepContext(label="minhash_dedup", seed=0)
    kept = {id(e) for e in MinHashDedup(field="response", **PARAMS).apply(iter(examples), ctx)}
    return {i for i, e in enumerate(examples) if id(e) not in kept}


def run_datasketch(examples):
    from datasketch import MinHash, MinHashLSH

    rows = PARAMS["num_perm"] // PARAMS["bands"]
    lsh = MinHashLSH(threshold=PARAMS["threshold"], num_perm=PARAMS["num_perm"], params=(PARAMS["bands"], rows))
    dropped = set()
    n = PARAMS["ngram"]
    for i, e in enumerate(examples):
        words = ex.response_text(e).lower().split()
        shingles = {" ".join(words[j:j + n]).encode() for j in range(max(len(words) - n + 1, 1))}
        m = MinHash(num_perm=PARAMS["num_perm"])
        m.update_batch(list(shingles))
        if lsh.query(m):
            dropped.add(i)
        else:
            lsh.insert(i, m)
    return dropped


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def decontamination(examples, n_items: int = 10_000, n_leaks: int = 200, baseline_docs: int = 20_000) -> None:
    """13-gram scan of every chosen response against eval items, some planted in the documents;
    the baseline is the plain-Python set-of-n-grams scan (GPT-3 / lm-eval v0.3 style) on a subset."""
    from harness.decontaminate.ngrams import Index, normalise, scan

    rng = np.random.default_rng(1)
    vocab = english_words()
    evals = [" ".join(vocab[j] for j in rng.integers(len(vocab), size=40).tolist()) + "?" for _ in range(n_items)]
    documents = [ex.response_text(e) for e in examples]
    planted = {}
    for doc, item in zip(rng.choice(len(documents), n_leaks, replace=False).tolist(),
                         rng.choice(n_items, n_leaks, replace=False).tolist()):
        documents[doc] = f"{documents[doc]} {evals[item].upper()}"
        planted[doc] = item
    words = sum(len(d.split()) for d in documents)
    index, build_s = timed(Index.build, evals, 13)
    matches, scan_s = timed(scan, index, documents)
    found = {(m.document, m.item) for m in matches}
    recall = sum((d, i) in found for d, i in planted.items()) / len(planted)
    extra = len({m.document for m in matches} - set(planted))
    print(f"decontamination scan  {scan_s:8.1f}s  {words / scan_s / 1e6:.2f} M words/s over {len(documents)} docs "
          f"({words / 1e6:.1f} M words) vs {n_items} items; index built in {build_s:.2f}s; "
          f"planted leaks found {recall:.1%}; other documents flagged {extra}")

    def python_scan(docs):
        grams = {}
        for i, text in enumerate(evals):
            w = normalise(text).split()
            for k in range(len(w) - 12):
                grams.setdefault(tuple(w[k:k + 13]), i)
        hits = set()
        for d, text in enumerate(docs):
            w = normalise(text).split()
            hits.update((d, grams[g]) for g in (tuple(w[k:k + 13]) for k in range(len(w) - 12)) if g in grams)
        return hits

    subset = documents[:baseline_docs]
    sub_words = sum(len(d.split()) for d in subset)
    _, base_s = timed(python_scan, subset)
    print(f"  plain-Python set scan baseline on {len(subset)} docs: {sub_words / base_s / 1e6:.2f} M words/s "
          f"-> vectorised scan is {(words / scan_s) / (sub_words / base_s):.1f}x faster")


def decontamination_only(args) -> None:
    examples, _ = make_corpus(args.n, 0.0, args.words)
    decontamination(examples)


def validate_seconds() -> tuple[float, float]:
    root = Path(__file__).resolve().parents[2]
    run = lambda *cmd: subprocess.run([sys.executable, *cmd], cwd=root, capture_output=True, check=True)
    _, validate_s = timed(run, "-m", "harness", "validate", "recipes", "evals")
    _, bare_s = timed(run, "-c", "pass")
    return validate_s, bare_s


def run(args) -> None:
    """Dedup, decontamination and validate figures on the synthetic corpus (the whole pipeline's
    throughput is the `data_throughput` section)."""
    print(f"cores: {os.cpu_count()}  corpus: {args.n} pairs, ~{args.words} words per response, "
          f"{args.dup_fraction:.0%} planted near-duplicates  params: {PARAMS}")

    (examples, planted), gen_s = timed(make_corpus, args.n, args.dup_fraction, args.words)
    print(f"generated corpus in {gen_s:.1f}s")

    ours, ours_s = timed(run_minhash, examples)
    recall, precision = score(ours, planted)
    print(f"minhash_dedup         {ours_s:8.1f}s  recall {recall:.4f}  precision {precision:.4f}  "
          f"dropped {len(ours)}")
    subset = args.baseline_n or len(examples)
    sub_planted = [(a, b) for a, b in planted if a < subset and b < subset]
    base, base_s = timed(run_datasketch, examples[:subset])
    b_recall, b_precision = score(base, sub_planted)
    scale = len(examples) / subset
    note = "" if subset == len(examples) else f" (on {subset} rows; x{scale:.1f} for the full corpus)"
    print(f"datasketch baseline   {base_s:8.1f}s  recall {b_recall:.4f}  precision {b_precision:.4f}  "
          f"dropped {len(base)}{note}")
    print(f"  -> minhash_dedup speed-up vs datasketch: {base_s * scale / ours_s:.1f}x")

    from harness.data.steps.dedup import Dedup

    _, dedup_s = timed(lambda: list(Dedup(key="triple").apply(iter(examples), StepContext(label="d", seed=0))))
    print(f"exact dedup (triple)  {dedup_s:8.2f}s  {len(examples) / dedup_s:,.0f} examples/s")

    decontamination(examples)

    validate_s, bare_s = validate_seconds()
    print(f"harness validate      {validate_s:8.2f}s  (bare interpreter start {bare_s:.2f}s, "
          f"ratio {validate_s / bare_s:.1f}x)")
