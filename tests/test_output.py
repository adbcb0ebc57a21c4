"""The trainer-facing dataset: the table written by `output.save` reads back as the rows and
column types `datasets.Dataset.from_list` would give, in every format, with one schema for all rows."""

from __future__ import annotations

import datasets
import pytest
from helpers import chat, pair

from harness.data import example as ex
from harness.data import output


def _examples(kind: str) -> list[dict]:
    if kind == "sft":
        return [chat(f"question {i}", f"answer {i} é😀") for i in range(5)]
    if kind == "prompt":
        return [ex.prompt([ex.user(f"reach {t} with {n}")], "countdown", {"numbers": n, "target": t})
                for n, t in (([1, 2], 3), ([4, 5, 6], 15), ([7], 7))]
    rows = [pair(f"p{i}", f"c{i}", f"r{i}", score_chosen=2.0, score_rejected=float(i)) for i in range(4)]
    rows[2] = {**rows[2], "chosen": rows[2]["rejected"], "rejected": rows[2]["chosen"],
               "metadata": {"label_flipped": True}}  # only some rows carry the column
    return rows


@pytest.mark.parametrize("fmt", ["sft", "preference", "prompt"])
def test_saved_dataset_matches_from_list(tmp_path, fmt):
    examples = _examples(fmt)
    output.save(examples, fmt, tmp_path / "dataset")
    saved = datasets.load_from_disk(str(tmp_path / "dataset"))
    expected = datasets.Dataset.from_list(output.trl_rows(examples, fmt))
    assert saved.features == expected.features and saved.to_list() == expected.to_list()
    assert len(saved) == len(examples) and saved["id"][:] == [e["id"] for e in examples]
    if fmt == "preference":
        assert saved["label_flipped"][:] == [False, False, True, False]
        assert saved[2]["chosen"] == examples[2]["chosen"]


def test_table_fingerprint_follows_content(tmp_path):
    import pyarrow as pa

    rows = output.trl_rows(_examples("sft"), "sft")
    same = output.table_fingerprint(pa.Table.from_pylist(rows))
    assert same == output.table_fingerprint(pa.Table.from_pylist([dict(r) for r in rows]))
    rows[3] = {**rows[3], "source": "other"}
    assert output.table_fingerprint(pa.Table.from_pylist(rows)) != same
