"""MinHash-LSH near-duplicate detection, vectorised with numpy.

Pipeline (all in uint64 numpy arrays, chunks hashed on all cores by threads,
since numpy releases the GIL):

1. Words: lower-cased text split on whitespace; each word is hashed with a
   polynomial rolling hash computed from prefix sums over the raw UTF-8 bytes,
   so no Python work happens per word.
2. Shingles: hashes of `ngram` consecutive words within a document.
3. Signatures: one-permutation hashing (Li, Owen & Zhang, 2012) into
   `num_perm` bins, with optimal densification for empty bins (Shrivastava,
   2017). This estimates Jaccard similarity like `num_perm` classic MinHash
   permutations at the cost of one hash per shingle.
4. LSH: `bands` x `rows` banding (Indyk & Motwani, 1998; Broder, 1997); documents
   sharing a band key become candidate pairs with the best-priority member.
5. Candidates are verified by their estimated Jaccard >= `threshold`, then
   grouped into clusters (connected components); each cluster keeps its
   best-priority member.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_B = np.uint64(0x100000001B3)              # odd multiplier for the byte rolling hash
_B_INV = np.uint64(pow(0x100000001B3, -1, 2**64))
_M = np.uint64(0x9E3779B97F4A7C15)         # odd multiplier to combine words into shingles
_M_INV = np.uint64(pow(0x9E3779B97F4A7C15, -1, 2**64))
_EMPTY = np.uint64(1 << 32)                 # above any 32-bit bin value
_MAX_ROUNDS = 64
#: documents hashed per task: each task's byte-level arrays take ~40 bytes per character (about
#: 40 MB for 1024 documents of 1000 characters), held at once on every core
SIGNATURE_CHUNK = 1024


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads structured hashes over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_POWERS: dict = {}


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base**0 .. base**(n-1) mod 2**64, computed once for the longest buffer seen and sliced."""
    cached = _POWERS.get(int(base))
    if cached is None or len(cached) < n:
        out = np.full(max(n, 1 << 20), base, dtype=np.uint64)
        out[0] = 1
        cached = _POWERS[int(base)] = np.cumprod(out, dtype=np.uint64)
    return cached[:n]


