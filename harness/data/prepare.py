"""The data stage: run the pipeline, then write the dataset, manifest, rejects and card.

Everything for one (data fingerprint, format) goes into
`runs/<recipe>/data/<fingerprint>-<format>/`, written to a temporary folder
and renamed into place; the card is also copied to `data_cards/`. A dataset already prepared
under the same fingerprint is reused as a whole, without running (or replaying) the pipeline.
"""

from __future__ import annotations

import datetime
import functools
import json
import shutil
from pathlib import Path

from harness import __version__, paths
from harness.atomic import atomic_dir, write_bytes
from harness.data import cache, card, output, pipeline
from harness.models import load_tokenizer, tokenizer_id
from harness.schema import plain


def prepare(recipe, stage=None, log=print, models=None) -> Path:
    """Build (or reuse) the trainer-facing dataset for a stage; returns its folder. `models` loads
    what model-reading steps name (default: the recipe's base model and its stages)."""
    from harness.data.step_models import StepModels
    from harness.stages import plan_stages

    data = recipe.data_for(stage)
    tokenizer = functools.cache(lambda: load_tokenizer(recipe.model))
    models = models or StepModels.for_recipe(recipe, plan_stages(recipe) if recipe.stages else ())
    card_name = recipe.name if stage is None or stage.data is None else f"{recipe.name}.{stage.name}"
    fingerprint = pipeline.planned_fingerprint(data, recipe.seed, tokenizer_id(recipe.model), models)
    done = _prepared(paths.runs_root() / recipe.name / "data", fingerprint, recipe.output_format(stage))
    if done is not None:  # prepared before: reused without reading a row (a rerun of a large set is instant)
        pipeline.log_reused(json.loads((done / "manifest.json").read_text(encoding="utf-8")), log)
        log(f"reusing {done}")
        return _publish_card(done, card_name)
    result = pipeline.run(data, recipe.seed, tokenizer_id(recipe.model), tokenizer, log=log, models=models)
    fmt = recipe.output_format(stage) or output.infer_format(result.examples)
    folder = paths.runs_root() / recipe.name / "data" / f"{result.fingerprint}-{fmt}"
    if not (folder / "manifest.json").is_file():
        manifest = _manifest(recipe, data, result, fmt)
        with atomic_dir(folder) as tmp:
            output.save(result.examples, fmt, tmp / "dataset")
            _copy_rejects(result, tmp / "rejects")
            try:
                tok = tokenizer()
            except Exception as err:  # the card falls back to word counts and says so
                log(f"card: lengths in words ({err})")
                tok = None
            rendered = card.render_card(card_name, manifest, result.examples, tok, card_name)
            (tmp / "card.md").write_text(rendered.text, encoding="utf-8")
            for figure, png in rendered.figures.items():  # lengths.png, and pairs.png for built pairs
                (tmp / f"{figure}.png").write_bytes(png)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        log(f"wrote {manifest['rows']} {fmt} examples to {folder}")
    else:
        log(f"reusing {folder}")
    return _publish_card(folder, card_name)


def _prepared(data_dir: Path, fingerprint: str, fmt: str | None) -> Path | None:
    """The finished folder of a data fingerprint: in `fmt`, or, when the data's own kind decides the
    format, the only one there is."""
    found = [f for f in sorted(data_dir.glob(f"{fingerprint}-{fmt or '*'}")) if (f / "manifest.json").is_file()]
    return found[0] if len(found) == 1 else None


def _publish_card(folder: Path, card_name: str) -> Path:
    cards = paths.cards_root()
    write_bytes(cards / f"{card_name}.md", (folder / "card.md").read_bytes())
    for png in sorted(folder.glob("*.png")):
        write_bytes(cards / f"{card_name}.{png.name}", png.read_bytes())
    return folder


def _manifest(recipe, data, result, fmt) -> dict:
    sources, steps = [], []
    for node, stats in zip(result.nodes, result.stats):
        entry = {"label": node.label, "fingerprint": node.fingerprint, "rows_in": stats["rows_in"],
                 "rows_out": stats["rows_out"], "dropped": stats["dropped"], "counters": stats["counters"],
                 "seconds": stats["seconds"], "cached": stats.get("cached", False)}
        if node.is_source:
            sources.append({**node.component.describe(), "fingerprint": node.fingerprint,
                            "rows": stats["rows_out"], "dropped": stats["dropped"]})
        else:
            entry.update(step=node.component.name, version=node.component.version, params=plain(node.component))
        steps.append(entry)
    return {"recipe": recipe.name, "data_fingerprint": result.fingerprint, "format": fmt,
            "rows": len(result.examples), "order": result.order, "seed": recipe.seed,
            "tokenizer": tokenizer_id(recipe.model), "sources": sources, "steps": steps,
            "dataset": "dataset", "harness_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _copy_rejects(result, folder: Path) -> None:
    names: dict[str, int] = {}
    for node in result.nodes:
        src = cache.rejects_path(paths.cache_root(), node.fingerprint)
        if not src.is_file() or src.stat().st_size == 0:
            continue
        base = node.label.replace(":", "-") if node.is_source else node.component.name
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base}.{names[base]}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / f"{name}.jsonl")
