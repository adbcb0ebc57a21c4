"""A local jsonl/json/parquet/csv file (optionally .gz), loaded with `datasets`.

A file that cannot be read (not UTF-8, a malformed JSON line, an empty file)
stops the run with one line naming the file and the line to fix; its bad rows
are never dropped quietly (see `_diagnose`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Literal

import xxhash

from harness.data.source import SOURCES, Source
from harness.data.sources import _diagnose, _tabular
from harness.errors import FieldError, HarnessError, one_line
from harness.schema import param

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def file_type(path: str) -> str | None:
    """The data suffix of a path, compression removed: `a.jsonl.gz` -> `.jsonl`."""
    suffixes = [s for s in Path(path).suffixes if s not in (".gz", ".bz2", ".xz", ".zst")]
    return suffixes[-1] if suffixes else None


def builder_for(path: str) -> str | None:
    return _BUILDERS.get(file_type(path))


def file_hash(path: Path) -> str:
    digest = xxhash.xxh3_64()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


@SOURCES.register()
@dataclasses.dataclass(frozen=True)
class Local(Source):
    """A file on disk, adapted from its format; its content hash keys the cache."""

    name = "local"
    version = 1

    path: str = param(help="jsonl, json, parquet or csv, optionally .gz; relative to the working directory")
    format: str = param("trl", help="format adapter, e.g. trl, hh_rlhf, gsm8k, alpaca")
    kind: Literal["sft", "preference", "prompt"] | None = None
    limit: int | None = param(None, ge=1, help="use only the first N rows")
    license: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if builder_for(self.path) is None:
            raise FieldError("path", f"unsupported file type '{self.path}'; use .jsonl, .json, "
                                     f".parquet or .csv (optionally .gz)")
        _tabular.check_format(self.format, self.kind)

    def _file(self) -> Path:
        path = Path(self.path)
        if not path.is_file():
            raise HarnessError(f"source '{self.display_name}': file not found: {self.path} "
                               f"(relative paths are taken from {Path.cwd()})")
        return path

    def identity(self) -> dict:
        return {"sha": file_hash(self._file())}

    def describe(self) -> dict:
        return {**super().describe(), "path": self.path, "license": self.license or "unknown",
                "revision": "xxh3:" + file_hash(self._file())}

    def load(self, ctx):
        import datasets

        path = self._file()
        try:
            with _quiet_datasets():
                dataset = datasets.load_dataset(builder_for(self.path), data_files=str(path.resolve()), split="train")
        except Exception as err:
            raise HarnessError(self._unreadable(path, err)) from None
        try:
            yield from _tabular.examples(dataset, self, ctx)
        except UnicodeDecodeError as err:  # Arrow keeps invalid UTF-8 as is, until a row is first read
            raise HarnessError(self._unreadable(path, err)) from None

    def _unreadable(self, path: Path, err: Exception) -> str:
        """One line: the file and line at fault where a second, careful read finds one, else the reader's error."""
        problem = _diagnose.first_problem(path, file_type(self.path))
        if problem is None:
            while type(err).__name__ == "DatasetGenerationError" and err.__cause__ is not None:
                err = err.__cause__  # "An error occurred while generating the dataset" says nothing
            problem = f"cannot read {self.path}: {one_line(err)}"
        return f"source '{self.display_name}': {problem}"


@contextlib.contextmanager
def _quiet_datasets():
    """`datasets` logs its own copy of a read error (we report one line instead), and draws
    progress bars that only clutter a log file; keep them where a person is watching a terminal."""
    from datasets.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity(logging.CRITICAL)
    if not sys.stderr.isatty():
        logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
