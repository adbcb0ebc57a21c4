"""A Hugging Face Hub dataset by id, split, subset and revision (`datasets.load_dataset`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.data.source import SOURCES, Source
from harness.data.sources import _tabular
from harness.errors import HarnessError, one_line
from harness.schema import param


@SOURCES.register()
@dataclasses.dataclass(frozen=True)
class Hub(Source):
    """A dataset on the Hugging Face Hub, adapted from its own format."""

    name = "hub"
    version = 1

    path: str = param(help="dataset id, e.g. Anthropic/hh-rlhf")
    format: str = param(help="format adapter, e.g. hh_rlhf, ultrafeedback_binarized, gsm8k")
    split: str = "train"
    subset: str | None = param(None, help="dataset configuration name")
    data_dir: str | None = None
    revision: str | None = param(None, help="commit sha or tag; pin it for reproducible caches")
    kind: Literal["sft", "preference", "prompt"] | None = None
    limit: int | None = param(None, ge=1, help="use only the first N rows")
    license: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        _tabular.check_format(self.format, self.kind)

    def identity(self) -> dict:
        return {"revision": self.revision or "unpinned"}

    def describe(self) -> dict:
        return {**super().describe(), "path": self.path, "split": self.split, "subset": self.subset,
                "revision": self.revision or "unpinned", "license": self.license or "see dataset card"}

    def load(self, ctx):
        import datasets

        try:
            dataset = datasets.load_dataset(self.path, self.subset, split=self.split,
                                            revision=self.revision, data_dir=self.data_dir)
        except Exception as err:  # offline, missing, gated, bad split: all one line for the user
            raise HarnessError(f"source '{self.display_name}': cannot load hub dataset '{self.path}' "
                               f"(split {self.split}): {one_line(err)}; check the id and split, or download "
                               f"it once with network access so the cached copy is used") from None
        yield from _tabular.examples(dataset, self, ctx)
