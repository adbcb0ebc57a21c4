"""`harness plan`: the resolved recipe, its stage graph, fingerprints and cache hits."""

from __future__ import annotations

import yaml

from harness import checkpoint, paths
from harness.data import cache, pipeline
from harness.fingerprint import fingerprint
from harness.models import tokenizer_id
from harness.schema import plain
from harness.data.step_models import StepModels
from harness.stages import data_dependencies, plan_stages


def recipe_fingerprint(recipe) -> str:
    return fingerprint("recipe", plain(recipe))


def show(recipe, out=print) -> None:
    out(f"# recipe {recipe.name}  fingerprint {recipe_fingerprint(recipe)}")
    out(yaml.safe_dump(plain(recipe), sort_keys=False).rstrip())
    out("")
    plans = plan_stages(recipe)
    models = StepModels.for_recipe(recipe, plans)
    blocks = []  # (name, data config, stage) for each distinct data block
    for stage in recipe.stages or (None,):
        data = recipe.data_for(stage)
        if all(d is not data for _, d, _ in blocks):
            blocks.append(("data" if data is recipe.data else f"{stage.name}.data", data, stage))
    for name, data, stage in blocks:
        nodes = pipeline.plan(data, recipe.seed, tokenizer_id(recipe.model), models.identity)
        after = data_dependencies(recipe, stage)
        out(f"# {name}  fingerprint {pipeline.data_fingerprint(nodes)}"
            + (f"  (built once stage {', '.join(after)} has trained: its steps load those models)" if after else ""))
        for node in nodes:
            hit = "cached" if cache.exists(paths.cache_root(), node.fingerprint) else "to run"
            refs = node.component.model_refs() if not node.is_source else ()
            uses = "  model " + ", ".join(f"{r} ({models.identity(r)})" for r in refs) if refs else ""
            out(f"  {node.label:<26} {node.fingerprint}  {hit}{uses}")
        out("")
    out("# stage graph")

    for i, plan in enumerate(plans):
        state = "finished" if checkpoint.read(plan.final_dir) else "to train"
        after = data_dependencies(recipe, plan.stage)
        out(f"  {plan.stage.name} [{plan.stage.backend}, {recipe.output_format(plan.stage)}]  "
            f"from {plan.start}  data {plan.data_fingerprint}"
            + (f" (built from {', '.join(after)})" if after else "")
            + f"  fingerprint {plan.fingerprint}  {state}" + _round_note(plans, i))
    if not recipe.stages:
        out("  (no training stages)")
    if recipe.eval:
        out(f"  eval suite: {recipe.eval}")
    if recipe.engine != "trl" and recipe.stages:
        from harness.tinker_cost import plan_lines

        out("")
        for line in plan_lines(recipe, plans):
            out(line)


def _round_note(plans, i: int) -> str:
    """`  round 2/3 of dpo, reference dpo_1` for a round of an iterative stage."""
    stage = plans[i].stage
    if stage.iteration is None:
        return ""
    note = f"  round {stage.iteration.index}/{stage.iteration.count} of {stage.iteration.group}"
    if stage.backend == "trl_dpo":
        start = stage.init_from or (plans[i - 1].stage.name if i else "base")
        note += f", reference {stage.reference or start}"
    return note
