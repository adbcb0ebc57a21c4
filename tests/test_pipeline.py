"""The data runner: caching, drop accounting, outputs, manifest, card and curriculum order."""

from __future__ import annotations

import dataclasses
import json
import shutil
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
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
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

    rejects = [json.loads(l) for l in (folder / "rejects" / "dedup.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rejects) == dedup_drops and all(r["reason"] == "duplicate_prompt" for r in rejects)

    card = (workspace / "cards" / "tiny.md").read_text(encoding="utf-8")
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


# ------------------------------------------------------------ cache integrity and invalidation

def test_a_corrupt_cache_entry_is_removed_and_recomputed_with_identical_output(tmp_path, workspace, tokenizer,
                                                                               capsys):
    """A cut-off rows.parquet (source) and index.npy (step) warn once each, are recomputed, and the
    rewritten dataset is identical; the run after that is all cache hits again."""
    import datasets

    from harness.cli import main
    from harness.data import cache

    path = str(write_recipe(tmp_path / "recipes", RECIPE, "tiny"))
    assert main(["data", path]) == 0
    data_dir = workspace / "runs" / "tiny" / "data"
    (folder,) = data_dir.iterdir()
    first = datasets.load_from_disk(str(folder / "dataset")).to_list()
    shutil.rmtree(data_dir)  # so the rerun writes the dataset again from the rows the cache gives back
    recipe = load(path)
    nodes = pipeline.plan(recipe.data, recipe.seed, "embedded:smollm2-135m-instruct")
    source, noise = (cache.entry_dir(workspace / "cache", n.fingerprint) for n in (nodes[0], nodes[3]))
    cut = {}
    for file in (source / cache.ROWS, noise / cache.INDEX):
        cut[file.name] = (file.stat().st_size // 2, file.stat().st_size)
        with open(file, "r+b") as f:
            f.truncate(cut[file.name][0])
    capsys.readouterr()

    assert main(["data", path]) == 0
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if line.startswith("warning")] == [
        f"warning: cache entry {entry} is corrupt ({name} is {cut[name][0]} bytes, {cut[name][1]} were written); "
        f"removed it, the step runs again" for entry, name in ((source, cache.ROWS), (noise, cache.INDEX))]
    labels = {n.label for n in nodes}
    recomputed = [line.split()[0] for line in out.splitlines()
                  if line.split() and line.split()[0] in labels and "[cached]" not in line]
    assert recomputed == ["source:countdown", "3:label_noise"]
    (folder,) = data_dir.iterdir()
    assert datasets.load_from_disk(str(folder / "dataset")).to_list() == first

    assert main(["data", path]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err and out.count("[cached]") == 5


def test_entries_without_checksums_are_checked_by_reading_them(tmp_path, tokenizer, capsys):
    """An entry written before checksums were kept is used while its files open, and recomputed once one does not."""
    from harness.data import cache

    recipe = load(write_recipe(tmp_path / "recipes", RECIPE, "tiny"))
    run = lambda: pipeline.run(recipe.data, recipe.seed, "t", lambda: tokenizer, cache_dir=tmp_path / "c")
    first = run()
    entries = [cache.entry_dir(tmp_path / "c", n.fingerprint) for n in first.nodes]
    for entry in entries:
        (entry / cache.CHECKSUMS).unlink()
    assert computed(run().stats) == [] and "warning" not in capsys.readouterr().err
    rows = entries[0] / cache.ROWS
    rows.write_bytes(rows.read_bytes()[:-20])  # the parquet footer is gone
    again = run()
    assert computed(again.stats) == ["source:countdown"] and again.examples == first.examples
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cache entry {entries[0]} is corrupt (unreadable (" in err
    assert (entries[0] / cache.CHECKSUMS).is_file()  # rewritten with checksums


def test_loading_an_entry_that_broke_after_its_check_removes_it_and_says_to_rerun(tmp_path, tokenizer, capsys):
    from harness.data import cache

    recipe = load(write_recipe(tmp_path / "recipes", RECIPE, "tiny"))
    result = pipeline.run(recipe.data, recipe.seed, "t", lambda: tokenizer, cache_dir=tmp_path / "c")
    entry = cache.entry_dir(tmp_path / "c", result.nodes[0].fingerprint)
    (entry / cache.ROWS).write_bytes(b"PAR1")
    with pytest.raises(HarnessError, match=r"cache entry .* could not be read \(.*\); it has been removed: run the "
                                           r"same command again"):
        cache.load(tmp_path / "c", result.nodes[0].fingerprint, None)
    assert not entry.exists() and "is corrupt" in capsys.readouterr().err


LOCAL_RECIPE = """
name: local_pairs
data:
  sources: [{source: local, path: PATH, format: trl, kind: preference}]
  steps: [{step: dedup, key: prompt}]
"""


def test_editing_a_local_source_file_invalidates_its_cache_entry(tmp_path, tokenizer):
    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(4)]
    write = lambda rs: data.write_text("".join(json.dumps(r) + "\n" for r in rs), encoding="utf-8")
    write(rows)
    recipe = load(write_recipe(tmp_path / "recipes", LOCAL_RECIPE.replace("PATH", str(data)), "local_pairs"))
    run = lambda: pipeline.run(recipe.data, recipe.seed, "t", lambda: tokenizer, cache_dir=tmp_path / "c")
    first = run()
    assert computed(first.stats) == ["source:local", "1:dedup"] and len(first.examples) == 4
    write(rows)  # same bytes, new modification time: still a cache hit
    assert computed(run().stats) == []
    rows[2]["chosen"] = "better 2"
    write(rows + [rows[0]])  # one row edited, a duplicate appended
    edited = run()
    assert computed(edited.stats) == ["source:local", "1:dedup"]
    assert edited.fingerprint != first.fingerprint and edited.nodes[0].fingerprint != first.nodes[0].fingerprint
    assert len(edited.examples) == 4 and edited.stats[1]["dropped"] == {"duplicate_prompt": 1}
    assert edited.examples[2]["chosen"][0]["content"] == "better 2"
    assert first.examples[2]["chosen"][0]["content"] == "good 2"
