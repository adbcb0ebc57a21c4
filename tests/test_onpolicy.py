"""Data built by a model: on-policy generation, scoring, caching keyed by the model's fingerprint,
stage data prepared after the stage it samples from, and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_recipe

from harness import checkpoint
from harness.errors import ConfigError, HarnessError
from harness.recipe import load
from harness.run import run

GENERATE = """
name: gen
seed: 0
model: {tiny}
data:
  sources: [{{source: countdown, kind: prompt, n: 6, num_numbers: [2], max_number: 20, max_target: 40}}]
  steps:
    - {{step: generate, model: base, n: 3, temperature: 1.0, max_new_tokens: 6, batch_size: 4}}
    - {{step: score, scorer: {{scorer: verifier, task: countdown}}}}
  format: prompt
"""


def _data(recipe):
    from harness.data.prepare import prepare

    folder = prepare(recipe, log=lambda _: None)
    import json

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return folder, {s["label"]: s for s in manifest["steps"]}


def _rows(folder):
    import datasets

    return datasets.load_from_disk(str(folder / "dataset"))


def test_generation_is_cached_by_model_prompts_sampling_and_seed(tmp_path, tiny_model, monkeypatch):
    path = write_recipe(tmp_path / "recipes", GENERATE.format(tiny=tiny_model), "gen")
    folder, steps = _data(load(path))
    generate = steps["1:generate"]
    assert generate["counters"]["candidates"] == 18 and generate["counters"]["generated_tokens"] > 0
    rows = _rows(folder)
    assert len(rows) == 6 and all(len(r["candidates"]) == 3 for r in rows)
    # every candidate is scored by the Countdown verifier: a random model never answers correctly
    assert all(c["score"] == 0.0 and c["correct"] is False for r in rows for c in r["candidates"])
    assert steps["2:score"]["counters"]["wrong"] == 18
    # the card reports the generation's throughput
    card = (folder / "card.md").read_text(encoding="utf-8")
    counters = generate["counters"]
    assert f"| 1:generate | 6 | 18 | {counters['generated_tokens']} |" in card
    rate = counters["generated_tokens"] / (counters["generation_ms"] / 1000)
    assert counters["generated_tokens_per_s"] > 0 and abs(counters["generated_tokens_per_s"] - rate) <= max(2, rate / 100)

    # a rerun samples nothing, even with the prepared dataset gone: the step cache has the samples
    import shutil

    from harness import paths
    from harness.evaluate import generate as generation

    shutil.rmtree(paths.runs_root())
    with monkeypatch.context() as patch:
        patch.setattr(generation.Generator, "generate", lambda *a, **k: pytest.fail("sampled again"))
        again, again_steps = _data(load(path))
    assert again == folder and again_steps["1:generate"]["cached"]
    assert [r["candidates"] for r in _rows(again)] == [r["candidates"] for r in rows]

    # each of sampling parameters, seed and model changes the generation's key
    keys = {steps["1:generate"]["fingerprint"]}
    for override in ("data.steps.0.temperature=0.7", "data.steps.0.seed=5", "data.steps.0.n=2"):
        _, changed = _data(load(path, (override,)))
        assert changed["source:countdown"]["cached"]          # the prompts are reused
        keys.add(changed["1:generate"]["fingerprint"])
    assert len(keys) == 4


def test_sampled_candidates_differ_and_are_seeded(tmp_path, tiny_model):
    path = write_recipe(tmp_path / "recipes", GENERATE.format(tiny=tiny_model), "gen")
    import shutil

    from harness import paths

    rows = _rows(_data(load(path))[0])
    texts = [[c["text"] for c in r["candidates"]] for r in rows]
    assert sum(len(set(t)) > 1 for t in texts) >= 5     # temperature 1.0 on a random model: distinct samples

    shutil.rmtree(paths.cache_root())
    shutil.rmtree(paths.runs_root())
    again = _rows(_data(load(path))[0])
    assert [[c["text"] for c in r["candidates"]] for r in again] == texts   # same seed, same samples


def test_metadata_a_scorer_needs_is_checked_before_generation(tmp_path, tiny_model, monkeypatch):
    from harness.evaluate import generate as generation

    monkeypatch.setattr(generation.Generator, "generate", lambda *a, **k: pytest.fail("generated first"))
    text = GENERATE.format(tiny=tiny_model).replace("task: countdown", "task: gsm8k")
    with pytest.raises(HarnessError, match=r"step 2:score needs metadata answer, which source 'countdown' does not give"):
        _data(load(write_recipe(tmp_path / "recipes", text, "gen")))


@pytest.mark.parametrize("steps, message", [
    ("[{step: score, scorer: {scorer: verifier, task: countdown}}]",
     "data.steps.0: step 'score' needs candidates from an earlier step; add a `generate` step before it"),
    ("[{step: generate, n: 4, temperature: 0}]", "data.steps.0.temperature: greedy decoding gives 4 identical"),
    ("[{step: generate, model: dpo}]", "data.steps.0: 'dpo' is not an earlier stage than 'dpo'"),
])
def test_bad_built_data_fails_at_validation(tmp_path, steps, message):
    text = f"""
name: bad
data:
  sources: [{{source: countdown, kind: prompt, n: 4}}]
  steps: {steps}
stages:
  - {{name: dpo, backend: trl_rloo, rewards: [countdown]}}
