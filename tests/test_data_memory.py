"""The memory-lean data paths give exactly what the plain ones gave: the step cache written and read
a row group at a time, step diffs located with numpy, and MinHash signatures kept as uint32."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from helpers import pair

from harness.data import cache, minhash


def rows(n: int) -> list[dict]:
    return [pair(f"question {i}", f"answer {i} \u00e9t\u00e9", f"other {i}", score_chosen=float(i),
                 score_rejected=0.5) for i in range(n)]


def test_a_source_entry_is_written_and_read_back_a_row_group_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "ROWS_PER_GROUP", 3)
    source = rows(10)
    cache.save(tmp_path, "src", None, source, {"rows_out": 10}, [])
    entry = cache.entry_dir(tmp_path, "src")
    assert pq.ParquetFile(entry / cache.ROWS).metadata.num_row_groups == 4  # 3 + 3 + 3 + 1 rows
    assert cache.exists(tmp_path, "src")
    loaded, stats = cache.load(tmp_path, "src", None)
    assert loaded == source and stats == {"rows_out": 10}

    cache.save(tmp_path, "none", None, [], {"rows_out": 0}, [])  # an empty source still has a readable file
    assert cache.load(tmp_path, "none", None)[0] == []


def test_entries_written_as_one_table_still_replay(tmp_path):
    """Entries written before row groups were used (one `write_table` of every row) read the same."""
    source = rows(7)
    cache.save(tmp_path, "src", None, source, {}, [])
    path = cache.entry_dir(tmp_path, "src") / cache.ROWS
    table = pa.table({"example": pa.array([json.dumps(r, ensure_ascii=False) for r in source], pa.large_string())})
    pq.write_table(table, path, compression="zstd")
    assert cache._read_rows(path) == source


def test_a_step_diff_records_input_positions_and_only_new_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "ROWS_PER_GROUP", 2)
    base = rows(6)
    inputs = base + [base[1]]  # an oversampling step upstream gave one object twice
    changed = {**base[4], "chosen": base[4]["rejected"], "rejected": base[4]["chosen"]}
    outputs = [base[5], base[1], changed, base[0], rows(9)[8], base[2]]
    cache.save(tmp_path, "step", inputs, outputs, {}, [])
    index = np.load(cache.entry_dir(tmp_path, "step") / cache.INDEX)
    assert index.tolist() == [5, 6, -1, 0, -1, 2]  # a repeated object points at its last position
    new = cache._read_rows(cache.entry_dir(tmp_path, "step") / cache.ROWS)
    assert new == [changed, rows(9)[8]]
    replayed, _ = cache.load(tmp_path, "step", inputs)
    assert replayed == outputs and replayed[0] is inputs[5] and replayed[1] is inputs[6]


def documents(seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)]
    docs = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    docs += ["", "   ", "", "a b", "a b"]  # no words (three of them), and short documents
    docs += [docs[i] + " w1" for i in range(0, 60, 3)]  # near copies
    rng.shuffle(docs)
    return docs


def test_compact_signatures_are_the_full_ones_with_the_empty_rows_flagged():
    docs = documents()
    full = minhash.parallel_signatures(docs, 3, 64, chunk=17)
    compact, empty = minhash.compact_signatures(docs, 3, 64, chunk=23)
    assert compact.dtype == np.uint32 and compact.nbytes * 2 == full.nbytes
    assert empty.sum() == 3 and np.array_equal(empty, (full == minhash._EMPTY).all(axis=1))
    assert np.array_equal(np.where(empty[:, None], minhash._EMPTY, compact.astype(np.uint64)), full)


def test_near_duplicates_from_compact_signatures_match_the_full_signatures():
    docs = documents(1)
    priority = np.random.default_rng(0).permutation(len(docs))
    full = minhash.parallel_signatures(docs, 3, 64)
    compact, empty = minhash.compact_signatures(docs, 3, 64)
    pairs = minhash.candidate_pairs(full, 16, 4, priority)
    assert np.array_equal(minhash.candidate_pairs(compact, 16, 4, priority, empty), pairs)
    everything = np.array([(a, b) for a in range(len(docs)) for b in range(a + 1, len(docs))])
    assert np.array_equal(minhash.estimated_jaccard(compact, everything, empty=empty),
                          minhash.estimated_jaccard(full, everything))
    # the whole search against the same search on the full signatures, written out here
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    kept = pairs[minhash.estimated_jaccard(full, pairs) >= 0.6]
    _, label = connected_components(coo_matrix((np.ones(len(kept)), (kept[:, 0], kept[:, 1])),
                                               shape=(len(docs),) * 2), directed=False)
    expected = np.full(len(docs), -1)
    for group in np.unique(label):
        members = np.flatnonzero(label == group)
        keeper = members[np.argmin(priority[members])]
        expected[members[members != keeper]] = keeper
    result = minhash.near_duplicates(docs, threshold=0.6, ngram=3, num_perm=64, bands=16, priority=priority)
    assert np.array_equal(result, expected) and (result >= 0).sum() >= 20
    blank = [i for i, d in enumerate(docs) if not d.split()]
    assert sorted(result[blank].tolist()).count(-1) == 1  # the documents without words are one cluster
