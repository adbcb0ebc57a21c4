"""Eval orchestration: parsing helpers, statistics, the Countdown split, the decontamination report,
and `make eval` / the recipe tail on fresh tiny checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, write_recipe

from harness.evaluate import Decontamination, EvalItem
from harness.evaluate.parsing import answer_tag, gsm8k_number, mmlu_letter
from harness.evaluate.stats import bootstrap_ci, paired_bootstrap, stderr, summary


@pytest.mark.parametrize("text, letter", [
    ("The correct answer is B", "B"),
    ("Let me think. A is wrong because... so the answer is (c).", "C"),
    ("Answer: **D**", "D"),
    ("B. Paris is the capital", "B"),
    ("I think (A) fits best", "A"),
    ("Either (A) or (C) could be right", None),
    ("No idea, sorry.", None),
    ("The answer is A, wait, no: the answer is D", "D"),
])
def test_mmlu_letter(text, letter):
    assert mmlu_letter(text) == letter


@pytest.mark.parametrize("text, number", [
    ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
    ("So the total is 1,234 dollars.", "1234"),
    ("First 12, then 15, finally -3.5", "-3.5"),
    ("#### 42 is the answer, not 41", "42"),
    ("no digits here", None),
])
def test_gsm8k_number(text, number):
    assert gsm8k_number(text) == number


def test_answer_tag():
    assert answer_tag("<think>2+3</think><answer> 2 + 3 </answer>") == "2 + 3"
    assert answer_tag("<answer>1</answer> then <answer>(4 - 1) * 2</answer>") == "(4 - 1) * 2"
    assert answer_tag("the answer is 5") is None


def test_statistics():
    scores = [1.0] * 30 + [0.0] * 70
    assert stderr(scores) == pytest.approx((0.3 * 0.7 * 100 / 99) ** 0.5 / 10)
    low, high = bootstrap_ci(scores)
    assert 0.2 < low < 0.3 < high < 0.4
    assert summary([1.0, None, 0.0])["n"] == 2  # unscored items are not counted as wrong or right
    same = paired_bootstrap(scores, scores)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    better = paired_bootstrap(scores, [1.0] * 60 + [0.0] * 40)
    assert better["difference"] == pytest.approx(0.3) and better["p_value"] < 0.01


def test_countdown_eval_problems_never_overlap_training_problems():
    from harness.data.sources.countdown import Countdown, split_of
    from harness.data.step import StepContext

    def problems(split, n, seed):
        source = Countdown(kind="prompt", n=n, num_numbers=(2, 3), max_number=30, seed=seed, split=split)
        return {(tuple(sorted(e["metadata"]["numbers"])), e["metadata"]["target"])
                for e in source.load(StepContext(label="t", seed=seed))}

    test, train = problems("test", 300, 1234), problems("train", 3000, 1234)
    assert len(test) > 200 and len(train) > 1900
    assert not test & train
    assert {split_of(list(n), t) for n, t in test} == {"test"}


# ------------------------------------------------------------------ decontamination report

def _save_dataset(folder, texts):
    from datasets import Dataset

    rows = [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "ok"}]} for t in texts]
    Dataset.from_list(rows).save_to_disk(str(folder / "dataset"))
    return folder


def test_report_finds_planted_leaks_and_ignores_near_misses(tmp_path):
    from harness.data.sources.countdown import question
    from harness.decontaminate.report import report

    items = [EvalItem(f"q{i}", question([i, i + 7, 30 - i], 40 + i), f"{i} + {i + 7}") for i in range(1, 21)]
    prose = [EvalItem(f"p{i}", " ".join(f"word{i}_{j}" for j in range(30))) for i in range(10)]
    near = [question([1, 8, 28], 99), question([2, 9, 27], 42)]       # share numbers or target, not the problem
    documents = ["filler text"] * 50 + [items[3].prompt, "prefix " + items[11].prompt + " suffix",
                                        "x " + " ".join(prose[4].prompt.split()[5:20])] + near
    folder = _save_dataset(tmp_path / "data", documents)
    chain = [{"stage": "sft", "data_dir": str(folder)}]
    templated = Decontamination(any_overlap=False, coverage=0.9)
    result, dirty = report(chain, {"countdown": (items, ("prompt",), templated),
                                   "prose": (prose, ("prompt",), Decontamination()),
                                   "hub_only": (None, ("prompt",), Decontamination())}, Decontamination())
    assert dirty["countdown"] == {"q4", "q12"}                    # verbatim copies, not the near-misses
    assert dirty["prose"] == {"p4"}                               # 15 shared words: one 13-gram is enough
    countdown = result["tasks"]["countdown"]
    assert (countdown["items"], countdown["contaminated"], countdown["rate"]) == (20, 2, 0.1)
    assert countdown["worst"][0]["coverage"] == 1.0 and "numbers" in countdown["worst"][0]["document_snippet"]
    assert result["tasks"]["prose"]["worst"][0]["test"] == "any"
    assert result["tasks"]["hub_only"]["rate"] is None and "not checked" in result["tasks"]["hub_only"]["note"]
    assert result["status"] == "contaminated" and result["training_documents"] == len(documents)

    clean, _ = report(chain, {"countdown": (items[:3], ("prompt",), templated)}, Decontamination())
    assert clean["status"] == "clean" and clean["tasks"]["countdown"]["contaminated"] == 0
    base, _ = report([], {"countdown": (items, ("prompt",), templated)}, Decontamination())
    assert base["status"] == "not_checked"


# ------------------------------------------------------------------ end to end on tiny checkpoints

SUITE = """
name: tiny
tasks:
  - runner: countdown
    n: 6
    num_numbers: [2]
    max_number: 20
    seed: 1234
    max_new_tokens: 12
    batch_size: 6
    index: [prompt, answer]
    decontamination: {any_overlap: false, coverage: 0.9}
