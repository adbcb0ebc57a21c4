"""`harness sweep run`: every point of a sweep, one after another, resumable.

Each point is `harness run RECIPE <its overrides>`, so everything the harness caches is reused across
points: data steps and stages are keyed by content fingerprints, and a stage another point has already
trained (the SFT warm-start of a flip-rate sweep) is reused from its folder. A point is finished when
the leaderboard holds an evaluation of its final checkpoint's weights on the recipe's suite (the
same test `harness run` uses to reuse a published evaluation); a rerun skips finished points and
only tags their records if needed. Each point's record carries `sweeps: [{id, name, point,
coordinates}]`, which the report and the leaderboard page group by.
"""

from __future__ import annotations

from pathlib import Path

from harness import checkpoint
from harness.sweep.config import SweepConfig
from harness.sweep.grid import Point, points, preflight


def final_dir(point: Point) -> Path:
    from harness.stages import plan_stages

    return plan_stages(point.recipe)[-1].final_dir


def suite_fingerprint(recipe) -> str:
    from harness.evaluate.run import find_suite
    from harness.evaluate.run import suite_fingerprint as fingerprint_of

    _, config = find_suite(recipe.eval)
    return fingerprint_of(config, None)


def published(point: Point) -> dict | None:
    """The leaderboard record evaluating this point's final checkpoint on its suite, or None (not
    trained, or trained but not evaluated)."""
    from harness import leaderboard

    final = final_dir(point)
    if not checkpoint.read(final):
        return None
    weights = checkpoint.weight_hash(final)
    found = leaderboard.find(suite_fingerprint(point.recipe), weights) if weights else None
    if found and found["decontamination"].get("status") == "contaminated" and \
            not found["decontamination"].get("allow_contaminated"):
        return None
    return found


def membership(sweep: SweepConfig, point: Point) -> dict:
    return {"id": sweep.sweep_id, "name": sweep.name, "point": point.index,
            "coordinates": dict(point.coordinates)}


def tag(record: dict, sweep: SweepConfig, point: Point) -> bool:
    """Add this sweep point to the record's `sweeps` list and republish it (same run id, so its row is
    replaced); False when it was tagged already. One checkpoint may belong to several sweeps."""
    from harness import leaderboard

    entry = membership(sweep, point)
    tags = list(record.get("sweeps") or [])
    if entry in tags:
        return False
    tags = [t for t in tags if not (t["id"] == entry["id"] and t["point"] == entry["point"])] + [entry]
    leaderboard.add({**record, "sweeps": tags})
    return True


def run_sweep(sweep: SweepConfig, recipes_dir: str | Path = "recipes", only: int | None = None,
              log=print, fresh_eval: bool = False) -> dict[int, str]:
    """Run the sweep's points in order (or just point `only`), skipping finished ones. Every point is
    loaded and preflighted first. Returns point index -> 'skipped' or 'ran'."""
    from harness.run import run

    loaded = points(sweep, recipes_dir)
    if only is not None and not 0 <= only < len(loaded):
        from harness.errors import HarnessError

        raise HarnessError(f"sweep {sweep.name}: --point {only} is out of range; its points are 0..{len(loaded) - 1}")
    preflight(sweep, loaded)
    chosen = loaded if only is None else [loaded[only]]
    log(f"sweep {sweep.name} ({sweep.sweep_id}): {len(loaded)} points, all validated; running "
        + ("all" if only is None else f"point {only}"))
    outcome = {}
    for point in chosen:
        record = None if fresh_eval else published(point)
        if record is not None:
            retagged = tag(record, sweep, point)
            log(f"point {point.index} ({point.label}): finished earlier (record {record['run_id']}), skipping"
                + ("; tagged its record with the sweep" if retagged else ""))
            outcome[point.index] = "skipped"
            continue
        log(f"point {point.index} ({point.label}): running {point.recipe.name} {' '.join(point.overrides)}")
        run(point.recipe, log=log, fresh_eval=fresh_eval)
        record = published(point)
        if record is None:
            from harness.errors import HarnessError

            raise HarnessError(f"point {point.index} ({point.label}): ran, but no leaderboard record of its final "
                               f"checkpoint {final_dir(point)} was found; check HARNESS_LEADERBOARD")
        tag(record, sweep, point)
        log(f"point {point.index} ({point.label}): done, record {record['run_id']}")
        outcome[point.index] = "ran"
    return outcome
