"""Why a local data file could not be read, as one line naming the file and line.

`datasets` reports a bad file with the first error its reader met: `StopIteration`
for an empty file, "JSON parse error ... in row 1" (a row of an internal block,
not a line of the file), or a `UnicodeDecodeError` from deep inside Arrow when
the rows are first iterated. Only after such a failure, the file is read again
here line by line, which costs nothing on the normal path and finds the exact
line a user has to fix. Bad rows are reported, never dropped: silently losing
the part of a file that is corrupt would hide the problem in the data.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def open_binary(path: Path):
    """The file's decompressed bytes (gzip, bz2, xz, zstd when `zstandard` is installed)."""
    suffix = path.suffix.lower()
    if suffix == ".zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
    return _OPENERS.get(suffix, open)(path, "rb")


def first_problem(path: Path, file_type: str) -> str | None:
    """'<file>:<line>: what is wrong; how to fix it' for the first bad line of a `.jsonl`, `.json`,
    `.csv` or `.parquet` file (`file_type`, compression suffix removed), or None if none is found."""
    try:
        handle = open_binary(path)
    except (ImportError, OSError):
        return None
    try:
        with handle:
            if file_type == ".parquet":
                return _empty(path) if not handle.read(1) else None
            if file_type == ".json":
                return _json_document(path, handle.read())
            return _lines(path, handle, is_json=file_type == ".jsonl")
    except (OSError, EOFError, lzma.LZMAError) as err:  # a truncated or mislabelled compressed file
        return f"{path}: cannot be decompressed ({err}); check that the file is complete and its suffix is right"


def _empty(path: Path) -> str:
    return f"{path} is empty (no rows); check the file, or remove this source"


def _lines(path: Path, handle, is_json: bool) -> str | None:
    seen_text = False
    for number, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return _not_utf8(path, number, raw, err)
        if not line.strip():
            continue
        seen_text = True
        if is_json:
            problem = _json_row(line)
            if problem:
                return f"{path}:{number}: {problem}; fix or remove that line"
    return None if seen_text else _empty(path)


def _not_utf8(path: Path, number: int, raw: bytes, err: UnicodeDecodeError) -> str:
    column = len(raw[:err.start].decode("utf-8", errors="replace")) + 1
    return (f"{path}:{number}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {column}); "
            f"re-save the file as UTF-8, or fix or remove that line")


def _json_row(line: str) -> str | None:
    try:
        row = json.loads(line)
    except ValueError as err:
        return f"not valid JSON ({err.msg} at column {err.colno})"
    if not isinstance(row, dict):
        return f"expected one JSON object per line, got {_json_type(row)}"
    return None


def _json_document(path: Path, data: bytes) -> str | None:
    """A `.json` file is either one document (a list of objects) or JSON lines, as `datasets` reads it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        number = data.count(b"\n", 0, err.start) + 1
        start = data.rfind(b"\n", 0, err.start) + 1
        end = data.find(b"\n", err.start)
        line = data[start:end if end >= 0 else len(data)]
        return _not_utf8(path, number, line, UnicodeDecodeError(err.encoding, line, err.start - start,
                                                                 err.end - start, err.reason))
    if not text.strip():
        return _empty(path)
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as err:
            return f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno}); fix the file"
        bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
        if bad is not None:
            return f"{path}: item {bad} of the list is {_json_type(rows[bad])}, not an object; fix the file"
        return None
    try:
        json.loads(text)
        return None  # one valid document: the problem is elsewhere
    except ValueError:
        pass
    for number, line in enumerate(text.splitlines(), start=1):
        problem = _json_row(line) if line.strip() else None
        if problem:
            return f"{path}:{number}: {problem}; fix or remove that line"
    return None


def _json_type(value) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
