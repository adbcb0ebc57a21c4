"""A sweep run end to end on a tiny model: the shared SFT stage trains once, an interrupted sweep resumes
by skipping its finished point, records carry the sweep, and the report plots their numbers."""

from __future__ import annotations

import json

from test_sweep import _study, project  # noqa: F401  (the fixture)

from harness import checkpoint
from harness.sweep.config import load_sweep


def test_two_point_sweep_trains_the_shared_sft_once_and_resumes(project, workspace):
    from harness.sweep.plan import build_plan
    from harness.sweep.run import run_sweep

    path = _study(project, "recipe: tiny_noise\ngrid:\n  data.steps.0.flip_rate: [0.0, 0.5]\n"
                           "metrics: [countdown.accuracy]\n")
    sweep = load_sweep(path)
    first: list[str] = []
    assert run_sweep(sweep, project / "recipes", only=0, log=first.append) == {0: "ran"}   # then "interrupted"
    plan = build_plan(sweep, project / "recipes")
    assert plan.state == {0: "finished", 1: "to run"}
    (sft,) = [s for s in plan.stages.values() if s.name == "sft"]
    assert sft.points == [0, 1] and sft.done

    second: list[str] = []
    assert run_sweep(sweep, project / "recipes", log=second.append) == {0: "skipped", 1: "ran"}
    assert any(l.startswith("point 0 (data.steps.0.flip_rate=0.0): finished earlier") for l in second)
    assert any(l.startswith("sft: finished earlier, reusing") for l in second)
    runs = workspace / "runs" / "tiny_noise"
    assert len(list(runs.glob("sft-*/final/checkpoint.json"))) == 1          # trained once for both points
    assert len(list(runs.glob("dpo-*/final/checkpoint.json"))) == 2
    third: list[str] = []
    assert run_sweep(sweep, project / "recipes", log=third.append) == {0: "skipped", 1: "skipped"}
    # each point's record carries the sweep id and its coordinates
    board = json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())
    tagged = {r["sweeps"][0]["point"]: r for b in board["boards"] for r in b["rows"] if r.get("sweeps")}
    assert sorted(tagged) == [0, 1]
    assert tagged[1]["sweeps"] == [{"id": sweep.sweep_id, "name": "study", "point": 1,
                                    "coordinates": {"data.steps.0.flip_rate": 0.5}}]
    finals = {p.index: str(checkpoint.read(next(runs.glob(f"dpo-{plan.final[p.index]}/final")))["fingerprint"])
              for p in plan.points}
    assert {i: r["model"]["fingerprint"] for i, r in tagged.items()} == finals

    from harness import leaderboard
    from harness.sweep.report import report, sweep_records

    # an evaluation reused from another recipe that trained the same weights (`run` reuses it by weight
    # hash) counts for the point; one with other weights and another fingerprint does not
    reused = leaderboard.load(workspace / "leaderboard" / tagged[0]["record"], workspace / "leaderboard")
    leaderboard.add({**reused, "run_id": "countdown-reused", "finished": "2098-01-01T00:00:00Z",
                     "model": {**reused["model"], "fingerprint": "f" * 16}})
    leaderboard.add({**reused, "run_id": "countdown-other", "finished": "2099-01-01T00:00:00Z",
                     "model": {**reused["model"], "fingerprint": "e" * 16, "weight_hash": "0" * 64}})
    found = sweep_records(sweep, plan.points)
    assert found[0]["run_id"] == "countdown-reused" and found[1]["run_id"] == tagged[1]["run_id"]

    folder = report(sweep, project / "recipes", log=lambda _: None)
    data = json.loads((folder / "countdown.accuracy.json").read_text())
    assert (folder / "countdown.accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["x"] == "data.steps.0.flip_rate"
    means = {p["x"]: p["mean"] for p in data["series"][0]["points"]}
    assert means == {i: tagged[n]["tasks"]["countdown"]["metrics"]["accuracy"]["value"]
                     for n, i in ((0, 0.0), (1, 0.5))}
