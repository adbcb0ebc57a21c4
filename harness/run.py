"""`run(recipe)`: the whole flow, top to bottom."""

from __future__ import annotations

import os
from pathlib import Path

from harness import checkpoint
from harness.data.prepare import prepare
from harness.data.step_models import StepModels
from harness.stages import data_dependencies, plan_stages, resolver
from harness.train import engine_backend, load_backend, resume_points
from harness.train.job import TrainJob


def prepare_data(recipe, log=print, models=None) -> dict[str | None, Path]:
    """Each stage's dataset, in the format its trainer needs (the recipe's own data without stages),
    except data built from an earlier stage's model, which can only be made once that stage has
    trained: `run` prepares it just before its stage."""
    return {stage.name if stage else None: prepare(recipe, stage, log=log, models=models)
            for stage in recipe.stages or (None,) if not data_dependencies(recipe, stage)}


def run(recipe, log=print, fresh_eval: bool = False, over_budget: bool = False) -> dict[str, Path]:
    """Prepare every stage's data, train the stages in order (finished ones are reused), then evaluate
    the final checkpoint against the base model on the recipe's suite, and every round of an iterative
    stage too (published evaluations of the same weights are reused unless `fresh_eval`)."""
    preflight(recipe)
    plans = plan_stages(recipe)
    models = StepModels.for_recipe(recipe, plans)
    models.check_all(recipe)
    datasets = prepare_data(recipe, log, models)
    if recipe.budget_usd is not None:  # a Tinker run estimated over its budget does not start
        from harness.tinker_cost import check_budget

        check_budget(recipe, plans, datasets, over_budget, log)
    resolve = resolver(plans)
    finals = {}
    for plan in plans:
        finals[plan.stage.name] = plan.final_dir
        if checkpoint.read(plan.final_dir):
            log(f"{plan.stage.name}: finished earlier, reusing {plan.final_dir}")
            resume_points.remove(plan.run_dir, plan.stage, log)  # left by a crash after final/ was complete
            continue
        if plan.stage.name not in datasets:  # on-policy data: its models exist now
            log(f"{plan.stage.name}: building its data from {', '.join(data_dependencies(recipe, plan.stage))}")
            datasets[plan.stage.name] = prepare(recipe, plan.stage, log=log, models=models)
        job = TrainJob(recipe=recipe, stage=plan.stage, fingerprint=plan.fingerprint,
                       data_dir=datasets[plan.stage.name], start=resolve(plan.start), parent=plan.parent,
                       reference=plan.reference, resolve=resolve, run_dir=plan.run_dir, log=log)
        load_backend(engine_backend(recipe.engine, plan.stage.backend)).train(job)
    if recipe.eval and plans and os.environ.get("RANK", "0") == "0":  # one evaluation, not one per rank
        from harness.evaluate.run import evaluate_recipe

        rounds = [p.final_dir for p in plans[:-1] if p.stage.iteration and p.stage.iteration.evaluate]
        evaluate_recipe(recipe, plans[-1].final_dir, log, fresh=fresh_eval, rounds=rounds)
    return finals


def preflight(recipe) -> None:
    """Checks done before any data or model work: QLoRA needs this machine to have a GPU, and
    every stage's args must build its TRL config class (types and values, not just names)."""
    if not recipe.stages:
        return
    if recipe.engine != "trl":  # the key (and, remotely, the served model) in seconds, before any data work
        from harness.tinker_clients import preflight as tinker_preflight

        tinker_preflight(recipe)
    if recipe.model.qlora:
        from harness.train.lora import quantization_config

        quantization_config(recipe.model)
    import tempfile

    from harness.schema import plain
    from harness.train import build_config

    for stage in recipe.stages:
        with tempfile.TemporaryDirectory() as tmp:
            build_config(stage, **{"use_cpu": True, **plain(stage.args), "output_dir": tmp})