def shingles(texts: list[str], ngram: int, translate: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shingle hashes, document index, word position in the document) for the word
    n-grams of each lower-cased text (after `str.translate(translate)`), ordered by document.

    A document with fewer than `ngram` words gets one shingle of all its words;
    an empty document gets none.
    """
    joined = "\x00".join(texts)  # one translate/lower/encode for the chunk, not one per text
    if translate is not None:
        joined = joined.translate(translate)
    buf = np.frombuffer(joined.lower().encode("utf-8") + b"\x00", dtype=np.uint8)
    ends_at = np.flatnonzero(buf == 0)
    if len(ends_at) != len(texts):  # a text contained NUL itself: fall back to one encode per text
        encoded = [(t.translate(translate) if translate else t).lower().encode("utf-8") for t in texts]
        buf = np.frombuffer(b"\x00".join(encoded) + b"\x00", dtype=np.uint8)
        ends_at = np.cumsum([len(e) + 1 for e in encoded]) - 1
    doc_start = np.concatenate(([0], ends_at[:-1] + 1)) if len(texts) else np.zeros(0, np.int64)
    is_word = (buf > 32).view(np.int8)
    edges = np.diff(is_word, prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(starts) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        c = buf.astype(np.uint64) + np.uint64(1)
        prefix = np.cumsum(c * _powers(_B_INV, len(buf)), dtype=np.uint64)
        before = np.where(starts > 0, prefix[np.maximum(starts - 1, 0)], np.uint64(0))
        words = _mix((prefix[ends - 1] - before) * _powers(_B, len(buf))[ends - 1])
        word_doc = np.searchsorted(doc_start, starts, side="right") - 1
        n_words = np.bincount(word_doc, minlength=len(texts))
        first_word = np.concatenate(([0], np.cumsum(n_words)[:-1]))
        span = len(words) - ngram + 1
        # sum_t words[k+t] * M**(ngram-1-t) for every window k, from one prefix sum (any ngram, O(words))
        word_prefix = np.concatenate(([np.uint64(0)], np.cumsum(words * _powers(_M_INV, len(words)), dtype=np.uint64)))
        hashes = ((word_prefix[ngram:ngram + max(span, 0)] - word_prefix[:max(span, 0)])
                  * _powers(_M, len(words))[ngram - 1:ngram - 1 + max(span, 0)])
        valid = word_doc[:span] == word_doc[ngram - 1:] if span > 0 else np.zeros(0, bool)
        window_doc = word_doc[:span][valid]
        out_h, out_d = [_mix(hashes[valid])], [window_doc]
        out_p = [np.flatnonzero(valid) - first_word[window_doc]]
        for d in np.flatnonzero((n_words > 0) & (n_words < ngram)):  # short documents
            h = np.uint64(0)
            for w in words[first_word[d]:first_word[d] + n_words[d]]:
                h = h * _M + w
            out_h.append(_mix(np.array([h], dtype=np.uint64)))
            out_d.append(np.array([d]))
            out_p.append(np.array([0]))
    hashes, docs, positions = np.concatenate(out_h), np.concatenate(out_d), np.concatenate(out_p)
    order = np.argsort(docs, kind="stable")
    return hashes[order], docs[order], positions[order]


def parallel_shingles(texts: list[str], ngram: int, chunk: int = 4096, workers: int | None = None):
    """`shingles` over chunks on all cores (numpy releases the GIL); document indices are global."""
    parts = [(i, texts[i:i + chunk]) for i in range(0, len(texts), chunk)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda part: shingles(part[1], ngram), parts))
    if not results:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    hashes = np.concatenate([r[0] for r in results])
    docs = np.concatenate([r[1] + start for (start, _), r in zip(parts, results)])
    positions = np.concatenate([r[2] for r in results])
    return hashes, docs, positions


def _densify_table(num_perm: int) -> np.ndarray:
    """Fixed pseudo-random probe sequence per bin (the same for every document)."""
    rng = np.random.default_rng(0x5EED)
    return rng.integers(0, num_perm, size=(_MAX_ROUNDS, num_perm))


def signatures(texts: list[str], ngram: int, num_perm: int) -> np.ndarray:
    """(len(texts), num_perm) uint64 signatures; documents without words are all `_EMPTY`."""
    hashes, docs, _ = shingles(texts, ngram)
    sig = np.full(len(texts) * num_perm, _EMPTY, dtype=np.uint64)
    bins = (hashes >> np.uint64(32)) % np.uint64(num_perm)
    values = hashes & np.uint64(0xFFFFFFFF)
    np.minimum.at(sig, docs.astype(np.uint64) * np.uint64(num_perm) + bins, values)
    sig = sig.reshape(len(texts), num_perm)
    original = sig.copy()
    has_any = (original != _EMPTY).any(axis=1)
    rows, cols = np.nonzero((original == _EMPTY) & has_any[:, None])
    probes = _densify_table(num_perm)
    for attempt in range(_MAX_ROUNDS):
        if len(rows) == 0:
            break
        borrowed = original[rows, probes[attempt, cols]]
        ok = borrowed != _EMPTY
        sig[rows[ok], cols[ok]] = borrowed[ok]
        rows, cols = rows[~ok], cols[~ok]
    if len(rows):  # vanishingly rare: fall back to the first filled bin of the document
        first = np.argmax(original[rows] != _EMPTY, axis=1)
        sig[rows, cols] = original[rows, first]
    return sig


def parallel_signatures(texts: list[str], ngram: int, num_perm: int, chunk: int = 4096,
                        workers: int | None = None) -> np.ndarray:
    """`signatures` over chunks on all cores, each chunk written into one preallocated array (no
    concatenation that would hold the matrix twice)."""
    out = np.empty((len(texts), num_perm), dtype=np.uint64)
    _fill(texts, ngram, num_perm, chunk, workers, out, None)
    return out


def compact_signatures(texts: list[str], ngram: int, num_perm: int, chunk: int = 4096,
                       workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 signatures, documents without words): the same signatures at half the memory (4 bytes a
    bin: 0.5 GB for a million documents at 128 bins). Bin values are 32-bit; the one value that is not,
    `_EMPTY`, fills exactly the rows of documents without words, so those rows are flagged instead
    (and hold 0); `candidate_pairs` and `estimated_jaccard` take the flags and give the same answers."""
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    empty = np.zeros(len(texts), dtype=bool)
    _fill(texts, ngram, num_perm, chunk, workers, out, empty)
    return out, empty


