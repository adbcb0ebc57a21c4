"""The recipe language: loading, extends, overrides, frozen configs and one-line errors."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from conftest import ROOT, write_recipe

from harness.cli import main
from harness.errors import ConfigError
from harness.recipe import load

BASE = """
name: base
seed: 1
data:
  sources:
    - source: countdown
      kind: preference
      n: 50
  steps:
    - step: dedup
      key: prompt
    - step: sample
      n: 20
    - step: label_noise
      flip_rate: 0.1
stages:
  - name: dpo
    backend: trl_dpo
    args: {beta: 0.1}
"""


@pytest.fixture
def recipes(tmp_path):
    folder = tmp_path / "recipes"
    write_recipe(folder, BASE, "base")
    return folder


def test_load_builds_frozen_typed_config(recipes):
    recipe = load(recipes / "base.yaml")
    assert recipe.seed == 1 and recipe.model.name_or_path == "embedded:smollm2-135m-instruct"
    assert [s.name for s in recipe.data.steps] == ["dedup", "sample", "label_noise"]
    assert recipe.data.steps[2].flip_rate == 0.1
    assert recipe.stages[0].args["beta"] == 0.1
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.seed = 2
    with pytest.raises(TypeError):
        recipe.stages[0].args["beta"] = 0.5  # read-only mapping


def test_extends_deep_merges_and_replaces_lists(recipes):
    write_recipe(recipes, """
        extends: base
        seed: 7
        model: Qwen/Qwen2.5-0.5B
        data:
          steps:
            - step: dedup
        """.replace("        ", ""), "child")
    recipe = load(recipes / "child.yaml")
    assert recipe.name == "child" and recipe.seed == 7
    assert recipe.model.name_or_path == "Qwen/Qwen2.5-0.5B"
    assert recipe.data.sources[0].n == 50  # inherited
    assert [s.name for s in recipe.data.steps] == ["dedup"]  # replaced
    assert recipe.stages[0].backend == "trl_dpo"


def test_dotted_overrides(recipes):
    recipe = load(recipes / "base.yaml", ("data.steps.2.flip_rate=0.2", "seed=3", "stages.0.args.beta=0.5",
                                          "data.sources.0.num_numbers=[2]"))
    assert recipe.data.steps[2].flip_rate == 0.2 and recipe.seed == 3
    assert recipe.stages[0].args["beta"] == 0.5 and recipe.data.sources[0].num_numbers == (2,)


def test_recipes_by_name(recipes):
    assert load("base", recipes_dir=recipes).name == "base"
    with pytest.raises(ConfigError, match="no recipe named 'bsae'.*did you mean 'base'"):
        load("bsae", recipes_dir=recipes)


MALFORMED = {
    "yaml_syntax": ("name: x\ndata:\n  sources: [\n", "invalid YAML"),
    "tabs": ("name: x\ndata:\n\tsources: []\n", "invalid YAML"),
    "not_mapping": ("- a\n- b\n", "must be a mapping"),
    "empty": ("", "empty recipe file"),
    "unknown_top_key": (BASE + "stagez: []\n", "stagez: unknown key 'stagez' (did you mean 'stages'?)"),
    "unknown_step": (BASE.replace("step: sample", "step: sampel"), "data.steps.1.step: unknown step 'sampel' (did you mean 'sample'?)"),
    "unknown_source": (BASE.replace("source: countdown", "source: countdwn"), "data.sources.0.source: unknown source 'countdwn' (did you mean 'countdown'?)"),
    "unknown_step_key": (BASE.replace("n: 20", "count: 20"), "data.steps.1.count: unknown key 'count' for step 'sample'"),
    "near_miss_key": (BASE.replace("flip_rate: 0.1", "flip_rte: 0.1"), "did you mean 'flip_rate'?"),
    "wrong_type": (BASE.replace("seed: 1", "seed: abc"), "seed: expected an integer, got 'abc' (str)"),
    "bool_for_int": (BASE.replace("n: 50", "n: true"), "data.sources.0.n: expected an integer"),
    "out_of_range": (BASE.replace("flip_rate: 0.1", "flip_rate: 1.5"), "data.steps.2.flip_rate: expected a value >= 0.0 and <= 1.0, got 1.5"),
    "nan": (BASE.replace("flip_rate: 0.1", "flip_rate: .nan"), "data.steps.2.flip_rate: expected a finite number"),
    "negative_seed": (BASE.replace("seed: 1", "seed: -1"), "seed: expected a value >= 0"),
    "bad_literal": (BASE.replace("key: prompt", "key: prompts"), "data.steps.0.key: expected one of 'prompt', 'example', 'triple', got 'prompts' (did you mean 'prompt'?)"),
    "missing_sources": ("name: x\ndata:\n  steps: []\n", "data: missing required key 'sources'"),
    "no_data": ("name: x\nseed: 1\n", "data: missing"),
    "sources_not_list": (BASE.replace("  sources:\n    - source: countdown", "  sources:\n    source: countdown").replace("      kind: preference\n      n: 50", "    kind: preference"), "data.sources: expected a list"),
    "step_is_number": (BASE.replace("    - step: dedup\n      key: prompt", "    - 5"), "data.steps.0: expected a mapping with a 'step' key"),
    "bad_backend": (BASE.replace("trl_dpo", "trl_dpoo"), "stages.0.backend: unknown backend 'trl_dpoo' (did you mean 'trl_dpo'?)"),
    "format_mismatch": (BASE.replace("  steps:", "  format: prompt\n  steps:"), "backend 'trl_dpo' needs preference data but data.format is prompt"),
    "duplicate_key": (BASE + "seed: 2\n", "duplicate key 'seed'"),
    "missing_parent": ("extends: nowhere\n", "extends: no recipe 'nowhere' to extend"),
    "model_type": (BASE + "model: 5\n", "model: expected a mapping or a string, got 5 (int)"),
    "min_gt_max": (BASE.replace("    - step: sample\n      n: 20", "    - step: length_filter\n      min_tokens: 50\n      max_tokens: 10"), "data.steps.1.max_tokens: must be >= min_tokens (50)"),
    "unknown_format": (BASE.replace("    - source: countdown\n      kind: preference\n      n: 50", "    - source: local\n      path: x.jsonl\n      format: hh_rlfh"), "data.sources.0.format: unknown format 'hh_rlfh' (did you mean 'hh_rlhf'?)"),
    "format_kind": (BASE.replace("    - source: countdown\n      kind: preference\n      n: 50", "    - source: local\n      path: x.jsonl\n      format: gsm8k\n      kind: preference"), "data.sources.0.kind: format 'gsm8k' gives prompt, sft, not preference"),
    "bad_file_type": (BASE.replace("    - source: countdown\n      kind: preference\n      n: 50", "    - source: local\n      path: x.txt"), "data.sources.0.path: unsupported file type"),
    "mixture_both": (BASE.replace("    - step: sample\n      n: 20", "    - step: mixture\n      weights: {a: 1}\n      counts: {a: 1}"), "data.steps.1.weights: give exactly one of weights or counts"),
    "init_from": (BASE.replace("args: {beta: 0.1}", "args: {beta: 0.1}\n    init_from: sft"), "stages.0.init_from: 'sft' is not an earlier stage"),
    "stage_missing_name": (BASE.replace("  - name: dpo\n    backend", "  - backend"), "stages.0: missing required key 'name'"),
    "unknown_suite": (BASE + "eval: countdwn\n", "eval: no eval suite 'countdwn'"),
    "steps_null": (BASE.replace("  steps:\n    - step: dedup\n      key: prompt\n    - step: sample\n      n: 20\n    - step: label_noise\n      flip_rate: 0.1\n", "  steps:\n"), "data.steps: expected a list, got null"),
    "args_not_mapping": (BASE.replace("args: {beta: 0.1}", "args: [1, 2]"), "stages.0.args: expected a mapping"),
    "duplicate_labels": (BASE.replace("      n: 50", "      n: 50\n    - source: countdown"), "two sources are labelled 'countdown'"),
    "nested_key_not_string": (BASE + "? [a, b]\n: 1\n", "keys must be"),
    "trl_arg_typo": (BASE.replace("args: {beta: 0.1}", "args: {beta: 0.1, learning_rat: 1.0e-5}"), "stages.0.args.learning_rat: DPOConfig has no argument 'learning_rat' (did you mean 'learning_rate'?)"),
    "trl_arg_type": (BASE.replace("args: {beta: 0.1}", "args: {beta: 0.1, max_steps: ten}"), "stages.0.args.max_steps: DPOConfig.max_steps: expected int, got 'ten' (str)"),
    "trl_arg_bool": (BASE.replace("args: {beta: 0.1}", "args: {beta: 0.1, bf16: 'yes'}"), "stages.0.args.bf16: DPOConfig.bf16: expected bool | None, got 'yes' (str)"),
    "reserved_arg": (BASE.replace("args: {beta: 0.1}", "args: {output_dir: /tmp/x}"), "stages.0.args.output_dir: 'output_dir' is set by the harness"),
    "lora_typo": (BASE + "model: {name_or_path: x, lora: {rank: 8}}\n", "model.lora.rank: peft.LoraConfig has no field 'rank'"),
    "qlora_without_lora": (BASE + "model: {name_or_path: x, qlora: true}\n", "model.qlora: QLoRA trains LoRA adapters"),
    "rloo_without_rewards": (BASE.replace("backend: trl_dpo", "backend: trl_rloo").replace("kind: preference", "kind: prompt"), "stages.0.rewards: trl_rloo needs at least one reward"),
    "rewards_on_dpo": (BASE.replace("args: {beta: 0.1}", "args: {beta: 0.1}\n    rewards: [countdown]"), "stages.0.rewards: only trl_rloo stages take rewards"),
    "unknown_reward": (BASE.replace("backend: trl_dpo", "backend: trl_rloo").replace("kind: preference", "kind: prompt").replace("args: {beta: 0.1}", "args: {}\n    rewards: [countdwn]"), "stages.0.rewards.0.reward: unknown reward 'countdwn' (did you mean 'countdown'?)"),
    "reward_model_later_stage": (BASE.replace("backend: trl_dpo", "backend: trl_rloo").replace("kind: preference", "kind: prompt").replace("args: {beta: 0.1}", "args: {}\n    rewards: [{reward: reward_model, model: dpo}]"), "stages.0.rewards.0.model: 'dpo' is not an earlier stage"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_recipe_gives_one_line_exit_2(case, tmp_path, capsys):
    text, expected = MALFORMED[case]
    path = write_recipe(tmp_path / "recipes", text, case)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and expected in err, err
    assert "Traceback" not in err


def test_errors_carry_line_numbers(tmp_path):
    path = write_recipe(tmp_path / "recipes", BASE.replace("flip_rate: 0.1", "flip_rate: 2"), "r")
    line = next(i for i, l in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "flip_rate" in l)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}:{line}: data.steps.2.flip_rate:")


def test_error_in_parent_names_the_parent_file(recipes):
    write_recipe(recipes, BASE.replace("n: 20", "n: -4"), "bad_parent")
    write_recipe(recipes, "extends: bad_parent\nseed: 2\n", "kid")
    with pytest.raises(ConfigError) as err:
        load(recipes / "kid.yaml")
    assert "bad_parent.yaml" in str(err.value) and "data.steps.1.n" in str(err.value)


def test_circular_extends(recipes):
    write_recipe(recipes, "extends: b\n", "a")
    write_recipe(recipes, "extends: a\n", "b")
    with pytest.raises(ConfigError, match="circular extends"):
        load(recipes / "a.yaml")


@pytest.mark.parametrize("override,expected", [
    ("data.steps.9.flip_rate=0.2", "index '9' is out of range (list of 3)"),
    ("seed", "must look like key.path=value"),
    ("data.steps.2.flip_rat=0.2", "unknown key 'flip_rat'"),
    ("seed=x", "seed: expected an integer"),
])
def test_bad_overrides(recipes, override, expected, capsys):
    code = main(["plan", str(recipes / "base.yaml"), override])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_cli_error_has_no_traceback_unless_debug(tmp_path):
    path = write_recipe(tmp_path / "recipes", BASE.replace("step: sample", "step: sampel"), "r")
    run = lambda *a: subprocess.run([sys.executable, "-m", "harness", *a], capture_output=True, text=True, cwd=ROOT)
    plain = run("validate", str(path))
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.count("\n") == 1 and "did you mean 'sample'" in plain.stderr
    debug = run("plan", str(path), "--debug")
    assert "Traceback" in debug.stderr


def test_suites_validate(tmp_path, capsys):
    suites = tmp_path / "evals"
    write_recipe(suites, "name: s\ntasks:\n  - task: countdown\n    runner: countdown\n    limit: 0\n", "s")
    assert main(["validate", str(suites)]) == 2
    err = capsys.readouterr().err
    assert "s.yaml:5: tasks.0.limit: expected a value >= 1, got 0" in err
    write_recipe(suites, "name: s\ntasks:\n  - {task: countdown, runner: countdown}\n  - {task: countdown, runner: countdown}\n", "s")
    assert main(["validate", str(suites)]) == 2
    assert "tasks.1.task: task 'countdown' appears twice" in capsys.readouterr().err


def test_exponent_floats_parse_as_numbers(recipes):
    # PyYAML reads `5e-6` as a string; recipes are full of learning rates written that way
    recipe = load(recipes / "base.yaml", ("stages.0.args.learning_rate=2e-5",))
    assert recipe.stages[0].args["learning_rate"] == 2e-5
    write_recipe(recipes, BASE.replace("args: {beta: 0.1}", "args: {beta: 1e-1}"), "exp")
    assert load(recipes / "exp.yaml").stages[0].args["beta"] == 0.1


# ------------------------------------------------------------ YAML 1.2 booleans

@pytest.mark.parametrize("text,value", [
    ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"), ("n", "n"), ("NO", "NO"), ("Off", "Off"),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False),
    ("tRUE", "tRUE"), ("1e-5", 1e-5), ("0", 0), ("null", None),
])
def test_only_true_and_false_are_booleans_in_files_and_overrides(text, value):
    from harness.yaml_tree import load_text, parse_value

    for parsed in (parse_value(text), load_text(f"key: {text}\n", "f.yaml")[0]["key"]):
        assert parsed == value and type(parsed) is type(value)


def test_save_strategy_no_validates_into_trls_config(recipes, tmp_path, capsys):
    """TRL spells "never save" `save_strategy: no`; YAML 1.1 would turn it into False."""
    import trl
    from transformers.trainer_utils import SaveStrategy

    write_recipe(recipes, BASE.replace("backend: trl_dpo\n    args: {beta: 0.1}",
                                       "backend: trl_sft\n    args: {save_strategy: no, report_to: none}")
                 .replace("kind: preference", "kind: sft").replace("    - step: label_noise\n      flip_rate: 0.1\n", ""),
                 "no_saves")
    for recipe in (load(recipes / "no_saves.yaml"), load(recipes / "base.yaml", ("stages.0.backend=trl_sft",
                   "stages.0.args={}", "stages.0.args.save_strategy=no", "data.sources.0.kind=sft", "data.steps=[]"))):
        args = dict(recipe.stages[0].args)
        assert args["save_strategy"] == "no"
        config = trl.SFTConfig(output_dir=str(tmp_path), use_cpu=True, **args)
        assert config.save_strategy == SaveStrategy.NO
    assert main(["validate", str(recipes / "no_saves.yaml")]) == 0
    # and a boolean key now needs a real boolean, in a file or an override
    capsys.readouterr()
    assert main(["plan", str(recipes / "base.yaml"), "data.write_rejects=off"]) == 2
    err = capsys.readouterr().err
    assert "data.write_rejects: expected true or false, got 'off'" in err and len(err.strip().splitlines()) == 1
    assert load(recipes / "base.yaml", ("data.write_rejects=false",)).data.write_rejects is False


# ------------------------------------------------------------ extends: from a user's own project

def test_a_recipe_outside_recipes_extends_a_shipped_one(tmp_path, monkeypatch):
    project = tmp_path / "my_project"
    mine = write_recipe(project, "extends: filtered_dpo\nseed: 5\n", "my_dpo")
    monkeypatch.chdir(tmp_path)  # neither recipes/ nor evals/ here: both come from the harness
    recipe = load(mine)
    shipped = load(ROOT / "recipes" / "filtered_dpo.yaml")
    assert recipe.name == "my_dpo" and recipe.seed == 5 and recipe.eval == "countdown"
    assert recipe.stages == shipped.stages and recipe.data == shipped.data
    assert main(["validate", str(mine)]) == 0
    # a recipe of that name beside the file is found first
    write_recipe(project, BASE, "filtered_dpo")
    assert load(mine).stages[0].backend == "trl_dpo" and load(mine).data.sources[0].n == 50


def test_extends_that_finds_nothing_says_where_it_looked(tmp_path, capsys):
    mine = write_recipe(tmp_path / "my_project", "extends: filterd_dpo\n", "my_dpo")
    assert main(["validate", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (f"extends: no recipe 'filterd_dpo' to extend: looked beside it in {mine.parent}/, then in "
            f"{ROOT / 'recipes'}/ (recursively) (did you mean 'filtered_dpo'?)") in err


def test_a_shipped_recipe_is_found_by_name_from_another_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a user's project: no recipes/ here
    assert load("filtered_dpo").name == "filtered_dpo"
    write_recipe(tmp_path / "recipes", BASE.replace("name: base", "name: filtered_dpo"), "filtered_dpo")
    assert load("filtered_dpo").data.sources[0].n == 50  # the project's own recipes/ comes first
    assert main(["plan", "filterd_dpo"]) == 2
    err = capsys.readouterr().err
    assert f"no recipe named 'filterd_dpo' under recipes/ or {ROOT / 'recipes'}/ (did you mean 'filtered_dpo'?)" in err
