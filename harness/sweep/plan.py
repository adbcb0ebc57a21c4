"""`harness sweep plan`: every point, and what points share, from the harness's own fingerprints.

Data steps and stages are keyed by content fingerprints (harness/fingerprint.py), so two points that
agree on everything upstream of a node get the same fingerprint for it, and the cache computes or
trains it once. The plan groups every data node and stage by fingerprint and says which points use
it, whether it is cached (or trained) already, and which points are finished. Nothing is computed.
"""

from __future__ import annotations

import dataclasses

from harness.sweep.config import SweepConfig
from harness.sweep.grid import Point, points


@dataclasses.dataclass
class Shared:
    """One data node or stage, and the points that use it."""

    kind: str            # "data" or "stage"
    name: str            # "data 6:label_noise", "sft.data source:countdown", or a stage name
    fingerprint: str
    points: list[int]
    done: bool           # cached (data) or trained (stage)


@dataclasses.dataclass
class SweepPlan:
    sweep: SweepConfig
    points: list[Point]
    state: dict[int, str]                 # point -> finished | trained, to evaluate | to run
    final: dict[int, str]                 # point -> final stage fingerprint
    nodes: dict[str, Shared]              # fingerprint -> data node
    stages: dict[str, Shared]             # fingerprint -> stage

    @property
    def stage_uses(self) -> int:
        return sum(len(s.points) for s in self.stages.values())

    @property
    def node_uses(self) -> int:
        return sum(len(s.points) for s in self.nodes.values())


def build_plan(sweep: SweepConfig, recipes_dir="recipes", check_records: bool = True) -> SweepPlan:
    from harness import checkpoint, paths
    from harness.data import cache, pipeline
    from harness.data.step_models import StepModels
    from harness.models import tokenizer_id
    from harness.stages import plan_stages
    from harness.sweep.run import published

    loaded = points(sweep, recipes_dir)
    nodes: dict[str, Shared] = {}
    stages: dict[str, Shared] = {}
    state, final = {}, {}
    for point in loaded:
        recipe = point.recipe
        plans = plan_stages(recipe)
        models = StepModels.for_recipe(recipe, plans)
        seen_blocks = []
        for stage in recipe.stages:
            data = recipe.data_for(stage)
            if any(d is data for d in seen_blocks):
                continue
            seen_blocks.append(data)
            block = "data" if data is recipe.data else f"{stage.name}.data"
            for node in pipeline.plan(data, recipe.seed, tokenizer_id(recipe.model), models.identity):
                entry = nodes.setdefault(node.fingerprint, Shared(
                    "data", f"{block} {node.label}", node.fingerprint, [],
                    cache.exists(paths.cache_root(), node.fingerprint)))
                if point.index not in entry.points:
                    entry.points.append(point.index)
        for plan in plans:
            entry = stages.setdefault(plan.fingerprint, Shared("stage", plan.stage.name, plan.fingerprint, [],
                                                               checkpoint.read(plan.final_dir) is not None))
            entry.points.append(point.index)
        final[point.index] = plans[-1].fingerprint
        if check_records and published(point) is not None:
            state[point.index] = "finished"
        elif checkpoint.read(plans[-1].final_dir):
            state[point.index] = "trained, to evaluate"
        else:
            state[point.index] = "to run"
    return SweepPlan(sweep, loaded, state, final, nodes, stages)


def _indices(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    out, start = [], None
    values = sorted(values)
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(out)


def format_plan(plan: SweepPlan) -> str:
    sweep = plan.sweep
    settings = len({p.setting for p in plan.points})
    seeds = len({p.seed for p in plan.points})
    lines = [f"# sweep {sweep.name} ({sweep.sweep_id}): recipe {sweep.recipe}, {len(plan.points)} points "
             f"({settings} settings x {seeds} seed{'s' if seeds != 1 else ''})"
             + (f"; fixed overrides: {' '.join(sweep.overrides)}" if sweep.overrides else ""),
             "", "# points"]
    width = max(len(p.label) for p in plan.points)
    for p in plan.points:
        lines.append(f"  {p.index:>3}  {p.label:<{width}}  final {plan.final[p.index]}  {plan.state[p.index]}")
    todo = [s for s in plan.stages.values() if not s.done]
    lines += ["", "# stages (each fingerprint trains once; shared ones are listed with their points)"]
    for s in plan.stages.values():
        if len(s.points) > 1:
            lines.append(f"  {s.name:<12} {s.fingerprint}  shared by points {_indices(s.points)}  "
                         + ("trained" if s.done else "to train"))
    per_point = sorted({s.name for s in plan.stages.values() if len(s.points) == 1})
    if per_point:
        lines.append(f"  one per point: {', '.join(per_point)}")
    shared_nodes = [n for n in plan.nodes.values() if len(n.points) > 1]
    lines += ["", "# data steps shared by several points (computed once)"]
    for n in shared_nodes:
        lines.append(f"  {n.name:<34} {n.fingerprint}  points {_indices(n.points)}  "
                     + ("cached" if n.done else "to run"))
    if not shared_nodes:
        lines.append("  (none)")
    lines += ["", "# totals",
              f"  stage trainings: {len(plan.stages)} distinct for {plan.stage_uses} point-stages "
              f"({len(todo)} still to train)",
              f"  data nodes: {len(plan.nodes)} distinct for {plan.node_uses} point-nodes "
              f"({sum(not n.done for n in plan.nodes.values())} still to compute)",
              f"  points: {sum(v == 'finished' for v in plan.state.values())} finished, "
              f"{sum(v != 'finished' for v in plan.state.values())} to run or evaluate"]
    return "\n".join(lines)