"""

RECIPE = """
name: tiny_eval
seed: 0
model: {tiny}
stages:
  - name: sft
    backend: trl_sft
    data:
      sources: [{{source: countdown, kind: sft, n: 16, num_numbers: [2], max_number: 20, {extra}}}]
    args: {{max_steps: 1, per_device_train_batch_size: 2, max_length: 128}}
eval: tiny
"""


def _eval_cli(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "harness", "eval", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_recipe_ends_with_evaluation_and_make_eval_publishes(tmp_path, workspace, tiny_model, monkeypatch):
    from harness import leaderboard
    from harness.recipe import load
    from harness.run import run

    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path / "evals", SUITE, "tiny")
    recipe = load(write_recipe(tmp_path / "recipes", RECIPE.format(tiny=tiny_model, extra="seed: 3"), "tiny_eval"))
    lines = []
    final = run(recipe, log=lines.append)["sft"]

    board = json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())
    (rows,) = [b["rows"] for b in board["boards"]]
    assert sorted(r["model"]["checkpoint"] for r in rows) == sorted([str(final), tiny_model])
    trained = next(r for r in rows if r["model"]["checkpoint"] == str(final))
    assert trained["model"]["stage"] == "sft" and trained["lineage"][0]["data_rows"] > 0
    assert trained["decontamination"]["status"] == "clean"
    assert trained["decontamination"]["tasks"]["countdown"]["items"] == 6
    record = leaderboard.load(trained["run_id"])
    task = record["tasks"]["countdown"]
    assert task["n"] == 6 and len(task["per_item"]["scores"]["accuracy"]) == 6
    assert task["metrics"]["accuracy"]["value"] == sum(task["per_item"]["scores"]["accuracy"]) / 6
    assert task["throughput"]["tokens_per_s"] > 0 and task["data_hash"]
    assert record["environment"]["libraries"]["transformers"]
    assert any("before -> after" in line for line in lines)
    assert (workspace / "leaderboard" / "index.html").is_file()

    # rerunning the finished recipe reuses both evaluations (same weights, same suite): no new rows
    again: list[str] = []
    run(recipe, log=again.append)
    (rows,) = [b["rows"] for b in json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())["boards"]]
    assert len(rows) == 2
    assert f"final checkpoint: reusing its evaluation {trained['run_id']}" in "\n".join(again)
    assert any(line.startswith("base model: reusing its evaluation") for line in again)
    assert not any(line.endswith("evaluating (countdown runner)") for line in again)
    assert any("before -> after" in line for line in again)
    # unless a fresh evaluation is asked for (`harness run --fresh-eval`)
    fresh: list[str] = []
    run(recipe, log=fresh.append, fresh_eval=True)
    (rows,) = [b["rows"] for b in json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())["boards"]]
    assert len(rows) == 4 and not any("reusing its evaluation" in line for line in fresh)
    assert sorted(r["model"]["checkpoint"] for r in rows) == sorted([str(final), tiny_model] * 2)
    from harness.cli import parser

    assert parser().parse_args(["run", "tiny_eval", "--fresh-eval"]).fresh_eval is True

    # `make eval` on the same checkpoint: a new row (the limit makes it a different suite fingerprint)
    done = subprocess.run(["make", "-s", "eval", f"CKPT={final}", f"SUITE={tmp_path / 'evals' / 'tiny.yaml'}",
                           "ARGS=--limit 4"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "countdown" in done.stdout and "95% CI" in done.stdout and "decontamination: clean" in done.stdout
    board = json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())
    assert sorted(len(b["rows"]) for b in board["boards"]) == [1, 4]
    (limited,) = [b["rows"][0] for b in board["boards"] if b["fingerprint"] != trained["suite"]["fingerprint"]]
    assert limited["model"]["checkpoint"] == str(final)
    assert limited["tasks"]["countdown"]["n"] == 4, [(r["run_id"], r["tasks"]["countdown"]["n"])
                                                     for b in board["boards"] for r in b["rows"]]

    # an unknown checkpoint folder and a missing CKPT are one-line errors with exit code 2
    missing = _eval_cli(str(tmp_path / "nope"), "--suite", str(tmp_path / "evals" / "tiny.yaml"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr and "Traceback" not in missing.stderr
    assert subprocess.run(["make", "-s", "eval"], cwd=ROOT, capture_output=True).returncode == 2


def test_contaminated_checkpoint_is_refused_unless_allowed(tmp_path, workspace, tiny_model, monkeypatch):
    from harness.recipe import load
    from harness.run import run

    monkeypatch.chdir(tmp_path)
    write_recipe(tmp_path / "evals", SUITE, "tiny")
    # trained on the eval problems themselves: same generator, split and seed as the suite
    text = RECIPE.format(tiny=tiny_model, extra="seed: 1234, split: test").replace("eval: tiny\n", "")
    final = run(load(write_recipe(tmp_path / "recipes", text, "leaky")))["sft"]
    suite = str(tmp_path / "evals" / "tiny.yaml")

    refused = _eval_cli(str(final), "--suite", suite)
    assert refused.returncode == 2 and "contaminated" in refused.stderr and "--allow-contaminated" in refused.stderr
    assert not (workspace / "leaderboard" / "leaderboard.json").exists()

    allowed = _eval_cli(str(final), "--suite", suite, "--allow-contaminated")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    (board,) = json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())["boards"]
    (row,) = board["rows"]
    decon = row["decontamination"]
    assert decon["status"] == "contaminated" and decon["allow_contaminated"] is True
    assert decon["tasks"]["countdown"]["contaminated"] == 6 and decon["tasks"]["countdown"]["rate"] == 1.0
    assert row["tasks"]["countdown"]["clean_metrics"]["accuracy_clean"]["n"] == 0

    # the recipe's own evaluation does not reuse that allowed row: it refuses, as it would without it
    from harness.errors import HarnessError

    with_eval = load(write_recipe(tmp_path / "recipes", text + "eval: tiny\n", "leaky"))
    with pytest.raises(HarnessError, match="contaminated"):
        run(with_eval, log=lambda line: None)
    assert len(json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())["boards"][0]["rows"]) == 1
