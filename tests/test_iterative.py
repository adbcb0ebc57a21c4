"""Iterative (self-rewarding) DPO: one `iterate:` stage expands into rounds that chain their starts,
data and fingerprints; every round is evaluated; and `harness completions` puts models' greedy
answers side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, TINY_SFT_STAGE, TINY_SUITE, write_recipe

from harness import checkpoint
from harness.errors import ConfigError
from harness.recipe import load
from harness.stages import data_dependencies, plan_stages

PROMPTS = "{{source: countdown, kind: prompt, n: 12, num_numbers: [2], max_number: 20, max_target: 40}}"

ITERATIVE = """
name: iter
seed: 0
model: {tiny}
data:
  sources: [""" + PROMPTS + """]
  steps:
    - {{step: shard, n: 4}}
    - {{step: generate, model: policy, n: 2, temperature: 1.0, max_new_tokens: 6, batch_size: 4}}
    - {{step: score, scorer: {{scorer: reward_model, model: {scorer}, batch_size: 8}}}}
    - {{step: build_pairs, rule: best_vs_worst}}
  format: preference
stages:
""" + TINY_SFT_STAGE + """  - name: dpo
    backend: trl_dpo
    init_from: sft
    iterate: {{iterations: {k}, reference: {reference}}}
    args: {{max_steps: 1, per_device_train_batch_size: 2, max_length: 128}}
{after}"""


def _recipe(tmp_path, tiny, k=3, reference="previous", scorer="policy", after="", overrides=()):
    text = ITERATIVE.format(tiny=tiny, k=k, reference=reference, scorer=scorer, after=after)
    return load(write_recipe(tmp_path / "recipes", text, "iter"), tuple(overrides))


def _generate(recipe, stage):
    return next(s for s in recipe.data_for(stage).steps if s.name == "generate")


def _step(recipe, stage, name):
    return next(s for s in recipe.data_for(stage).steps if s.name == name)


def test_iterate_expands_into_chained_rounds(tmp_path, tiny_model):
    after = "  - {name: polish, backend: trl_sft, init_from: dpo, data: {sources: [{source: countdown, kind: sft, n: 4}]}}\n"
    recipe = _recipe(tmp_path, tiny_model, after=after)
    stages = {s.name: s for s in recipe.stages}
    assert list(stages) == ["sft", "dpo_1", "dpo_2", "dpo_3", "polish"]
    rounds = [stages[f"dpo_{k}"] for k in (1, 2, 3)]
    assert [s.init_from for s in rounds] == ["sft", "dpo_1", "dpo_2"]
    assert stages["polish"].init_from == "dpo_3"          # the iterative stage's name means its last round
    # each round samples from, and is scored by, the model it starts from ("policy")
    assert [_generate(recipe, s).model for s in rounds] == ["sft", "dpo_1", "dpo_2"]
    assert [_step(recipe, s, "score").scorer.model for s in rounds] == ["sft", "dpo_1", "dpo_2"]
    assert [data_dependencies(recipe, s) for s in rounds] == [["sft"], ["dpo_1"], ["dpo_2"]]
    # disjoint prompt blocks, one per round
    assert [_step(recipe, s, "shard").block for s in rounds] == [1, 2, 3]
    assert [(s.iteration.group, s.iteration.index, s.iteration.count) for s in rounds] == \
        [("dpo", 1, 3), ("dpo", 2, 3), ("dpo", 3, 3)]
    assert stages["sft"].iteration is None and stages["polish"].iteration is None
    # reference: the round's own start (previous round), or round 1's start for every round
    assert [s.reference for s in rounds] == [None, None, None]
    plans = {p.stage.name: p for p in plan_stages(recipe)}
    assert [plans[f"dpo_{k}"].start for k in (1, 2, 3)] == [str(plans[n].final_dir) for n in ("sft", "dpo_1", "dpo_2")]
    pinned = {s.name: s for s in _recipe(tmp_path, tiny_model, reference="start").stages}
    assert [pinned[f"dpo_{k}"].reference for k in (1, 2, 3)] == [None, "sft", "sft"]
    pinned_plans = {p.stage.name: p for p in plan_stages(_recipe(tmp_path, tiny_model, reference="start"))}
    assert pinned_plans["dpo_3"].reference == str(pinned_plans["sft"].final_dir)
    # a fixed judge stays fixed in every round
    fixed = _recipe(tmp_path, tiny_model, scorer="sft")
    assert [_step(fixed, s, "score").scorer.model for s in fixed.stages[1:]] == ["sft"] * 3


def test_rounds_have_chained_fingerprints(tmp_path, tiny_model):
    plans = {p.stage.name: p for p in plan_stages(_recipe(tmp_path, tiny_model))}
    fps = [plans[n].fingerprint for n in ("sft", "dpo_1", "dpo_2", "dpo_3")]
    assert len(set(fps)) == 4 and len({plans[n].data_fingerprint for n in ("dpo_1", "dpo_2", "dpo_3")}) == 3
    assert [plans[n].parent for n in ("dpo_1", "dpo_2", "dpo_3")] == fps[:3]
    # changing what round 1 starts from changes round 1, and through it rounds 2 and 3 (start and data)
    changed = {p.stage.name: p for p in plan_stages(
        _recipe(tmp_path, tiny_model, overrides=("stages.0.args.learning_rate=5.0e-4",)))}
    for name in ("dpo_1", "dpo_2", "dpo_3"):
        assert changed[name].fingerprint != plans[name].fingerprint
        assert changed[name].data_fingerprint != plans[name].data_fingerprint
    # one more round keeps the earlier rounds (a run can be extended), the reference option only
    # changes rounds after the first (round 1's start is its reference either way)
    longer = {p.stage.name: p for p in plan_stages(_recipe(tmp_path, tiny_model, k=4))}
    assert [longer[n].fingerprint for n in ("dpo_1", "dpo_2", "dpo_3")] == fps[1:]
    pinned = {p.stage.name: p for p in plan_stages(_recipe(tmp_path, tiny_model, reference="start"))}
    assert pinned["dpo_1"].fingerprint == plans["dpo_1"].fingerprint
    assert pinned["dpo_2"].fingerprint != plans["dpo_2"].fingerprint


def test_plan_lists_every_round(tmp_path, tiny_model):
    from harness.plan import show

    shown: list[str] = []
    show(_recipe(tmp_path, tiny_model), out=shown.append)
    text = "\n".join(shown)
    assert "# dpo_1.data" in text and "built once stage sft has trained" in text
    assert "# dpo_2.data" in text and "built once stage dpo_1 has trained" in text
    assert "# dpo_3.data" in text and "built once stage dpo_2 has trained" in text
    graph = text.split("# stage graph")[1]
    assert "round 1/3 of dpo, reference sft" in graph and "round 3/3 of dpo, reference dpo_2" in graph
    assert "  dpo_2 [trl_dpo, preference]" in graph and "(built from dpo_1)" in graph


@pytest.mark.parametrize("old, new, message", [
    ("iterate: {iterations: 3, reference: previous}", "reference: sft",
     "data.steps.1: 'policy' (the current round's model) only has a meaning in the data of an iterative stage; "
     "add `iterate: {iterations: K}` to stage 'dpo'"),
    ("iterate: {iterations: 3, reference: previous}", "iterate: {iterations: 2}\n    reference: sft",
     "stages.1.reference: an iterative stage sets its reference with `iterate.reference`"),
    ("backend: trl_sft\n", "backend: trl_sft\n    iterate: {iterations: 2, reference: start}\n",
     "stages.0.iterate.reference: only trl_dpo stages take a reference model, not trl_sft"),
    ("name: sft\n", "name: dpo_2\n", "stages.1.name: stage name 'dpo_2' is used twice (the rounds of 'dpo' are "
     "named dpo_1 .. dpo_3)"),
    ("iterate: {iterations: 3, reference: previous}", "iterate: {iterations: 0}",
     "stages.1.iterate.iterations: expected a value >= 1"),
])
def test_bad_iterative_recipes_fail_at_validation(tmp_path, tiny_model, old, new, message):
    text = ITERATIVE.format(tiny=tiny_model, k=3, reference="previous", scorer="policy", after="")
    text = text.replace(old, new)
    if new == "reference: sft":   # no longer iterative: the shard needs its block too
        text = text.replace("{step: shard, n: 4}", "{step: shard, n: 4, block: 1}")
    if new == "name: dpo_2\n":
        text = text.replace("init_from: sft", "init_from: dpo_2")
    with pytest.raises(ConfigError) as err:
        load(write_recipe(tmp_path / "recipes", text, "iter"))
    assert message in str(err.value)


def test_a_shard_without_block_needs_an_iterative_stage(tmp_path, tiny_model):
    text = ITERATIVE.format(tiny=tiny_model, k=3, reference="previous", scorer="sft", after="")
    text = text.replace("model: policy", "model: sft").replace("    iterate: {iterations: 3, reference: previous}\n", "")
    with pytest.raises(ConfigError, match=r"data.steps.0: step 'shard' has no `block:`; give one, or add `iterate:` "
                                          r"to stage 'dpo'"):
        load(write_recipe(tmp_path / "recipes", text, "iter"))
    assert load(write_recipe(tmp_path / "recipes", text.replace("{step: shard, n: 4}", "{step: shard, n: 4, block: 2}"),
                             "iter")).stages[1].name == "dpo"


def test_shard_blocks_are_disjoint_and_cover_the_pool():
    from harness.data.sources.countdown import Countdown
    from harness.data.step import StepContext
    from harness.data.steps.shard import Shard

    pool = list(Countdown(kind="prompt", n=10, num_numbers=(2,), max_number=20).load(StepContext("pool", 0)))
    blocks, contexts = [], []
    for block in (1, 2, 3):
        ctx = StepContext(f"shard {block}", seed=5)
        blocks.append([e["id"] for e in Shard(n=4, block=block).apply(iter(pool), ctx)])
        contexts.append(ctx)
    assert [len(b) for b in blocks] == [4, 4, 2]
    assert len(set().union(*map(set, blocks))) == 10 == len({e["id"] for e in pool})
    assert contexts[0].drops["other_block"] == 6 and contexts[2].counters["short_by"] == 2
    # the blocks depend on the seed and the ids, not on the order the pool arrives in
    again = [e["id"] for e in Shard(n=4, block=1).apply(iter(pool[::-1]), StepContext("again", seed=5))]
    assert sorted(again) == sorted(blocks[0])
    other = [e["id"] for e in Shard(n=4, block=1).apply(iter(pool), StepContext("other", seed=6))]
    assert sorted(other) != sorted(blocks[0])


def test_the_shipped_iterative_recipe_reuses_filtered_dpo_sft():
    shipped = {p.stage.name: p for p in plan_stages(load(ROOT / "recipes" / "iterative_dpo.yaml"))}
    flagship = {p.stage.name: p for p in plan_stages(load(ROOT / "recipes" / "filtered_dpo.yaml"))}
    assert list(shipped) == ["sft", "dpo_1", "dpo_2"]
    assert shipped["sft"].fingerprint == flagship["sft"].fingerprint
    recipe = load(ROOT / "recipes" / "iterative_dpo.yaml")
    assert [_generate(recipe, s).model for s in recipe.stages[1:]] == ["sft", "dpo_1"]
    assert [_step(recipe, s, "shard").block for s in recipe.stages[1:]] == [1, 2]


def test_two_rounds_train_chain_and_are_each_evaluated(tmp_path, workspace, tiny_model, monkeypatch):
    from harness.run import run

    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path / "evals", TINY_SUITE, "tiny")
    text = ITERATIVE.format(tiny=tiny_model, k=2, reference="previous", scorer="policy", after="eval: tiny\n")
    sft = text[text.index("  - name: sft"):text.index("  - name: dpo")]
    text = text.replace(sft, "").replace("init_from: sft", "init_from: null")   # round 1 from the base model
    recipe = load(write_recipe(tmp_path / "recipes", text, "iter"))
    lines: list[str] = []
    finals = run(recipe, log=lines.append)
    assert list(finals) == ["dpo_1", "dpo_2"]
    infos = {name: checkpoint.read(folder) for name, folder in finals.items()}
    assert all(infos.values())
    # lineage: base -> dpo_1 -> dpo_2, each round's data sampled from its start, its prompts its own
    assert infos["dpo_2"]["start"] == str(finals["dpo_1"]) and infos["dpo_1"]["start"] == tiny_model
    assert infos["dpo_2"]["parent"] == infos["dpo_1"]["fingerprint"]
    assert infos["dpo_2"]["reference"] is None or infos["dpo_2"]["reference"] == str(finals["dpo_1"])
    assert [c["stage"] for c in checkpoint.lineage(finals["dpo_2"])] == ["dpo_1", "dpo_2"]
    import datasets

    prompts = []
    for name in ("dpo_1", "dpo_2"):
        manifest = json.loads((Path(infos[name]["data_dir"]) / "manifest.json").read_text(encoding="utf-8"))
        steps = {s["label"]: s for s in manifest["steps"]}
        assert steps["1:shard"]["rows_out"] == 4 and steps["2:generate"]["counters"]["candidates"] == 8
        rows = datasets.load_from_disk(str(Path(infos[name]["data_dir"]) / "dataset"))
        prompts.append({json.dumps(r["prompt"]) for r in rows})
    assert prompts[0] and prompts[1] and not prompts[0] & prompts[1]   # disjoint prompt blocks
    assert any(l.startswith("dpo_2: building its data from dpo_1") for l in lines)
    # each round has its own leaderboard row, with the round chain in its lineage
    board = json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())
    (rows,) = [b["rows"] for b in board["boards"]]
    by_checkpoint = {r["model"]["checkpoint"]: r for r in rows}
    assert set(by_checkpoint) == {str(finals["dpo_1"]), str(finals["dpo_2"]), tiny_model}
    assert by_checkpoint[str(finals["dpo_1"])]["model"]["name"] == "iter/dpo_1"
    assert [e["stage"] for e in by_checkpoint[str(finals["dpo_2"])]["lineage"]] == ["dpo_1", "dpo_2"]
    assert [e["stage"] for e in by_checkpoint[str(finals["dpo_1"])]["lineage"]] == ["dpo_1"]
    assert "round by round: iter/dpo_1 -> iter/dpo_2" in lines

    # side by side by stage name through the recipe: each column is that round's own greedy answers
    from harness.completions import completions

    held_out = "{source: countdown, kind: prompt, n: 3, num_numbers: [2], max_number: 20, split: test}"
    out = completions(["dpo_1", "dpo_2", "base"], held_out, 3, recipe=recipe, out=tmp_path / "rounds.csv",
                      max_new_tokens=4, log=lambda _: None)
    import pandas

    from harness.completions import load_prompts

    table = pandas.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["prompt", "dpo_1", "dpo_2", "base"] and len(table) == 3
    messages = [p.prompt for p in load_prompts(held_out, 3)]
    assert list(table["dpo_2"]) == _direct_greedy(str(finals["dpo_2"]), messages, 4)
    assert list(table["base"]) == _direct_greedy(tiny_model, messages, 4)


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory, tokenizer, tiny_model) -> str:
    """A second random tiny Llama whose answers differ from tiny_model's (which, with tied embeddings,
    repeats the prompt's last token): its output layer is untied and random."""
    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama-other")
    torch.manual_seed(1)
    config = AutoConfig.from_pretrained(tiny_model)
    config.tie_word_embeddings = False
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return str(folder)


