"""Sweeps: grid expansion, every point validated before anything runs, shared stages trained once,
resume, the SLURM array script, and the report's numbers and plots."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, TINY_SFT_STAGE, TINY_SUITE, write_recipe

from harness import checkpoint, leaderboard
from harness.cli import main
from harness.errors import ConfigError, HarnessError
from harness.sweep.config import from_command_line, load_sweep, parse_grid
from harness.sweep.grid import coordinates, points

TINY = """
name: tiny_noise
seed: 0
model: {tiny}
data:
  sources: [{{source: countdown, kind: preference, n: 16, num_numbers: [2], max_number: 20, max_target: 40}}]
  steps:
    - {{step: label_noise, flip_rate: 0.0}}
  format: preference
stages:
""" + TINY_SFT_STAGE + """  - name: dpo
    backend: trl_dpo
    args: {{max_steps: 1, per_device_train_batch_size: 2, max_length: 128}}
eval: tiny
"""


@pytest.fixture
def project(tmp_path, tiny_model, monkeypatch):
    """A project folder with the tiny recipe, its suite and a studies/ folder; the working directory."""
    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path / "recipes", TINY.format(tiny=tiny_model), "tiny_noise")
    write_recipe(tmp_path / "evals", TINY_SUITE, "tiny")
    return tmp_path


def _study(project, text, name="study"):
    return write_recipe(project / "recipes" / "studies", text, name)


def test_grid_expands_in_grid_order_with_the_last_key_fastest():
    sweep = from_command_line("noisy_dpo", "data.steps.6.flip_rate=0,0.1,0.2 seed=0,1",
                              overrides=("eval=countdown",))
    combos = coordinates(sweep)
    assert len(combos) == 6
    assert combos[0] == (("data.steps.6.flip_rate", 0), ("seed", 0))
    assert combos[1] == (("data.steps.6.flip_rate", 0), ("seed", 1))
    assert combos[5] == (("data.steps.6.flip_rate", 0.2), ("seed", 1))
    assert sweep.factors == ["data.steps.6.flip_rate"] and sweep.baseline_setting == {"data.steps.6.flip_rate": 0}
    # commas inside brackets belong to one value
    assert parse_grid("stages.1.args.loss_type=[sigmoid,sft],[ipo] seed=0") == {
        "stages.1.args.loss_type": [["sigmoid", "sft"], ["ipo"]], "seed": [0]}
    with pytest.raises(HarnessError, match="key.path=value1,value2"):
        parse_grid("seed")
    with pytest.raises(ConfigError, match="seeds must be non-negative integers"):
        from_command_line("noisy_dpo", "seed=0,x")


def test_a_bad_value_in_point_7_stops_the_sweep_before_point_1_starts(project, workspace, capsys):
    path = _study(project, "recipe: tiny_noise\ngrid:\n  data.steps.0.flip_rate: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, "
                           "1.5]\n")
    assert main(["sweep", "run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "point 7 (data.steps.0.flip_rate=1.5)" in err and "expected a value >= 0.0 and <= 1.0, got 1.5" in err
    assert not (workspace / "runs").exists() and not (workspace / "cache").exists()   # nothing ran


def test_sweep_file_errors_name_the_file_line_and_key(project):
    path = _study(project, "recipe: tiny_noise\ngrid:\n  data.steps.0.flip_rate: [0.0, 0.5]\n  seed: [0, 1]\n"
                           "baseline: {data.steps.0.flip_rate: 0.25}\n")
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert str(err.value).startswith(f"{path}:5: baseline.data.steps.0.flip_rate: 0.25 is not one of the grid's")
    path = _study(project, "recipe: tiny_noise\ngrid: {seed: [0]}\ntradeoff: [a.b]\n", "two")
    with pytest.raises(ConfigError, match="tradeoff: expected two metrics"):
        load_sweep(path)
    path = _study(project, "recipe: tiny_noise\ngrid: {seed: [0, 0]}\n", "repeat")
    with pytest.raises(ConfigError, match="grid.seed.1: value 0 is listed twice"):
        load_sweep(path)


def test_shipped_studies_validate_and_plan_their_shared_sft_once(monkeypatch):
    from harness.recipe import discover, validate_file
    from harness.sweep.plan import build_plan, format_plan

    monkeypatch.chdir(ROOT)
    studies = [(k, p) for k, p in discover([str(ROOT / "recipes")]) if k == "sweep"]
    assert {p.stem for _, p in studies} >= {"noise_study", "beta_study"}
    noise = validate_file("sweep", ROOT / "recipes" / "studies" / "noise_study.yaml")
    rates = [float(v) for v in noise.grid["data.steps.6.flip_rate"]]
    assert len(rates) >= 4 and min(rates) == 0.0 and max(rates) == 0.4 and len(noise.grid["seed"]) >= 2
    loaded = points(noise, ROOT / "recipes")
    assert [s.name for s in loaded[0].recipe.data.steps][6] == "label_noise"
    assert {p.recipe.eval for p in loaded} == {"countdown"}
    plan = build_plan(noise, ROOT / "recipes", check_records=False)
    sft = [s for s in plan.stages.values() if s.name == "sft"]
    assert len(sft) == len(noise.grid["seed"])                  # one SFT per seed, shared by every flip rate
    assert all(len(s.points) == len(rates) for s in sft)
    assert len(plan.stages) == len(noise.grid["seed"]) * (1 + len(rates))
    text = format_plan(plan)
    assert "shared by points 0,2,4,6" in text and "stage trainings: 10 distinct for 16 point-stages" in text
    beta = build_plan(validate_file("sweep", ROOT / "recipes" / "studies" / "beta_study.yaml"), ROOT / "recipes",
                      check_records=False)
    assert sum(s.name == "sft" for s in beta.stages.values()) == 2 and len(beta.stages) == 8
    # the validation twin evaluates the same checkpoints on the split choices are made on
    validation = build_plan(validate_file("sweep", ROOT / "recipes" / "studies" / "beta_study_validation.yaml"),
                            ROOT / "recipes", check_records=False)
    assert set(validation.stages) == set(beta.stages) and validation.final == beta.final
    assert {p.recipe.eval for p in validation.points} == {"countdown_validation"}


def test_slurm_script_runs_one_point_per_array_task(project, workspace, capsys):
    path = _study(project, "recipe: tiny_noise\ngrid:\n  data.steps.0.flip_rate: [0.0, 0.2, 0.4]\n  seed: [0, 1]\n")
    assert main(["sweep", "slurm", str(path), "--out", str(project / "slurm"), "--gres", "gpu:1",
                 "--time", "02:00:00"]) == 0
    script = (project / "slurm" / "sweep-study.sbatch").read_text()
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --array=0-5" in lines and "#SBATCH --gres=gpu:1" in lines and "#SBATCH --time=02:00:00" in lines
    assert "The cache must be on a shared filesystem" in script
    assert lines[-1].endswith(f"-m harness sweep run {path.resolve()} --point \"$SLURM_ARRAY_TASK_ID\"")
    for name in ("HARNESS_CACHE", "HARNESS_RUNS", "HARNESS_LEADERBOARD"):
        value = str(workspace / {"HARNESS_CACHE": "cache", "HARNESS_RUNS": "runs",
                                 "HARNESS_LEADERBOARD": "leaderboard"}[name])
        assert f'export {name}="${{{name}:-{value}}}"' in lines
    assert (project / "slurm" / "logs").is_dir()
    assert "6 array tasks" in capsys.readouterr().out
    # a recipes folder given on the command line reaches every task, as an absolute path
    assert main(["sweep", "slurm", str(path), "--out", str(project / "slurm"), "--recipes-dir", "recipes"]) == 0
    last = (project / "slurm" / "sweep-study.sbatch").read_text().splitlines()[-1]
    assert last.endswith(f"run {path.resolve()} --recipes-dir {(project / 'recipes').resolve()} "
                         f"--point \"$SLURM_ARRAY_TASK_ID\"")


def _tagged_record(run_id, sweep, point, fp, accuracy, fmt, finished="2025-03-01T10:21:07Z"):
    from test_leaderboard import make_record

    from harness.evaluate.stats import summary

    record = make_record(run_id=run_id, countdown=accuracy, finished=finished)
    record["tasks"]["countdown"]["per_item"]["scores"]["format_ok"] = fmt
    record["tasks"]["countdown"]["metrics"]["format_ok"] = summary(fmt)
    record["model"]["fingerprint"] = fp
    record["sweeps"] = [{"id": sweep.sweep_id, "name": sweep.name, "point": point.index,
                         "coordinates": dict(point.coordinates)}]
    return record


def test_report_aggregates_seeds_tests_against_the_baseline_and_plots(project, workspace, capsys):
    from harness.stages import plan_stages
    from harness.sweep import stats

    path = _study(project, "recipe: tiny_noise\ngrid:\n  data.steps.0.flip_rate: [0.0, 0.2, 0.4]\n  seed: [0, 1]\n"
                           "metrics: [countdown]\ntradeoff: [countdown.format_ok, countdown.accuracy]\n")
    sweep = load_sweep(path)
    loaded = points(sweep, project / "recipes")
    n = 40
    ones = lambda k: [1.0] * k + [0.0] * (n - k)   # k of n items correct
    correct = {(0.0, 0): 30, (0.0, 1): 32, (0.2, 0): 30, (0.2, 1): 30, (0.4, 0): 8, (0.4, 1): 12}
    for p in loaded:
        key = (p.values["data.steps.0.flip_rate"], p.seed)
        fp = plan_stages(p.recipe)[-1].fingerprint
        leaderboard.add(_tagged_record(f"countdown-p{p.index}", sweep, p, fp, ones(correct[key]), ones(36 - 2 * p.index)))
    # a stale record of point 0 (another recipe version: different stage fingerprint) is ignored
    leaderboard.add(_tagged_record("countdown-stale", sweep, loaded[0], "0" * 16, ones(0), ones(0),
                                   finished="2026-01-01T00:00:00Z"))
    assert main(["sweep", "report", str(path)]) == 0
    out = capsys.readouterr().out
    folder = workspace / "leaderboard" / "sweeps" / sweep.sweep_id
    result = json.loads((folder / "report.json").read_text())
    rows = {r["setting"]["data.steps.0.flip_rate"]: r for r in result["metrics"]["countdown.accuracy"]["settings"]}
    assert rows[0.0]["mean"] == pytest.approx(31 / 40) and rows[0.0]["sd"] == pytest.approx(2 ** 0.5 / 40)
    assert rows[0.4]["mean"] == pytest.approx(0.25) and rows[0.4]["n_seeds"] == 2 and rows[0.4]["seeds"] == [0, 1]
    assert rows[0.0]["baseline"] and rows[0.0]["vs_baseline"] is None
    # flip 0.4 is far below the baseline, flip 0.2 is not; Holm over the two comparisons
    assert rows[0.4]["vs_baseline"]["difference"] == pytest.approx(0.25 - 31 / 40)
    ps = [rows[r]["vs_baseline"]["p_value"] for r in (0.2, 0.4)]
    assert [rows[r]["vs_baseline"]["p_holm"] for r in (0.2, 0.4)] == pytest.approx(stats.holm(ps))
    assert rows[0.4]["vs_baseline"]["p_holm"] < 0.05 and rows[0.2]["vs_baseline"]["p_holm"] > 0.05
    assert "hierarchical bootstrap" in out and "Holm (1979)" in out and "not run yet" not in out
    # the numbers behind the plots
    plot = json.loads((folder / "countdown.accuracy.json").read_text())
    (series,) = plot["series"]
    assert [(p["x"], p["mean"], p["n_seeds"]) for p in series["points"]] == [
        (0.0, pytest.approx(31 / 40), 2), (0.2, pytest.approx(0.75), 2), (0.4, pytest.approx(0.25), 2)]
    assert all(p["low"] <= p["mean"] <= p["high"] for p in series["points"])
    trade = json.loads((folder / "tradeoff.json").read_text())
    assert [t["x"] for t in trade["points"]] == pytest.approx([35 / 40, 31 / 40, 27 / 40])   # format_ok by setting
    assert [t["y"] for t in trade["points"]] == pytest.approx([31 / 40, 0.75, 0.25])
    for name in ("countdown.accuracy.png", "tradeoff.png", "report.txt"):
        assert (folder / name).stat().st_size > 0
    board = json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())
    assert board["sweeps"][sweep.sweep_id]["plots"] == ["countdown.accuracy.png", "tradeoff.png"]
    assert board["sweeps"][sweep.sweep_id]["folder"] == f"sweeps/{sweep.sweep_id}"


def test_a_study_named_as_a_recipe_says_it_is_a_sweep():
    from harness.recipe import find_recipe

    with pytest.raises(ConfigError, match=r"'noise_study' is a sweep \(recipes/studies/\), not a recipe; run it with "
                                          r"`harness sweep run noise_study`"):
        find_recipe("noise_study", ROOT / "recipes")
    assert find_recipe("noisy_dpo", ROOT / "recipes").name == "noisy_dpo.yaml"
