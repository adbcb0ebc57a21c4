"""The stage graph: where each training stage starts, what it is keyed by, where it writes.

A stage's fingerprint chains its parent's (or the base model), its data
fingerprint, backend, args, rewards, reference and the model options, so a
finished stage is reused when nothing upstream changed and retrained when
anything did. Run folders are `runs/<recipe>/<stage>-<fingerprint>/`; a stage another recipe
has already finished with the same fingerprint is reused from that recipe's folder. A stage's
data fingerprint includes the fingerprints of the models its data steps sample from, so
retraining an upstream stage regenerates exactly the on-policy data that depended on it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness import paths
from harness.data import pipeline
from harness.fingerprint import fingerprint
from harness.models import model_location, tokenizer_id
from harness.schema import plain
from harness.train import DEFAULTS_VERSION


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
    from harness.data.step_models import StepModels

    base = recipe.model.name_or_path + (f"@{recipe.model.revision}" if recipe.model.revision else "")
    plans: dict[str, StagePlan] = {}
    previous = None
    for stage in recipe.stages:
        models = StepModels.for_recipe(recipe, plans.values())  # data may sample from earlier stages
        nodes = pipeline.plan(recipe.data_for(stage), recipe.seed, tokenizer_id(recipe.model), models.identity)
        data_fp = pipeline.data_fingerprint(nodes)
        origin = plans[stage.init_from] if stage.init_from else previous
        start, parent = (str(origin.final_dir), origin.fingerprint) if origin else (recipe.model.name_or_path, base)
        refs = [stage.reference] + [getattr(r, "model", None) for r in stage.rewards]
        identities = [plans[r].fingerprint if r in plans else r for r in refs]
        fp = fingerprint("stage", DEFAULTS_VERSION, stage.backend, plain(stage.args), plain(stage.rewards), identities, parent,
                         data_fp, recipe.output_format(stage), plain(recipe.model), recipe.seed,
                         *(() if recipe.engine == "trl" else ((recipe.engine, recipe.tinker.train_unembed),)))
        reference = str(plans[stage.reference].final_dir) if stage.reference in plans else stage.reference
        plan = StagePlan(stage, fp, data_fp, start, parent, reference, run_dir(recipe.name, stage.name, fp))
        plans[stage.name] = previous = plan
    return list(plans.values())


def run_dir(recipe_name: str, stage_name: str, fp: str) -> Path:
    """`runs/<recipe>/<stage>-<fingerprint>/`, or the folder of the same stage (same fingerprint:
    same start, data, backend, args and seed) already finished by another recipe, so recipes that
    share a stage (an SFT warm-start) train it once."""
    root = paths.runs_root()
    own = root / recipe_name / f"{stage_name}-{fp}"
    if (own / "final" / "checkpoint.json").is_file():
        return own
    finished = sorted(root.glob(f"*/*-{fp}/final/checkpoint.json"))
    return finished[0].parents[1] if finished else own


def data_dependencies(recipe, stage) -> list[str]:
    """The earlier stages whose models this stage's data steps load (on-policy generation, reward
    or log-prob scoring): the stage's data can only be built once they have trained."""
    if stage is None:
        return []
    names = {s.name for s in recipe.stages}
    refs = [ref for step in recipe.data_for(stage).steps for ref in step.model_refs()]
    return list(dict.fromkeys(ref for ref in refs if ref in names))


def resolver(plans: list[StagePlan]):
    """name -> loadable location: an earlier stage's final folder, an embedded model's folder, or the id."""
    by_name = {p.stage.name: str(p.final_dir) for p in plans}
    return lambda name: by_name.get(name) or model_location(name)