def _direct_greedy(folder: str, prompts, max_new_tokens: int) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.evaluate.generate import Generator

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    generator = Generator(model, AutoTokenizer.from_pretrained(folder), batch_size=8, log=None)
    return [t[0] for t in generator.generate(prompts, max_new_tokens=max_new_tokens, temperature=0.0).texts]


def test_completions_command_writes_one_column_per_model(tmp_path, tiny_model, other_tiny_model, capsys):
    import pandas

    from harness.cli import main

    prompts = tmp_path / "held_out.jsonl"
    rows = [{"id": f"p{i}", "prompt": f"Name {i + 2} colours of the sea."} for i in range(5)]
    rows.append({"id": "chat", "messages": [{"role": "user", "content": "Say hi."},
                                            {"role": "assistant", "content": "Hi!"}]})
    prompts.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "side_by_side.csv"
    code = main(["completions", "--models", f"{tiny_model},{other_tiny_model}", "--prompts", str(prompts),
                 "--n", "4", "--max-new-tokens", "5", "--out", str(out)])
    assert code == 0
    table = pandas.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["prompt", tiny_model, other_tiny_model] and len(table) == 4
    assert list(table["prompt"]) == [r["prompt"] for r in rows[:4]]
    messages = [[{"role": "user", "content": r["prompt"]}] for r in rows[:4]]
    for folder in (tiny_model, other_tiny_model):   # the models' own greedy answers, unchanged
        assert list(table[folder]) == _direct_greedy(folder, messages, 5)
    assert list(table[tiny_model]) != list(table[other_tiny_model])
    shown = capsys.readouterr().out
    assert "Name 2 colours" in shown and f"wrote {out} (4 prompts x 2 models)" in shown

    # a source spec gives prompts too; a `messages` row is cut after its last user turn
    from harness.completions import load_prompts

    spec = load_prompts("{source: countdown, kind: prompt, n: 3, num_numbers: [2], split: test}", 2)
    assert len(spec) == 2 and all(p.prompt[-1]["role"] == "user" and "<answer>" in p.text for p in spec)
    assert load_prompts(str(prompts), 10)[-1].prompt == [{"role": "user", "content": "Say hi."}]
    # errors are one line: a model named twice, a prompts file that is not there
    assert main(["completions", "--models", f"{tiny_model},{tiny_model}", "--prompts", str(prompts)]) == 2
    assert main(["completions", "--models", tiny_model, "--prompts", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "is named twice" in err and "none.jsonl: file not found" in err


def test_the_self_rewarding_seed_judges_with_each_rounds_policy():
    recipe = load(ROOT / "recipes" / "seeds" / "self_rewarding_dpo_llama3b.yaml")
    assert [s.name for s in recipe.stages] == ["dpo_1", "dpo_2"]
    judges = [_step(recipe, s, "score").scorer for s in recipe.stages]
    assert [(j.name, j.mode, j.model) for j in judges] == [("judge", "pointwise", "base"), ("judge", "pointwise", "dpo_1")]
    assert [_generate(recipe, s).model for s in recipe.stages] == ["base", "dpo_1"]
    assert [s.init_from for s in recipe.stages] == [None, "dpo_1"]
