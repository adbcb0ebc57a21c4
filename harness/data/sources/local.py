"""A local jsonl/json/parquet/csv file (optionally .gz), loaded with `datasets`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import xxhash

from harness.data.source import SOURCES, Source
from harness.data.sources import _tabular
from harness.errors import FieldError, HarnessError, one_line
from harness.schema import param

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def builder_for(path: str) -> str | None:
    suffixes = [s for s in Path(path).suffixes if s not in (".gz", ".bz2", ".xz", ".zst")]
    return _BUILDERS.get(suffixes[-1]) if suffixes else None


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
            dataset = datasets.load_dataset(builder_for(self.path), data_files=str(path.resolve()), split="train")
        except Exception as err:
            raise HarnessError(f"source '{self.display_name}': cannot read {self.path}: {one_line(err)}") from None
        yield from _tabular.examples(dataset, self, ctx)
