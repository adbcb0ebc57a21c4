"""`harness plan`: the resolved recipe, its stage graph, fingerprints and cache hits."""

from __future__ import annotations

import yaml

from harness import paths
from harness.data import cache, pipeline
from harness.fingerprint import fingerprint
from harness.models import tokenizer_id
from harness.schema import plain


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
    fps = {}
    for name, data in blocks:
        nodes = pipeline.plan(data, recipe.seed, tokenizer_id(recipe.model))
        fps[id(data)] = pipeline.data_fingerprint(nodes)
        out(f"# {name}  fingerprint {fps[id(data)]}")
        for node in nodes:
            hit = "cached" if cache.exists(paths.cache_root(), node.fingerprint) else "to run"
            out(f"  {node.label:<26} {node.fingerprint}  {hit}")
        out("")
    out("# stage graph")
    previous = recipe.model.name_or_path
    for stage in recipe.stages:
        data = recipe.data_for(stage)
        start = stage.init_from or previous
        out(f"  {stage.name} [{stage.backend}, {recipe.output_format(stage)}]  "
            f"from {start}  data {fps[id(data)]}")
        previous = stage.name
    if not recipe.stages:
        out("  (no training stages)")
    if recipe.eval:
        out(f"  eval suite: {recipe.eval}")
