"""The step cache: one folder per fingerprint under `<cache>/data/`.

A source's entry holds its examples. A step's entry holds only how its output
differs from its input: for each output row the input position it came from
(-1 for a row the step created or changed) plus those new rows. Filters and
reorderings, most steps, therefore cost a few bytes per row, and loading step
k replays k cheap diffs over the cached source rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.atomic import atomic_dir

ROWS, INDEX, STATS, REJECTS = "rows.parquet", "index.npy", "stats.json", "rejects.jsonl"


def entry_dir(cache: Path, fp: str) -> Path:
    return Path(cache) / "data" / fp


def exists(cache: Path, fp: str) -> bool:
    return (entry_dir(cache, fp) / STATS).is_file()


def _write_rows(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"example": pa.array([json.dumps(r, ensure_ascii=False) for r in rows], pa.large_string())})
    pq.write_table(table, path, compression="zstd")


def _read_rows(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [json.loads(s) for s in pq.read_table(path).column("example").to_pylist()]


def save(cache: Path, fp: str, inputs: list[dict] | None, outputs: list[dict], stats: dict,
         rejects: list[dict]) -> None:
    """Store a source's rows (`inputs` None) or a step's diff against its inputs."""
    with atomic_dir(entry_dir(cache, fp)) as tmp:
        if inputs is None:
            _write_rows(tmp / ROWS, outputs)
        else:
            position = {id(row): i for i, row in enumerate(inputs)}
            index = np.array([position.get(id(row), -1) for row in outputs], dtype=np.int64)
            _write_rows(tmp / ROWS, [row for row, i in zip(outputs, index) if i < 0])
            np.save(tmp / INDEX, index)
        with open(tmp / REJECTS, "w", encoding="utf-8") as f:
            for reject in rejects:
                f.write(json.dumps(reject, ensure_ascii=False) + "\n")
        (tmp / STATS).write_text(json.dumps(stats, indent=1))


def load(cache: Path, fp: str, inputs: list[dict] | None) -> tuple[list[dict], dict]:
    """(output rows, stats) of a cached source or step."""
    folder = entry_dir(cache, fp)
    stats = json.loads((folder / STATS).read_text())
    new_rows = _read_rows(folder / ROWS)
    if inputs is None:
        return new_rows, stats
    index = np.load(folder / INDEX)
    fresh = iter(new_rows)
    return [inputs[i] if i >= 0 else next(fresh) for i in index.tolist()], stats


def rejects_path(cache: Path, fp: str) -> Path:
    return entry_dir(cache, fp) / REJECTS
