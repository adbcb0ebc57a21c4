"""`run(recipe)`: the whole flow, top to bottom."""

from __future__ import annotations

import os
from pathlib import Path

from harness import checkpoint
from harness.data.prepare import prepare
from harness.stages import plan_stages, resolver
from harness.train import load_backend
from harness.train.job import TrainJob


def prepare_data(recipe, log=print) -> dict[str | None, Path]:
    """Each stage's dataset, in the format its trainer needs (the recipe's own data without stages)."""
    return {stage.name if stage else None: prepare(recipe, stage, log=log) for stage in recipe.stages or (None,)}


def run(recipe, log=print) -> dict[str, Path]:
    """Prepare every stage's data, train the stages in order (finished ones are reused), then evaluate
    the final checkpoint against the base model on the recipe's suite."""
    preflight(recipe)
    datasets = prepare_data(recipe, log)
    plans = plan_stages(recipe)
    resolve = resolver(plans)
    finals = {}
    for plan in plans:
        finals[plan.stage.name] = plan.final_dir
        if checkpoint.read(plan.final_dir):
            log(f"{plan.stage.name}: finished earlier, reusing {plan.final_dir}")
            continue
        job = TrainJob(recipe=recipe, stage=plan.stage, fingerprint=plan.fingerprint,
                       data_dir=datasets[plan.stage.name], start=resolve(plan.start), parent=plan.parent,
                       reference=plan.reference, resolve=resolve, run_dir=plan.run_dir, log=log)
        load_backend(plan.stage.backend).train(job)
    if recipe.eval and plans and os.environ.get("RANK", "0") == "0":  # one evaluation, not one per rank
        from harness.evaluate.run import evaluate_recipe

        evaluate_recipe(recipe, plans[-1].final_dir, log)
    return finals


def preflight(recipe) -> None:
    """Checks done before any data or model work: QLoRA needs this machine to have a GPU, and
    every stage's args must build its TRL config class (types and values, not just names)."""
    if not recipe.stages:
        return
    if recipe.model.qlora:
        from harness.train.lora import quantization_config

        quantization_config(recipe.model)
    import tempfile

    from harness.schema import plain
    from harness.train import build_config

    for stage in recipe.stages:
        with tempfile.TemporaryDirectory() as tmp:
            build_config(stage, **{"use_cpu": True, **plain(stage.args), "output_dir": tmp})
