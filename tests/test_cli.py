"""The command line, the shipped recipes and the JSON Schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from harness.cli import main
from harness.recipe import discover, recipe_json_schema, validate_file
from harness.schema import plain

SHIPPED = discover([str(ROOT / "recipes"), str(ROOT / "evals")])


def test_every_shipped_recipe_and_suite_is_found():
    names = {p.stem for _, p in SHIPPED}
    assert {"filtered_dpo", "noisy_dpo", "countdown_sft", "countdown_rloo", "sft_dpo_rloo", "countdown"} <= names
    assert sum(kind == "recipe" and "seeds" in p.parts for kind, p in SHIPPED) >= 6
    assert not any("accelerate" in p.parts for _, p in SHIPPED)


@pytest.mark.parametrize("kind,path", SHIPPED, ids=[str(p.relative_to(ROOT)) for _, p in SHIPPED])
def test_shipped_file_validates(kind, path, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = validate_file(kind, path)
    assert config.name


def test_every_step_and_format_is_used_by_a_shipped_recipe():
    from harness.data.step import STEPS

    steps, formats = set(), set()
    for kind, path in SHIPPED:
        if kind != "recipe":
            continue
        recipe = validate_file(kind, path)
        for data in [recipe.data] + [s.data for s in recipe.stages]:
            if data is not None:
                steps |= {s.name for s in data.steps}
                formats |= {getattr(s, "format", None) for s in data.sources}
    assert set(STEPS.names()) <= steps
    assert {"hh_rlhf", "ultrafeedback_binarized", "olmo2_preference", "tulu3_sft", "smoltalk", "countdown_tasks",
            "gsm8k", "alpaca"} <= formats


def test_json_schema_is_in_sync():
    committed = json.loads((ROOT / "recipes" / "recipe.schema.json").read_text(encoding="utf-8"))
    assert committed == recipe_json_schema(), "run `make schema` to regenerate recipes/recipe.schema.json"
    steps = committed["$defs"]
    assert steps["step.label_noise"]["properties"]["flip_rate"] == {
        "type": "number", "minimum": 0.0, "maximum": 1.0,
        "description": "probability that a pair's labels are swapped"}
    assert steps["step.label_noise"]["required"] == ["step", "flip_rate"]


def test_help_and_validate_do_not_import_heavy_libraries():
    code = ("import sys; from harness.cli import main; rc = main(['validate', 'recipes', 'evals']);"
            "heavy = [m for m in ('torch', 'trl', 'datasets', 'transformers') if m in sys.modules];"
            "print('HEAVY', heavy); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout and "validated" in out.stdout
    help_text = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert help_text.returncode == 0 and "validate" in help_text.stdout and "plan" in help_text.stdout


def test_plan_shows_fingerprints_and_cache_hits(monkeypatch, capsys, tokenizer):
    monkeypatch.chdir(ROOT)
    args = ["filtered_dpo", "data.sources.0.n=60", "data.steps.5.n=20", "stages.0.data.sources.0.n=40"]
    assert main(["plan", *args]) == 0
    before = capsys.readouterr().out
    # 8 preference data operations + 3 for the SFT stage's own data
    assert before.count("to run") == 11 and "sft [trl_sft, sft]  from embedded:smollm2-135m-instruct" in before
    assert re.search(r"dpo \[trl_dpo, preference\]  from \S+/filtered_dpo/sft-[0-9a-f]{16}/final", before)
    assert main(["data", *args]) == 0
    capsys.readouterr()
    assert main(["plan", *args]) == 0
    after = capsys.readouterr().out
    assert after.count("cached") == 11 and "to run" not in after
    assert main(["plan", *args[:2], "data.steps.5.n=10", args[3]]) == 0
    changed = capsys.readouterr().out
    assert changed.count("cached") == 9 and changed.count("to run") == 2


def test_run_prepares_data_then_trains(monkeypatch, capsys, workspace, tiny_model):
    monkeypatch.chdir(ROOT)
    args = ["filtered_dpo", "data.sources.0.n=60", "data.steps.5.n=8", f"model={tiny_model}", "eval=",
            "stages.0.data.sources.0.n=20", "stages.0.args.max_steps=1", "stages.1.args.max_steps=1"]
    code = main(["run", *args])
    out = capsys.readouterr().out
    assert code == 0 and "wrote 8 preference examples" in out
    # one DPO step of batch 4 reaches half of the length-ordered data
    assert "dpo: warning: max_steps=1 reads 4 of 8 rows in curriculum order (the shortest 50% only)" in out
    final = next((workspace / "runs" / "filtered_dpo").glob("dpo-*/final"))
    info = json.loads((final / "checkpoint.json").read_text(encoding="utf-8"))
    assert info["steps"] == 1 and info["data_rows"] == 8 and info["data_order"]["step"] == "length_curriculum"
    assert main(["plan", *args]) == 0
    assert f"fingerprint {info['fingerprint']}  finished" in capsys.readouterr().out


def test_data_builds_every_stage_dataset_of_a_multi_stage_recipe(monkeypatch, capsys, workspace, tokenizer):
    monkeypatch.chdir(ROOT)
    args = ["sft_dpo_rloo", "stages.0.data.sources.0.n=40", "stages.1.data.sources.0.n=40",
            "stages.2.data.sources.0.n=40"]
    assert main(["data", *args]) == 0
    out = capsys.readouterr().out
    folders = sorted(p.name.rsplit("-", 1)[1] for p in (workspace / "runs" / "sft_dpo_rloo" / "data").iterdir())
    assert folders == ["preference", "prompt", "sft"]
    assert {p.name for p in (workspace / "cards").glob("*.md")} == {
        "sft_dpo_rloo.sft.md", "sft_dpo_rloo.dpo.md", "sft_dpo_rloo.rloo.md"}
    assert out.count("wrote ") == 3


@pytest.mark.parametrize("kind,path", [s for s in SHIPPED if s[0] == "recipe"],
                         ids=[str(p.relative_to(ROOT)) for k, p in SHIPPED if k == "recipe"])
def test_shipped_stage_args_build_the_real_trl_config(kind, path, monkeypatch, tmp_path):
    """Every stage's args construct its TRL config class (GPU-only flags checked with use_cpu)."""
    import trl

    from harness.train import BACKENDS

    monkeypatch.chdir(ROOT)
    recipe = validate_file(kind, path)
    for stage in recipe.stages:
        config_class = getattr(trl, BACKENDS[stage.backend].config_class)
        args = plain(stage.args)  # what the backend passes: frozen tuples back to lists
        config = config_class(output_dir=str(tmp_path), use_cpu=True, **args)
        assert all(getattr(config, k) == v for k, v in args.items())
