"""`harness plan`: the resolved recipe, its stage graph, fingerprints and cache hits."""

from __future__ import annotations

import yaml

from harness import checkpoint, paths
from harness.data import cache, pipeline
from harness.fingerprint import fingerprint
from harness.models import tokenizer_id
from harness.schema import plain
from harness.stages import plan_stages


def recipe_fingerprint(recipe) -> str:
    return fingerprint("recipe", plain(recipe))


def show(recipe, out=print) -> None:
    out(f"# recipe {recipe.name}  fingerprint {recipe_fingerprint(recipe)}")
    out(yaml.safe_dump(plain(recipe), sort_keys=False).rstrip())
    out("")
    blocks = []  # (name, data config) for each distinct data block
    for stage in recipe.stages or (None,):
        data = recipe.data_for(stage)
        if all(d is not data for _, d in blocks):
            blocks.append(("data" if data is recipe.data else f"{stage.name}.data", data))
    for name, data in blocks:
        nodes = pipeline.plan(data, recipe.seed, tokenizer_id(recipe.model))
        out(f"# {name}  fingerprint {pipeline.data_fingerprint(nodes)}")
        for node in nodes:
            hit = "cached" if cache.exists(paths.cache_root(), node.fingerprint) else "to run"
            out(f"  {node.label:<26} {node.fingerprint}  {hit}")
        out("")
    out("# stage graph")

    for plan in plan_stages(recipe):
        state = "finished" if checkpoint.read(plan.final_dir) else "to train"
        out(f"  {plan.stage.name} [{plan.stage.backend}, {recipe.output_format(plan.stage)}]  "
            f"from {plan.start}  data {plan.data_fingerprint}  fingerprint {plan.fingerprint}  {state}")
    if not recipe.stages:
        out("  (no training stages)")
    if recipe.eval:
        out(f"  eval suite: {recipe.eval}")
