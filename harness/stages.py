"""The stage graph: where each training stage starts, what it is keyed by, where it writes.

A stage's fingerprint chains its parent's (or the base model), its data
fingerprint, backend, args, rewards, reference and the model options, so a
finished stage is reused when nothing upstream changed and retrained when
anything did. Run folders are `runs/<recipe>/<stage>-<fingerprint>/`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness import paths
from harness.data import pipeline
from harness.fingerprint import fingerprint
from harness.models import model_location, tokenizer_id
from harness.schema import plain


@dataclasses.dataclass(frozen=True)
class StagePlan:
    stage: object
    fingerprint: str
    data_fingerprint: str
    start: str        # base model id, or the parent stage's final folder
    parent: str       # base model id, or the parent stage's fingerprint
    reference: str | None
    run_dir: Path

    @property
    def final_dir(self) -> Path:
        return self.run_dir / "final"


def plan_stages(recipe) -> list[StagePlan]:
    base = recipe.model.name_or_path + (f"@{recipe.model.revision}" if recipe.model.revision else "")
    plans: dict[str, StagePlan] = {}
    previous = None
    for stage in recipe.stages:
        nodes = pipeline.plan(recipe.data_for(stage), recipe.seed, tokenizer_id(recipe.model))
        data_fp = pipeline.data_fingerprint(nodes)
        origin = plans[stage.init_from] if stage.init_from else previous
        start, parent = (str(origin.final_dir), origin.fingerprint) if origin else (recipe.model.name_or_path, base)
        refs = [stage.reference] + [getattr(r, "model", None) for r in stage.rewards]
        identities = [plans[r].fingerprint if r in plans else r for r in refs]
        fp = fingerprint("stage", stage.backend, plain(stage.args), plain(stage.rewards), identities, parent,
                         data_fp, recipe.output_format(stage), plain(recipe.model), recipe.seed)
        reference = str(plans[stage.reference].final_dir) if stage.reference in plans else stage.reference
        plan = StagePlan(stage, fp, data_fp, start, parent, reference,
                         paths.runs_root() / recipe.name / f"{stage.name}-{fp}")
        plans[stage.name] = previous = plan
    return list(plans.values())


def resolver(plans: list[StagePlan]):
    """name -> loadable location: an earlier stage's final folder, an embedded model's folder, or the id."""
    by_name = {p.stage.name: str(p.final_dir) for p in plans}
    return lambda name: by_name.get(name) or model_location(name)
