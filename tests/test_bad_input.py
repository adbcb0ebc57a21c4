"""Bad input fails cleanly: one line naming the file (and line), exit code 2, no traceback.

Each case runs the real CLI (`harness data`, `harness eval`); a few also run it in a
separate process, where a traceback or a library's own log line would show.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, write_recipe

from harness.cli import main
from harness.models import missing_model_files

GOOD = [{"prompt": f"What is {i} + {i}?", "chosen": str(2 * i), "rejected": str(2 * i + 1)} for i in range(1, 4)]
GOOD_LINES = b"".join(json.dumps(r).encode() + b"\n" for r in GOOD)
LATIN1_LINE = '{"prompt": "caf\xe9 au lait?", "chosen": "yes", "rejected": "no"}\n'.encode("latin-1")


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def parquet_bytes(tmp_path) -> bytes:
    import pandas as pd

    pd.DataFrame(GOOD).to_parquet(tmp_path / "ok.parquet")
    return (tmp_path / "ok.parquet").read_bytes()


# file name -> (its bytes, what the one error line must say after the file's path)
BAD_FILES = {
    "latin1.jsonl": (GOOD_LINES + LATIN1_LINE, ":4: not valid UTF-8 (byte 0xe9 at column 16)"),
    "latin1_gz.jsonl.gz": (gz(GOOD_LINES + LATIN1_LINE), ":4: not valid UTF-8 (byte 0xe9 at column 16)"),
    "malformed.jsonl": (GOOD_LINES + b'{"prompt": "a" "chosen": "b", "rejected": "c"}\n',
                        ":4: not valid JSON (Expecting ',' delimiter at column 16)"),
    "not_object.jsonl": (GOOD_LINES[:GOOD_LINES.index(b"\n") + 1] + b'["a", "b", "c"]\n' + GOOD_LINES,
                         ":2: expected one JSON object per line, got a list"),
    "empty.jsonl": (b"", " is empty (no rows)"),
    "blank.jsonl": (b"\n  \n\n", " is empty (no rows)"),
    "document.json": (b'[\n {"prompt": "a", "chosen": "b", "rejected": "c"},\n {"prompt": "d" "chosen": "e"}\n]\n',
                      ":3: not valid JSON (Expecting ',' delimiter at column 17)"),
    "latin1.csv": (b"prompt,chosen,rejected\na,b,c\ncaf\xe9,b,c\n", ":3: not valid UTF-8 (byte 0xe9 at column 4)"),
    "empty.csv": (b"", " is empty (no rows)"),
    "empty.parquet": (b"", " is empty (no rows)"),
    "cut.jsonl.gz": (gz(GOOD_LINES)[:25], ": cannot be decompressed"),
}


def data_recipe(folder, data_file) -> str:
    return str(write_recipe(folder, f"""
name: local_data
data:
  sources: [{{source: local, path: {data_file}, format: trl, kind: preference}}]
  steps: [{{step: dedup, key: prompt}}]
""", "local_data"))


def test_good_files_of_each_type_load(tmp_path, capsys, tokenizer):
    """The control: the same rows, well formed, load from every file type, and the recipe prepares data
    (so each failure below is the bad line's)."""
    from harness.data.source import Source
    from harness.data.step import StepContext
    from harness.schema import Where, build

    for name, data in [("ok.jsonl", GOOD_LINES), ("ok.jsonl.gz", gz(GOOD_LINES)), ("ok.parquet", parquet_bytes(tmp_path)),
                       ("ok.json", json.dumps(GOOD).encode()), ("ok.csv", b"prompt,chosen,rejected\na,b,c\nd,e,f\n")]:
        (tmp_path / name).write_bytes(data)
        source = build(Source, {"source": "local", "path": str(tmp_path / name), "format": "trl", "kind": "preference"},
                       Where(file="r.yaml"))
        rows = list(source.load(StepContext(label="source:local", seed=0)))
        assert len(rows) == (2 if name == "ok.csv" else 3) and rows[0]["chosen"][0]["content"] in ("2", "b")
    assert main(["data", data_recipe(tmp_path / "recipes", tmp_path / "ok.jsonl")]) == 0, capsys.readouterr().err
    assert "wrote 3 preference examples" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_data_file_is_one_line_naming_file_and_line(name, tmp_path, capsys, tokenizer):
    data, expected = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    code = main(["data", data_recipe(tmp_path / "recipes", path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: source 'local': {path}{expected}"), err


@pytest.mark.parametrize("name", ["latin1.jsonl", "malformed.jsonl"])
def test_bad_data_in_a_real_process_prints_only_the_error_line(name, tmp_path, tokenizer):
    data, expected = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    done = subprocess.run([sys.executable, "-m", "harness", "data", data_recipe(tmp_path / "recipes", path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: source 'local': {path}{expected}"), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


# ----------------------------------------------------------- incomplete checkpoint folders

def test_missing_model_files_names_what_a_folder_lacks(tmp_path, tiny_model):
    assert missing_model_files(tiny_model) == []
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert [m.split(" ")[0] for m in missing_model_files(tmp_path)] == ["weights", "tokenizer"]
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert [m.split(" ")[0] for m in missing_model_files(tmp_path)] == ["tokenizer"]
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    (tmp_path / "config.json").unlink()
    assert missing_model_files(tmp_path) == ["config.json"]


def test_eval_of_a_folder_with_only_a_config_says_what_is_missing(tmp_path, tiny_model):
    folder = tmp_path / "half_copied"
    folder.mkdir()
    shutil.copy(f"{tiny_model}/config.json", folder)  # a copy that stopped after the first file
    done = subprocess.run([sys.executable, "-m", "harness", "eval", str(folder), "--suite", "countdown", "--limit", "1",
                           "--no-publish"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: checkpoint '{folder}': {folder} has no weights (model.safetensors")
    assert "no tokenizer (tokenizer.json" in done.stderr and "final/" in done.stderr