def _fill(texts, ngram, num_perm, chunk, workers, out: np.ndarray, empty: np.ndarray | None) -> None:
    def part(start: int) -> None:
        sig = signatures(texts[start:start + chunk], ngram, num_perm)
        if empty is not None:
            blank = sig[:, 0] == _EMPTY if num_perm else np.zeros(len(sig), bool)
            sig[blank] = 0
            empty[start:start + len(sig)] = blank
        out[start:start + len(sig)] = sig

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(part, range(0, len(texts), chunk)))


def candidate_pairs(sig: np.ndarray, bands: int, rows: int, priority: np.ndarray,
                    empty: np.ndarray | None = None) -> np.ndarray:
    """(k, 2) array of (leader, member): documents sharing any band key, each paired
    with the best-priority (lowest `priority`) document of its bucket. `empty` flags the rows of
    `compact_signatures` that stand for all-`_EMPTY` signatures."""
    pairs = []
    blank = np.flatnonzero(empty) if empty is not None else np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            key = np.zeros(len(sig), dtype=np.uint64)
            blank_key = np.uint64(0)
            for c in range(b * rows, (b + 1) * rows):
                key = key * _M + sig[:, c]
                blank_key = blank_key * _M + _EMPTY
            key[blank] = blank_key
            key = _mix(key ^ np.uint64(b))
            order = np.lexsort((priority, key))
            sorted_key = key[order]
            new_run = np.concatenate(([True], sorted_key[1:] != sorted_key[:-1]))
            run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(order)), 0))
            member = ~new_run
            pairs.append(np.stack([order[run_start[member]], order[member]], axis=1))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(pairs), axis=0)


def estimated_jaccard(sig: np.ndarray, pairs: np.ndarray, block: int = 65536,
                      empty: np.ndarray | None = None) -> np.ndarray:
    out = np.empty(len(pairs), dtype=np.float64)
    for i in range(0, len(pairs), block):
        a, b = pairs[i:i + block, 0], pairs[i:i + block, 1]
        out[i:i + block] = (sig[a] == sig[b]).mean(axis=1)
        if empty is not None:  # `_EMPTY` equals no 32-bit value: a document without words matches no other
            out[i:i + block][empty[a] != empty[b]] = 0.0
    return out


def near_duplicates(texts: list[str], *, threshold: float, ngram: int, num_perm: int, bands: int,
                    priority: np.ndarray | None = None) -> np.ndarray:
    """For each text, the index of the kept document it duplicates, or -1 if it is kept.

    Each cluster of near-duplicates keeps the member with the lowest `priority`
    (default: the earliest).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(texts)
    priority = np.arange(n) if priority is None else np.asarray(priority)
    sig, empty = compact_signatures(texts, ngram, num_perm, chunk=SIGNATURE_CHUNK)
    pairs = candidate_pairs(sig, bands, num_perm // bands, priority, empty)
    pairs = pairs[estimated_jaccard(sig, pairs, empty=empty) >= threshold]
    del sig
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    order = np.lexsort((priority, label))
    first = np.concatenate(([True], label[order][1:] != label[order][:-1]))
    keeper = np.empty(n, dtype=np.int64)
    keeper[label[order[first]]] = order[first]
    result = keeper[label]
    result[result == np.arange(n)] = -1
    return result
