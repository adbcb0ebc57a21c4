"""The data runner: caching, drop accounting, outputs, manifest, card and curriculum order."""

from __future__ import annotations

import dataclasses
import json
from typing import ClassVar

import pytest
from conftest import write_recipe

from harness.data import pipeline
from harness.data.prepare import prepare
from harness.data.step import Step
from harness.errors import HarnessError
from harness.recipe import load

RECIPE = """
name: tiny
seed: 0
data:
  sources:
    - source: countdown
      kind: preference
      n: 120
      num_numbers: [2, 3]
      max_number: 12
      max_target: 30
  steps:
    - step: dedup
      key: prompt
    - step: pair_filter
    - step: label_noise
      flip_rate: 0.3
    - step: length_curriculum
      order: descending
      field: response
stages:
  - name: dpo
    backend: trl_dpo
"""


def computed(stats):
    return [s["label"] for s in stats if not s.get("cached")]


def test_second_run_recomputes_nothing_and_a_param_change_recomputes_from_that_step(tmp_path, tokenizer):
    path = write_recipe(tmp_path / "recipes", RECIPE, "tiny")
    recipe = load(path)
    first = pipeline.run(recipe.data, recipe.seed, "embedded:smollm2-135m-instruct", lambda: tokenizer)
    assert computed(first.stats) == ["source:countdown", "1:dedup", "2:pair_filter", "3:label_noise",
                                     "4:length_curriculum"]
    second = pipeline.run(recipe.data, recipe.seed, "embedded:smollm2-135m-instruct", lambda: tokenizer)
    assert computed(second.stats) == []
    assert second.examples == first.examples and second.fingerprint == first.fingerprint
    changed = load(path, ("data.steps.2.flip_rate=0.5",))
    third = pipeline.run(changed.data, changed.seed, "embedded:smollm2-135m-instruct", lambda: tokenizer)
    assert computed(third.stats) == ["3:label_noise", "4:length_curriculum"]
    assert third.fingerprint != first.fingerprint
    # a different tokenizer invalidates only the steps that count tokens
    fourth = pipeline.run(recipe.data, recipe.seed, "other/tokenizer", lambda: tokenizer)
    assert computed(fourth.stats) == ["4:length_curriculum"]


def test_cache_hit_does_not_call_the_step(tmp_path, tokenizer, monkeypatch):
    path = write_recipe(tmp_path / "recipes", RECIPE, "tiny")
    recipe = load(path)
    pipeline.run(recipe.data, recipe.seed, "t", lambda: tokenizer)
    from harness.data.steps.pair_filter import PairFilter

    def boom(self, examples, ctx):
        raise AssertionError("cached step was recomputed")

    monkeypatch.setattr(PairFilter, "apply", boom)
    result = pipeline.run(recipe.data, recipe.seed, "t", lambda: tokenizer)
    assert len(result.examples) > 50


