"""What a backend is handed: one stage, its prepared data, where to start and where to write."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class TrainJob:
    recipe: Any               # harness.recipe.Recipe
    stage: Any                # harness.recipe.StageConfig
    fingerprint: str          # the stage's cache key (chains its parent and data)
    data_dir: Path            # prepared dataset folder: dataset/ + manifest.json
    start: str                # loadable model id or path the stage starts from (already resolved)
    parent: str               # what `start` is, for lineage: a base model id or a parent stage fingerprint
    reference: str | None     # DPO reference model id or path (None: the starting model)
    resolve: Callable[[str], str]  # earlier stage name or model id -> loadable path
    run_dir: Path             # the trainer's output_dir (intermediate checkpoint-N folders)
    log: Callable[[str], None] = print

    @property
    def final_dir(self) -> Path:
        return self.run_dir / "final"
