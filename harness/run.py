"""`run(recipe)`: the whole flow, top to bottom."""

from __future__ import annotations

from harness.data.prepare import prepare
from harness.train import load_backend


def run(recipe, log=print) -> dict:
    """Prepare each stage's data, then train the stages in order."""
    datasets = {}
    for stage in recipe.stages or (None,):
        datasets[stage.name if stage else None] = prepare(recipe, stage, log=log)
    for stage in recipe.stages:
        backend = load_backend(stage.backend)
        backend.train(stage, datasets[stage.name], recipe=recipe, log=log)
    return datasets