def test_prepare_writes_dataset_manifest_rejects_and_card(tmp_path, workspace, tokenizer):
    import datasets

    recipe = load(write_recipe(tmp_path / "recipes", RECIPE, "tiny"))
    folder = prepare(recipe, recipe.stages[0], log=lambda _: None)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "preference" and folder.name == f"{manifest['data_fingerprint']}-preference"
    steps = {s["label"]: s for s in manifest["steps"]}
    assert steps["source:countdown"]["rows_out"] == 120
    dedup_drops = steps["1:dedup"]["dropped"].get("duplicate_prompt", 0)
    assert dedup_drops > 0  # small number ranges repeat problems
    assert manifest["rows"] == 120 - dedup_drops
    flipped = steps["3:label_noise"]["counters"]["flipped"]
    assert manifest["order"]["step"] == "length_curriculum" and manifest["order"]["order"] == "descending"
    assert manifest["sources"][0]["license"] == "apache-2.0"

    dataset = datasets.load_from_disk(str(folder / "dataset"))
    assert len(dataset) == manifest["rows"]
    assert {"id", "prompt", "chosen", "rejected", "label_flipped"} <= set(dataset.column_names)
    assert dataset[0]["chosen"][0]["role"] == "assistant"
    assert sum(dataset["label_flipped"]) == flipped
    # the curriculum order survives into the trainer-facing dataset
    lengths = [len(tokenizer(max(r["chosen"][0]["content"], r["rejected"][0]["content"], key=lambda t: len(tokenizer(t)["input_ids"])),
                             add_special_tokens=False)["input_ids"]) for r in dataset]
    assert lengths == sorted(lengths, reverse=True)

    rejects = [json.loads(l) for l in (folder / "rejects" / "dedup.jsonl").read_text().splitlines()]
    assert len(rejects) == dedup_drops and all(r["reason"] == "duplicate_prompt" for r in rejects)

    card = (workspace / "cards" / "tiny.md").read_text()
    assert card.startswith("---\npretty_name: tiny (preference)")
    assert "| 1:dedup | 120 |" in card and f"duplicate_prompt: {dedup_drops}" in card
    assert "### Chosen vs rejected" in card and f"flipped: {flipped}" in card
    png = (workspace / "cards" / "tiny.lengths.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_output_conversions_for_other_trainers(tmp_path, tokenizer):
    import datasets

    text = RECIPE.replace("backend: trl_dpo", "backend: trl_sft").replace("    - step: label_noise\n      flip_rate: 0.3\n", "")
    recipe = load(write_recipe(tmp_path / "recipes", text + "  - name: rl\n    backend: trl_rloo\n    rewards: [countdown]\n", "conv"))
    sft = datasets.load_from_disk(str(prepare(recipe, recipe.stages[0], log=lambda _: None) / "dataset"))
    assert sft.column_names[:3] == ["id", "source", "messages"]
    assert [m["role"] for m in sft[0]["messages"]] == ["user", "assistant"]
    rl = datasets.load_from_disk(str(prepare(recipe, recipe.stages[1], log=lambda _: None) / "dataset"))
    assert {"prompt", "numbers", "target"} <= set(rl.column_names)
    assert rl[0]["prompt"][-1]["role"] == "user"


def test_empty_after_filtering_is_a_clear_error(tmp_path, tokenizer):
    text = RECIPE.replace("    - step: pair_filter\n", "    - step: length_filter\n      max_tokens: 3\n")
    recipe = load(write_recipe(tmp_path / "recipes", text, "empty"))
    with pytest.raises(HarnessError, match=r"no examples left after step 2:length_filter \(too_long_total=\d+\)"):
        prepare(recipe, recipe.stages[0], log=lambda _: None)


@dataclasses.dataclass(frozen=True)
class SilentDrop(Step):
    """A faulty step that loses rows without a reason (used through `module:Attr`)."""

    name: ClassVar[str] = "silent_drop"

    def apply(self, examples, ctx):
        return list(examples)[1:]


def test_silent_drops_are_refused(tmp_path, tokenizer):
    text = RECIPE.replace("    - step: pair_filter\n", "    - step: test_pipeline:SilentDrop\n")
    recipe = load(write_recipe(tmp_path / "recipes", text, "silent"))
    with pytest.raises(HarnessError, match="returned .* rows but reported 0 drops"):
        prepare(recipe, recipe.stages[0], log=lambda _: None)


def test_reuse_of_a_finished_data_stage(tmp_path, tokenizer):
    recipe = load(write_recipe(tmp_path / "recipes", RECIPE, "tiny"))
    lines = []
    first = prepare(recipe, recipe.stages[0], log=lines.append)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    second_lines = []
    second = prepare(recipe, recipe.stages[0], log=second_lines.append)
    assert second == first and (second / "manifest.json").stat().st_mtime_ns == stamp
    assert all("[cached]" in l for l in second_lines[:-1]) and second_lines[-1].startswith("reusing")
