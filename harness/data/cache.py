"""The step cache: one folder per fingerprint under `<cache>/data/`.

A source's entry holds its examples. A step's entry holds only how its output
differs from its input: for each output row the input position it came from
(-1 for a row the step created or changed) plus those new rows. Filters and
reorderings, most steps, therefore cost a few bytes per row, and loading step
k replays k cheap diffs over the cached source rows.

Entries heal themselves. Each one records the size and xxh3 checksum of every
file in it (`checksums.json`); an entry whose files no longer match (a file cut
short by a crash before the data reached the disk, a partial copy of the cache,
a stray edit) or cannot be read is reported in one warning line, removed, and
counts as absent, so the step simply runs again. A corrupt entry never becomes
an error that every later run trips over.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import xxhash

from harness.atomic import atomic_dir
from harness.errors import HarnessError, one_line

ROWS, INDEX, STATS, REJECTS = "rows.parquet", "index.npy", "stats.json", "rejects.jsonl"
CHECKSUMS = "checksums.json"


def entry_dir(cache: Path, fp: str) -> Path:
    return Path(cache) / "data" / fp


def exists(cache: Path, fp: str) -> bool:
    """Whether a usable entry exists; a corrupt one is removed (with a warning) and reported absent."""
    folder = entry_dir(cache, fp)
    if not (folder / STATS).is_file():
        return False
    problem = verify(folder)
    if problem is None:
        return True
    discard(folder, problem)
    return False


def verify(folder: Path) -> str | None:
    """What is wrong with an entry (None if nothing): files against their recorded sizes and
    checksums, or, for an entry written before checksums were kept, whether its files open."""
    try:
        recorded = json.loads((folder / CHECKSUMS).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _check_readable(folder)
    except (OSError, ValueError) as err:
        return f"{CHECKSUMS} is unreadable ({one_line(err)})"
    if not isinstance(recorded, dict):
        return f"{CHECKSUMS} is not a mapping"
    for name, expected in sorted(recorded.items()):
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"{name} is missing"
        if size != expected.get("bytes"):
            return f"{name} is {size} bytes, {expected.get('bytes')} were written"
        if _file_checksum(path) != expected.get("xxh3"):
            return f"{name} does not match its checksum"
    return None


def discard(folder: Path, problem: str) -> None:
    """Warn in one line and remove a corrupt entry (renamed first, so no reader sees half of it)."""
    print(f"warning: cache entry {folder} is corrupt ({problem}); removed it, the step runs again",
          file=sys.stderr, flush=True)
    doomed = folder.with_name(f".{folder.name}.corrupt-{os.getpid()}")
    try:
        folder.rename(doomed)
    except OSError:
        doomed = folder
    shutil.rmtree(doomed, ignore_errors=True)


def _check_readable(folder: Path) -> str | None:
    import pyarrow.parquet as pq

    try:
        json.loads((folder / STATS).read_text(encoding="utf-8"))
        pq.read_metadata(folder / ROWS)  # a cut-off parquet file has no footer
        if (folder / INDEX).is_file():
            np.load(folder / INDEX, mmap_mode="r")  # checks the header against the file's length
    except Exception as err:  # any failure to open means the entry cannot be used
        return f"unreadable ({one_line(err)})"
    return None


def _file_checksum(path: Path) -> str:
    digest = xxhash.xxh3_64()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


#: rows per parquet row group: rows are serialised, written and read back this many at a time, so
#: neither a source of a million rows nor its replay ever holds all their JSON text (or an Arrow
#: copy of it) beside the examples themselves
ROWS_PER_GROUP = 8192


def _write_rows(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("example", pa.large_string())])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, len(rows), ROWS_PER_GROUP):
            chunk = [json.dumps(r, ensure_ascii=False) for r in rows[start:start + ROWS_PER_GROUP]]
            writer.write_table(pa.table({"example": pa.array(chunk, pa.large_string())}, schema=schema))


def _read_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=ROWS_PER_GROUP, columns=["example"]):
        rows.extend(map(json.loads, batch.column(0).to_pylist()))
    return rows


def _positions(inputs: list[dict], outputs: list[dict]) -> np.ndarray:
    """For each output row, the position of the same object among the inputs (the last one, should
    an object occur twice), or -1 for a row the step created: 16 bytes per input row, where a dict
    from object id to position held about ten times that."""
    ids = np.fromiter(map(id, inputs), dtype=np.int64, count=len(inputs))
    by_id = np.argsort(ids, kind="stable")
    sorted_ids = ids[by_id]
    del ids
    wanted = np.fromiter(map(id, outputs), dtype=np.int64, count=len(outputs))
    at = np.searchsorted(sorted_ids, wanted, side="right") - 1
    found = (at >= 0) & (sorted_ids[np.maximum(at, 0)] == wanted)
    return np.where(found, by_id[np.maximum(at, 0)], -1).astype(np.int64)


def save(cache: Path, fp: str, inputs: list[dict] | None, outputs: list[dict], stats: dict,
         rejects: list[dict]) -> None:
    """Store a source's rows (`inputs` None) or a step's diff against its inputs."""
    with atomic_dir(entry_dir(cache, fp)) as tmp:
        if inputs is None:
            _write_rows(tmp / ROWS, outputs)
        else:
            index = _positions(inputs, outputs)
            _write_rows(tmp / ROWS, [row for row, i in zip(outputs, index) if i < 0])
            np.save(tmp / INDEX, index)
        with open(tmp / REJECTS, "w", encoding="utf-8") as f:
            for reject in rejects:
                f.write(json.dumps(reject, ensure_ascii=False) + "\n")
        (tmp / STATS).write_text(json.dumps(stats, indent=1), encoding="utf-8")
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        checksums = {p.name: {"bytes": p.stat().st_size, "xxh3": _file_checksum(p)} for p in files}
        (tmp / CHECKSUMS).write_text(json.dumps(checksums, indent=1), encoding="utf-8")


def load(cache: Path, fp: str, inputs: list[dict] | None) -> tuple[list[dict], dict]:
    """(output rows, stats) of a cached source or step (one that `exists` has just verified)."""
    folder = entry_dir(cache, fp)
    try:
        stats = json.loads((folder / STATS).read_text(encoding="utf-8"))
        new_rows = _read_rows(folder / ROWS)
        index = None if inputs is None else np.load(folder / INDEX)
    except Exception as err:  # changed since it was verified: remove it, so the next run recomputes it
        discard(folder, f"unreadable: {one_line(err)}")
        raise HarnessError(f"cache entry {folder} could not be read ({one_line(err)}); it has been removed: "
                           f"run the same command again to recompute it") from None
    if inputs is None:
        return new_rows, stats
    fresh = iter(new_rows)
    return [inputs[i] if i >= 0 else next(fresh) for i in index.tolist()], stats


def rejects_path(cache: Path, fp: str) -> Path:
    return entry_dir(cache, fp) / REJECTS
