"""`run(recipe)`: the whole flow, top to bottom."""

from __future__ import annotations

from pathlib import Path

from harness.data.prepare import prepare
from harness.train import load_backend


def prepare_data(recipe, log=print) -> dict[str | None, Path]:
    """Each stage's dataset, in the format its trainer needs (the recipe's own data without stages)."""
    return {stage.name if stage else None: prepare(recipe, stage, log=log) for stage in recipe.stages or (None,)}


def run(recipe, log=print) -> dict[str | None, Path]:
    """Prepare every stage's data, then train the stages in order."""
    datasets = prepare_data(recipe, log)
    for stage in recipe.stages:
        backend = load_backend(stage.backend)
        backend.train(stage, datasets[stage.name], recipe=recipe, log=log)
    return datasets