"""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(write_recipe(tmp_path / "recipes", text, "bad"))


def test_a_generation_model_that_cannot_load_is_one_line(tmp_path, tiny_model):
    text = GENERATE.format(tiny=tiny_model).replace("model: base", f"model: {tmp_path / 'no-such-model'}")
    with pytest.raises(HarnessError, match="no-such-model"):
        _data(load(write_recipe(tmp_path / "recipes", text, "gen")))


def test_countdown_splits_are_disjoint():
    from harness.data.sources.countdown import Countdown
    from harness.data.step import StepContext

    problems = {}
    for split in ("train", "validation", "test"):
        source = Countdown(kind="prompt", n=400, num_numbers=(2, 3), max_number=30, split=split)
        problems[split] = {(tuple(sorted(p["metadata"]["numbers"])), p["metadata"]["target"])
                           for p in source.load(StepContext(label=split, seed=0))}
    assert all(len(v) > 150 for v in problems.values())   # small problems repeat within a split
    assert not problems["train"] & problems["validation"]
    assert not problems["train"] & problems["test"]
    assert not problems["validation"] & problems["test"]


CHAIN = """
name: onpolicy
seed: 0
model: {tiny}
stages:
  - name: rm
    backend: trl_reward
    data:
      sources: [{{source: countdown, kind: preference, n: 16, num_numbers: [2], max_number: 20, max_target: 40}}]
    args: {{max_steps: 1, per_device_train_batch_size: 2, max_length: 256}}
  - name: sft
    backend: trl_sft
    init_from: null
    data:
      sources: [{{source: countdown, kind: sft, n: 16, num_numbers: [2], max_number: 20, max_target: 40}}]
    args: {{max_steps: 1, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 256}}
  - name: dpo
    backend: trl_dpo
    init_from: sft
    data:
      sources: [{{source: countdown, kind: prompt, n: 8, num_numbers: [2], max_number: 20, max_target: 40}}]
      steps:
        - {{step: generate, model: sft, n: 2, temperature: 1.0, max_new_tokens: 6}}
        - {{step: score, scorer: {{scorer: reward_model, model: rm}}}}
        - {{step: build_pairs, rule: best_vs_worst}}
    args: {{max_steps: 1, per_device_train_batch_size: 2, max_length: 256}}
"""


def test_onpolicy_data_follows_the_stage_it_samples_from(tmp_path, tiny_model, monkeypatch):
    import json

    from harness.plan import show

    path = write_recipe(tmp_path / "recipes", CHAIN.format(tiny=tiny_model), "onpolicy")
    shown = []
    show(load(path), out=shown.append)
    text = "\n".join(shown)
    assert "built once stage sft, rm has trained" in text and "(built from sft, rm)" in text
    assert "3:generate" not in text and "1:generate" in text and "model sft (stage:" in text

    lines = []
    finals = run(load(path), log=lines.append)
    info = checkpoint.read(finals["dpo"])
    assert any(l.startswith("dpo: building its data from sft") for l in lines)
    # the pairs come from the sft checkpoint's samples, ranked by the rm stage
    manifest = json.loads((Path(info["data_dir"]) / "manifest.json").read_text(encoding="utf-8"))
    steps = {s["label"]: s for s in manifest["steps"]}
    assert steps["1:generate"]["counters"]["candidates"] == 16
    assert steps["2:score"]["counters"]["scored"] == 16
    assert steps["3:build_pairs"]["rows_out"] + sum(steps["3:build_pairs"]["dropped"].values()) == 8

    # retraining sft regenerates the dpo data (and retrains dpo); rm and the prompts are reused
    changed = load(path, ("stages.1.args.learning_rate=5.0e-4",))
    lines = []
    again = run(changed, log=lines.append)
    assert again["rm"] == finals["rm"] and again["sft"] != finals["sft"] and again["dpo"] != finals["dpo"]
    new_info = checkpoint.read(again["dpo"])
    assert new_info["data_fingerprint"] != info["data_fingerprint"]
    summary = [l for l in lines if l.startswith(("source:countdown", "1:generate"))]
    assert any("[cached]" in l for l in summary if l.startswith("source:countdown"))
    assert not any("[cached]" in l for l in summary if l.startswith("1:generate"))


@pytest.mark.parametrize("model, message", [
    ("{tmp}/no-such-rm", "data step 2:score loads model '{tmp}/no-such-rm', which is not a model folder"),
    ("someone/reward-model-not-cached", "is not in the local hub cache and the hub is offline"),
])
def test_a_scorer_model_that_is_not_there_fails_before_any_work(tmp_path, tiny_model, monkeypatch, model, message):
    from harness.evaluate import generate as generation

    monkeypatch.setattr(generation.Generator, "generate", lambda *a, **k: pytest.fail("generated first"))
    text = CHAIN.format(tiny=tiny_model).replace("model: rm}", f"model: {model.format(tmp=tmp_path)}}}")
    import harness.train.trainer_setup as setup

    monkeypatch.setattr(setup, "fit", lambda *a, **k: pytest.fail("trained first"))
    with pytest.raises(HarnessError, match=message.format(tmp=tmp_path).replace("(", r"\(")):
        run(load(write_recipe(tmp_path / "recipes", text, "onpolicy")), log=lambda _: None)
