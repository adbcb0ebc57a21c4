"""The trainer-facing dataset: canonical examples written in the TRL format a stage needs.

- `sft`        -> `messages`
- `preference` -> `prompt`, `chosen`, `rejected` (message lists), scores when present
- `prompt`     -> `prompt` plus task metadata as columns (RLOO passes columns to reward functions),
                  and `candidates` when responses were sampled but not paired

Every row keeps `id` and `source`. Row order is significant: when a step set a
curriculum, the manifest's `order` says so and the trainer must not shuffle.
"""

from __future__ import annotations

from harness.data import example as ex
from harness.errors import HarnessError

# a dataset of one kind can be written as another: pairs train SFT on chosen, prompts come from anything
CONVERT = {("preference", "sft"), ("preference", "prompt"), ("sft", "prompt")}


def infer_format(examples: list[dict]) -> str:
    kinds = sorted({e["kind"] for e in examples})
    if len(kinds) != 1:
        raise HarnessError(f"data: sources give mixed kinds ({', '.join(kinds)}); set data.format to one of them")
    return kinds[0]


def trl_rows(examples: list[dict], fmt: str) -> list[dict]:
    """One row per example, every row with the same columns in the same order."""
    rows = [_row(e, fmt) for e in examples]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    if all(len(row) == len(columns) for row in rows):  # the common case: no second copy of every row
        return rows
    fill = {"label_flipped": False}
    return [{c: row.get(c, fill.get(c)) for c in columns} for row in rows]


def _row(example: dict, fmt: str) -> dict:
    kind = example["kind"]
    if kind != fmt and (kind, fmt) not in CONVERT:
        raise HarnessError(f"data: cannot write {kind} examples (source '{example['source']}') as {fmt}; "
                           f"change data.format or the source's kind")
    row = {"id": example["id"], "source": example["source"]}
    meta = example.get("metadata", {})
    if fmt == "sft":
        row["messages"] = example["messages"] if kind == "sft" else example["prompt"] + example["chosen"]
    elif fmt == "preference":
        row.update(prompt=example["prompt"], chosen=example["chosen"], rejected=example["rejected"])
        if "score_chosen" in example:
            row.update(score_chosen=example["score_chosen"], score_rejected=example["score_rejected"])
        if meta.get("label_flipped"):
            row["label_flipped"] = True
    else:
        row["prompt"] = ex.prompt_messages(example)
        row.update({k: v for k, v in meta.items() if k not in row})
        if "candidates" in example:  # sampled responses not yet paired (harness.data.candidates)
            row["candidates"] = example["candidates"]
    return row


def save(examples: list[dict], fmt: str, folder) -> None:
    """Write rows as an Arrow dataset (`datasets.load_from_disk` reads it back).

    The table is built by pyarrow and fingerprinted by hashing its buffers: `Dataset.from_list`
    gives the same columns and types, but fingerprints a pickle of the whole table, which took
    about 5x the table's size in memory at its peak and 40% more time.
    """
    import datasets
    import pyarrow as pa

    datasets.disable_progress_bars()
    table = pa.Table.from_pylist(trl_rows(examples, fmt))
    datasets.Dataset(table, fingerprint=table_fingerprint(table)).save_to_disk(str(folder))


def table_fingerprint(table) -> str:
    """xxh3 of an Arrow table's schema and the bytes of its buffers (no copy is made)."""
    import xxhash

    digest = xxhash.xxh3_128(table.schema.to_string().encode("utf-8"))
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return digest.hexdigest()
