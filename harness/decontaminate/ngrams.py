"""N-gram overlap between training text and eval items, vectorised.

Text is normalised (lower case, punctuation to spaces: NORMALISER_VERSION) and
cut into word n-grams, hashed with the same numpy machinery as MinHash. Two
tests are offered, as in the literature:

- `any`: an item is matched by a document sharing any n-gram with it
  (13-grams in GPT-3, Brown et al., 2020, and lm-eval v0.3);
- `coverage`: a document matches an item when its shared n-grams cover more
  than `coverage` of the item's words (8-grams over 50% in Tulu 3, Lambert et
  al., 2024).

Items shorter than n words cannot be tested this way; they are left out of the
index and counted in `Index.too_short`, never reported as clean. N-grams shared
by many eval items are prompt template, not content (every Countdown prompt
shares its instructions): those found in more than `common_fraction` of the
items, and in at least `MIN_COMMON` of them, are not indexed, and coverage is
measured over an item's content words (those inside an indexed n-gram), so a
verbatim copy of a templated item covers 100% of it, not just its share of
non-template text. For items without template the two are the same.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from harness.data.minhash import parallel_shingles, shingles

NORMALISER_VERSION = 1
MIN_COMMON = 10
_PUNCTUATION = str.maketrans({c: " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"})


def normalise(text: str) -> str:
    return text.translate(_PUNCTUATION).lower()


@dataclasses.dataclass(frozen=True)
class Index:
    """Sorted n-gram hashes of the eval items, with the item each came from."""

    hashes: np.ndarray      # sorted uint64
    items: np.ndarray       # item index per hash
    positions: np.ndarray   # word position of the n-gram inside its item
    item_words: np.ndarray  # words per item
    ngram: int
    content_words: np.ndarray | None = None  # words per item inside an indexed (non-template) n-gram

    @property
    def too_short(self) -> np.ndarray:
        """Items with fewer than `ngram` words: not testable, so not in the index."""
        return np.flatnonzero(self.item_words < self.ngram)

    @classmethod
    def build(cls, texts: list[str], ngram: int, common_fraction: float = 0.05) -> "Index":
        normalised = [normalise(t) for t in texts]
        words = np.array([len(t.split()) for t in normalised], dtype=np.int64)
        hashes, items, positions = parallel_shingles(normalised, ngram)
        keep = words[items] >= ngram
        hashes, items, positions = hashes[keep], items[keep], positions[keep]
        unique_hash, spread = np.unique(np.unique(np.stack([hashes, items.astype(np.uint64)], axis=1), axis=0)[:, 0],
                                        return_counts=True)
        common = unique_hash[spread > max(MIN_COMMON - 1, common_fraction * len(texts))]
        keep = ~np.isin(hashes, common)
        hashes, items, positions = hashes[keep], items[keep], positions[keep]
        order = np.argsort(hashes, kind="stable")
        content = np.zeros(len(texts), dtype=np.int64)
        by_item = np.argsort(items, kind="stable")
        for item, group in zip(*_split_by(items[by_item], positions[by_item])):
            content[item] = _covered(group, ngram, int(group.max()) + ngram).sum()
        return cls(hashes[order], items[order], positions[order], words, ngram, content)


@dataclasses.dataclass(frozen=True)
class Match:
    document: int
    item: int
    shared: int      # n-grams in common
    coverage: float  # fraction of the item's content words (those in indexed n-grams) covered by them


def scan(index: Index, documents: list[str], chunk: int = 4096) -> list[Match]:
    """Every (document, item) pair that shares at least one n-gram (chunks run on all cores)."""
    if len(index.hashes) == 0 or not documents:
        return []
    parts = range(0, len(documents), chunk)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = list(pool.map(lambda start: _hits(index, documents[start:start + chunk], start), parts))
    doc = np.concatenate([f[0] for f in found])
    entry = np.concatenate([f[1] for f in found])
    if len(doc) == 0:
        return []
    pairs = np.unique(np.stack([doc, index.items[entry], index.positions[entry]], axis=1), axis=0)
    matches = []
    for (d, i), group in _groups(pairs):
        covered = _covered(group, index.ngram, int(group.max()) + index.ngram).sum()
        matches.append(Match(int(d), int(i), len(group), float(covered / index.content_words[i])))
    return matches


def _hits(index: Index, documents: list[str], offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(document, index entry) for every n-gram of these documents found in the index."""
    hashes, docs, _ = shingles(documents, index.ngram, translate=_PUNCTUATION)
    order = np.argsort(hashes)  # sorted queries make the binary searches cache-friendly (~8x here)
    hashes, docs = hashes[order], docs[order]
    at = np.minimum(np.searchsorted(index.hashes, hashes), len(index.hashes) - 1)
    hit = index.hashes[at] == hashes
    # expand each hit over all index entries with that hash (items can share n-grams)
    starts = at[hit]
    counts = np.searchsorted(index.hashes, hashes[hit], side="right") - starts
    entry = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    return np.repeat(docs[hit], counts) + offset, entry


def _covered(positions: np.ndarray, ngram: int, length: int) -> np.ndarray:
    """Which of `length` words fall inside n-grams starting at `positions`."""
    mask = np.zeros(int(length), dtype=bool)
    for p in positions.tolist():
        mask[p:p + ngram] = True
    return mask


def _split_by(keys: np.ndarray, values: np.ndarray):
    """(distinct keys, value groups) for `values` sorted by `keys`."""
    if len(keys) == 0:
        return [], []
    bounds = np.flatnonzero(np.diff(keys)) + 1
    return keys[np.r_[0, bounds]].tolist(), np.split(values, bounds)


def _groups(pairs: np.ndarray):
    """((document, item), item positions) for rows of (document, item, position) sorted by both."""
    keys = pairs[:, 0] * (pairs[:, 1].max() + 1) + pairs[:, 1]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    for chunk in np.split(pairs, bounds):
        yield (chunk[0, 0], chunk[0, 1]), chunk[:, 2]
