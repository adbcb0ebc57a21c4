"""Decontamination: planted leaks are found, near misses are not, the step drops with reasons."""

from __future__ import annotations

import json
import random

from helpers import apply, chat

from harness.decontaminate.ngrams import Index, normalise, scan
from harness.schema import Where, build
from harness.data.step import Step

WORDS = [f"word{i}" for i in range(3000)]


def items(n=40, length=30, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(length)) + "?" for _ in range(n)]


def test_planted_leak_found_through_case_and_punctuation():
    evals = items()
    leak = "Background text. " + evals[7].upper().replace(" ", ", ", 3) + " More text after."
    documents = items(200, 150, seed=1) + [leak]
    matches = scan(Index.build(evals, 13), documents)
    assert [(m.document, m.item) for m in matches] == [(200, 7)]
    assert matches[0].coverage == 1.0


def test_near_miss_of_twelve_words_is_not_flagged_at_13():
    evals = items()
    words = normalise(evals[3]).split()
    near = "intro " + " ".join(words[:12]) + " outro " + " ".join(words[13:25])
    assert scan(Index.build(evals, 13), [near]) == []
    assert scan(Index.build(evals, 8), [near])  # at 8-grams the same text does overlap


def test_coverage_is_the_share_of_item_words():
    evals = items(length=40)
    words = normalise(evals[5]).split()
    matches = scan(Index.build(evals, 8), ["x " + " ".join(words[:24]), "y " + " ".join(words[:16])])
    coverage = {m.document: m.coverage for m in matches}
    assert coverage == {0: 24 / 40, 1: 16 / 40}


def test_template_ngrams_shared_by_many_items_are_not_indexed():
    template = "please answer the following question carefully and show all of your working before the final line"
    evals = [f"{template} {q}" for q in items(40, 15)]
    other = f"{template} {items(1, 15, seed=9)[0]}"
    assert scan(Index.build(evals, 13), [other]) == []  # the template alone is not a leak
    assert scan(Index.build(evals, 13, common_fraction=1.0), [other])  # unless told to keep template n-grams
    assert len(Index.build(items(3, 5), 13).too_short) == 3


def test_step_drops_contaminated_examples(tmp_path):
    evals = items(30)
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "answer": "42"}) + "\n" for q in evals))
    step = build(Step, {"step": "decontaminate", "against": [{"source": "local", "path": str(path), "format": "trl",
                                                            "kind": "prompt", "label": "heldout"}]},
                 Where(file="r.yaml"))
    clean = [chat(q, "fine") for q in items(50, 40, seed=5)]
    dirty = chat("Solve this: " + evals[2], "the answer")
    kept, ctx = apply(step, clean + [dirty])
    assert len(kept) == 50 and ctx.drops == {"contaminated:heldout": 1}
    assert ctx.rejects[0]["eval_item"].startswith(evals[2][:30]) and ctx.counters["eval_items"] == 30
    assert step.identity()["against"][0]["sha"]  # the eval file's content keys the cache


def test_step_protects_every_task_of_a_suite(tmp_path):
    """`suite:` indexes each task's items (its own `index` fields) and names the task in the drop reason."""
    from harness.data.sources.countdown import Countdown
    from harness.data.step import StepContext

    suite = tmp_path / "evals" / "guard.yaml"
    suite.parent.mkdir()
    body = ("name: guard\ntasks:\n  - {task: cd_heldout, runner: countdown, n: 30, num_numbers: [3], max_number: 40,"
            " seed: 99}\n")
    suite.write_text(body)
    step = build(Step, {"step": "decontaminate", "suite": str(suite), "field": "prompt", "mode": "coverage",
                        "ngram": 8, "coverage": 0.9}, Where(file="r.yaml"))
    ctx = StepContext(label="t", seed=0)
    load = lambda **kw: list(Countdown(kind="prompt", num_numbers=(3,), max_number=40, **kw).load(ctx))
    leaked = load(n=30, seed=99, split="test")          # the suite's own problems
    fresh = load(n=60, seed=5, split="train")           # disjoint by construction
    kept, ctx = apply(step, fresh + leaked)
    assert len(kept) == 60 and ctx.drops == {"contaminated:cd_heldout": 30}
    assert ctx.counters["eval_items"] == 30
    before = step.identity()["suite"]
    suite.write_text(body.replace("seed: 99", "seed: 98"))
    assert step.identity()["suite"] != before  # editing the suite re-runs the step
