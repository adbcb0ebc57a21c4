"""Preference pairs built from scored candidates: pair rules with ties and margins, hard-negative
strategies on candidates whose right answer is known, log-probs, embeddings, the data card."""

from __future__ import annotations

import dataclasses
import json
import random
import re

import numpy as np
import pytest
from conftest import write_recipe

from harness.data import candidates as C
from harness.data import example as ex
from harness.data.step import STEPS, StepContext
from harness.errors import ConfigError, FieldError, HarnessError
from harness.rewards import countdown as verifier

BuildPairs = STEPS.get("build_pairs")
HardNegatives = STEPS.get("hard_negatives")


def prompt(text: str, cands: list[dict], **meta) -> dict:
    return C.with_candidates(ex.prompt([ex.user(text)], "s", meta), cands)


def cand(text: str, score=None, correct=None, logprob=None, tokens=None) -> dict:
    return C.candidate(text, score=score, correct=correct, logprob=logprob, tokens=tokens)


def run(step, examples, seed: int = 0, models=None):
    ctx = StepContext(label=f"1:{step.name}", seed=seed, models=models)
    return list(step.apply(iter(examples), ctx)), ctx


def texts(pair: dict) -> tuple[str, str]:
    return ex.response_text(pair, "chosen"), ex.response_text(pair, "rejected")


class TinyModels:
    """`ctx.models` for steps run directly: `load(name)` -> a real (model, tokenizer) from a folder."""

    def __init__(self, folders: dict[str, str]) -> None:
        self.folders, self.loads = folders, []

    def load(self, name: str, kind: str = "causal"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.loads.append(name)
        folder = self.folders[name]
        return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


# ---------------------------------------------------------------------------------- build_pairs

def _mixed_prompts():
    return [
        prompt("a", [cand("Best", 1.0), cand("mid", 0.1), cand("worst", 0.0), cand("  best ", 1.0)]),
        prompt("tie", [cand("x", 0.5), cand("y", 0.5)]),
        prompt("one", [cand("only", 1.0)]),
        prompt("dups", [cand("same", 1.0), cand("SAME", 0.0)]),
        prompt("unscored", [cand("p"), cand("q")]),
        prompt("float gap", [cand("hi", 0.3), cand("lo", 0.1)]),
        prompt("small gap", [cand("hi", 0.15), cand("lo", 0.1)]),
    ]


def test_best_vs_worst_pairs_and_drop_reasons():
    out, ctx = run(BuildPairs(rule="best_vs_worst", margin=0.2), _mixed_prompts())
    assert [texts(p) for p in out] == [("Best", "worst"), ("hi", "lo")]
    assert dict(ctx.drops) == {"tie": 1, "fewer_than_two_distinct_candidates": 2, "unscored": 1, "below_margin": 1}
    assert ctx.counters["duplicate_candidates"] == 2 and ctx.counters["pairs"] == 2
    assert ctx.counters["candidates_per_prompt:4"] == 1 and ctx.counters["candidates_per_prompt:2"] == 5
    first = out[0]
    assert (first["score_chosen"], first["score_rejected"]) == (1.0, 0.0)
    pairing = first["metadata"]["pairing"]
    assert pairing["rule"] == "best_vs_worst" and pairing["candidates"] == 3 and pairing["margin"] == 1.0
    assert pairing["prompt_id"] == _mixed_prompts()[0]["id"]
    # without a margin the 0.05 gap is a pair; ties never are
    out, ctx = run(BuildPairs(), _mixed_prompts())
    assert len(out) == 3 and "below_margin" not in ctx.drops and ctx.drops["tie"] == 1


def test_all_pairs_every_pair_over_the_margin():
    example = prompt("q", [cand("a", 1.0), cand("b", 0.5), cand("c", 0.5), cand("d", 0.0)])
    out, _ = run(BuildPairs(rule="all_pairs"), [example])
    assert sorted(texts(p) for p in out) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]
    out, ctx = run(BuildPairs(rule="all_pairs", margin=0.6), [example])
    assert [texts(p) for p in out] == [("a", "d")] and ctx.counters["pairs"] == 1
    # the runner's row check is relaxed only where a prompt can give several pairs
    assert BuildPairs(rule="all_pairs").adds_rows and not BuildPairs().adds_rows
    assert not BuildPairs(rule="best_vs_random").adds_rows


def test_best_vs_random_is_seeded_by_prompt_and_text_not_position():
    rng = random.Random(0)
    examples = [prompt(f"q{i}", [cand("top", 1.0)] + [cand(f"w{i}-{k}", 0.1 * k) for k in range(5)]) for i in range(30)]
    out, _ = run(BuildPairs(rule="best_vs_random", margin=0.15), examples, seed=3)
    chosen = {p["metadata"]["pairing"]["prompt_id"]: texts(p)[1] for p in out}
    assert all(texts(p)[0] == "top" and p["score_chosen"] - p["score_rejected"] >= 0.15 - 1e-9 for p in out)
    assert len({r.split("-")[1] for r in chosen.values()}) >= 3   # draws spread over the worse candidates
    shuffled = [C.with_candidates(e, rng.sample(C.of(e), len(C.of(e)))) for e in examples]
    again, _ = run(BuildPairs(rule="best_vs_random", margin=0.15), list(reversed(shuffled)), seed=3)
    assert {p["metadata"]["pairing"]["prompt_id"]: texts(p)[1] for p in again} == chosen
    other, _ = run(BuildPairs(rule="best_vs_random", margin=0.15), examples, seed=4)
    assert {p["metadata"]["pairing"]["prompt_id"]: texts(p)[1] for p in other} != chosen


def test_build_pairs_errors_name_the_missing_step():
    with pytest.raises(HarnessError, match="add a score step before build_pairs"):
        run(BuildPairs(), [prompt("q", [cand("a"), cand("b")])])
    with pytest.raises(HarnessError, match="add a generate step"):
        run(BuildPairs(), [ex.prompt([ex.user("q")], "s")])
    with pytest.raises(HarnessError, match="needs prompt examples"):
        run(BuildPairs(), [ex.preference([ex.user("q")], [ex.assistant("a")], [ex.assistant("b")], "s")])


# ---------------------------------------------------------------------------------- hard negatives

def _rm_scored():
    """Reward-model-like scores, no verdicts."""
    return prompt("q", [cand("best", 1.0), cand("close", 0.9), cand("middle", 0.5), cand("far", 0.1)])


def test_near_tie_worst_and_margin():
    out, _ = run(HardNegatives(strategy="near_tie"), [_rm_scored()])
    assert texts(out[0]) == ("best", "close") and out[0]["metadata"]["pairing"]["rule"] == "near_tie"
    assert out[0]["metadata"]["pairing"]["margin"] == pytest.approx(0.1)
    out, _ = run(HardNegatives(strategy="near_tie", margin=0.3), [_rm_scored()])
    assert texts(out[0]) == ("best", "middle")
    out, _ = run(HardNegatives(strategy="worst"), [_rm_scored()])
    assert texts(out[0]) == ("best", "far")
    out, ctx = run(HardNegatives(strategy="near_tie", margin=0.95), [_rm_scored()])
    assert out == [] and dict(ctx.drops) == {"no_qualifying_negative:near_tie": 1}


def test_chosen_must_be_correct_and_negatives_wrong_when_verdicts_exist():
    example = prompt("q", [cand("wrong but liked", 0.9, False), cand("right", 0.7, True),
                           cand("right too", 0.6, True), cand("wrong", 0.2, False)])
    out, _ = run(HardNegatives(strategy="near_tie"), [example])
    assert texts(out[0]) == ("right", "wrong")          # never a correct answer as the negative
    out, _ = run(HardNegatives(strategy="near_tie", require_correct=False), [example])
    assert texts(out[0]) == ("wrong but liked", "right")
    none_right = prompt("r", [cand("w1", 0.5, False), cand("w2", 0.1, False)])
    out, ctx = run(HardNegatives(strategy="worst"), [none_right, prompt("t", [cand("a", 0.5), cand("b", 0.5)])])
    assert out == [] and dict(ctx.drops) == {"no_correct_candidate": 1, "tie": 1}


def test_random_negative_is_seeded_and_order_free():
    examples = [prompt(f"q{i}", [cand("best", 1.0)] + [cand(f"n{k}", 0.1 * k) for k in range(6)]) for i in range(20)]
    out, _ = run(HardNegatives(strategy="random"), examples, seed=1)
    picks = [texts(p)[1] for p in out]
    assert len(set(picks)) >= 3
    flipped = [C.with_candidates(e, list(reversed(C.of(e)))) for e in examples]
    assert [texts(p)[1] for p in run(HardNegatives(strategy="random"), flipped, seed=1)[0]] == picks


def test_most_likely_wrong_with_given_logprobs():
    example = prompt("q", [cand("right", 1.0, True, logprob=-9.0, tokens=3),
                           cand("sure mistake", 0.0, False, logprob=-3.0, tokens=1),
                           cand("long mistake", 0.0, False, logprob=-4.0, tokens=4),
                           cand("unlikely mistake", 0.0, False, logprob=-20.0, tokens=2)])
    out, _ = run(HardNegatives(strategy="most_likely_wrong"), [example])
    assert texts(out[0]) == ("right", "sure mistake")
    assert out[0]["metadata"]["pairing"]["rejected_logprob"] == -3.0
    out, _ = run(HardNegatives(strategy="most_likely_wrong", per_token=True), [example])
    assert texts(out[0]) == ("right", "long mistake")    # -1.0 per token beats -3.0


def test_logprobs_batched_equal_one_at_a_time_and_a_plain_forward(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.data.logprobs import encode, response_logprobs

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_model).eval(), AutoTokenizer.from_pretrained(tiny_model)
    prompts = [[ex.user("Add 2 and 3.")], [ex.user("Name a colour, please, and explain why you like it.")]] * 2
    responses = ["5", "Blue, because it is calm.", "It is 5, since 2 + 3 = 5.", "Red"]
    batched = response_logprobs(model, tok, prompts, responses, batch_size=4)
    single = response_logprobs(model, tok, prompts, responses, batch_size=1)
    for a, b in zip(batched, single):
        assert a.tokens == b.tokens and a.total == pytest.approx(b.total, abs=1e-3)
    ids, n_prompt = encode(tok, prompts[1], responses[1])
    assert tok.decode(ids[:n_prompt]).endswith("<|im_start|>assistant\n")
    assert tok.decode(ids[n_prompt:]).startswith("Blue, because it is calm.<|im_end|>")
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    manual = sum(float(logp[i - 1, ids[i]]) for i in range(n_prompt, len(ids)))
    assert batched[1].total == pytest.approx(manual, abs=1e-3) and batched[1].tokens == len(ids) - n_prompt


def test_most_likely_wrong_under_a_model(tiny_model):
    # under a random-init model every token costs about ln(vocab) nats, so the short mistake is the likely one
    long_mistake = " ".join(["the", "answer", "is", "probably", "forty", "two", "or", "so"] * 6)
    example = prompt("What is 6 * 7?", [cand("42", 1.0, True), cand(long_mistake, 0.0, False),
                                        cand("41", 0.0, False)])
    models = TinyModels({"sft": tiny_model})
    step = HardNegatives(strategy="most_likely_wrong", model="sft")
    assert step.model_refs() == ("sft",)
    out, ctx = run(step, [example], models=models)
    assert texts(out[0]) == ("42", "41") and models.loads == ["sft"]
    assert out[0]["metadata"]["pairing"]["logprob_model"] == "sft"
    assert ctx.counters["logprob_tokens"] > 48


def test_nearest_picks_the_paraphrase_with_the_embedded_minilm():
    example = prompt("Describe the scene.", [
        cand("The cat sat on the mat.", 1.0),
        cand("Quarterly revenue in Europe grew by five percent.", 0.2),
        cand("A cat was sitting on the mat.", 0.1),
        cand("Install the package with pip before running the tests.", 0.0)])
    out, _ = run(HardNegatives(strategy="nearest"), [example])
    assert texts(out[0]) == ("The cat sat on the mat.", "A cat was sitting on the mat.")
    similarity = out[0]["metadata"]["pairing"]["similarity"]
    assert similarity > 0.7
    out, _ = run(HardNegatives(strategy="near_tie", similarity=True), [example])   # the easy pick, measured
    assert texts(out[0])[1].startswith("Quarterly") and out[0]["metadata"]["pairing"]["similarity"] < similarity - 0.4


def test_embedding_model_that_cannot_load_is_one_line(tmp_path):
    from harness.data import embeddings

    with pytest.raises(HarnessError) as err:
        embeddings.load(str(tmp_path / "no-such-model"))
    assert "embedding model" in str(err.value) and "\n" not in str(err.value)


def _answer_tokens(text: str) -> list[str]:
    return re.findall(r"\d+|[+\-*/()]", verifier.extract_answer(text))


def test_near_miss_is_one_edit_from_the_correct_answer_and_verified_wrong():
    from harness.data.near_miss import near_misses

    right = "<think>\n7 - 3 = 4\n4 * 5 = 20\n</think>\n<answer>(7 - 3) * 5</answer>"
    example = prompt("q", [cand(right, 1.0, True), cand("<answer>7 + 3 + 5</answer>", 0.1, False)],
                     numbers=[3, 5, 7], target=20)
    out, ctx = run(HardNegatives(strategy="near_miss"), [example])
    chosen, rejected = texts(out[0])
    assert chosen == right and out[0]["metadata"]["pairing"]["rejected_origin"] == "near_miss"
    assert out[0]["metadata"]["pairing"]["margin"] == pytest.approx(0.9)  # 1.0 correct vs 0.1 well-formed, wrong
    assert not verifier.verify(rejected, [3, 5, 7], 20).correct
    a, b = _answer_tokens(chosen), _answer_tokens(rejected)
    assert len(a) == len(b) and sum(x != y for x, y in zip(a, b)) == 1
    assert rejected.split("<answer>")[0] == right.split("<answer>")[0]
    assert ctx.counters[f"near_miss_edit:{out[0]['metadata']['pairing']['near_miss_edit'].split(':')[0]}"] == 1
    variants = near_misses(right, [3, 5, 7], 20)
    assert {e.split(":")[0] for _, e in variants} == {"operator", "number"}
    for text, edit in variants:
        assert not verifier.verify(text, [3, 5, 7], 20).correct, edit
        x = _answer_tokens(text)
        assert len(x) == len(a) and sum(p != q for p, q in zip(a, x)) == 1, edit
    # 2 + 2 and 2 * 2 are both 4: that swap is not a miss
    edits = [e for _, e in near_misses("<answer>2 + 2</answer>", [2, 2], 4)]
    assert "operator:+->*" not in edits and "operator:+->-" in edits


def test_comparable_strategies_keep_the_same_prompts_and_count():
    examples = []
    for i in range(12):
        good = f"<answer>{i + 2} + 3</answer>"
        other = (cand("<answer>1 + 1</answer>", 0.1, False) if i % 3
                 else cand(f"<answer>3 + {i + 2}</answer>", 0.9, True))
        found = [cand(good, 1.0, True), other]   # every third prompt has no wrong candidate for `random`
        examples.append(prompt(f"q{i}", found, numbers=[i + 2, 3], target=i + 5))
    examples.append(prompt("no right", [cand("<answer>9</answer>", 0.1, False), cand("x", 0.0, False)],
                           numbers=[4, 5], target=9))
    hard, hard_ctx = run(HardNegatives(strategy="near_miss", comparable_with=("random",), n=5), examples)
    easy, easy_ctx = run(HardNegatives(strategy="random", comparable_with=("near_miss",), n=5), examples)
    ids = lambda pairs: [p["metadata"]["pairing"]["prompt_id"] for p in pairs]
    assert len(hard) == 5 and ids(hard) == ids(easy)
    assert dict(hard_ctx.drops) == dict(easy_ctx.drops) == {
        "no_qualifying_negative:random": 4, "no_correct_candidate": 1, "not_sampled": 3}
    assert {p["metadata"]["pairing"]["rejected_origin"] for p in hard} == {"near_miss"}
    alone, _ = run(HardNegatives(strategy="near_miss"), examples)
    assert len(alone) == 12


def test_hard_negative_errors_up_front():
    with pytest.raises(FieldError, match="only strategy most_likely_wrong"):
        HardNegatives(strategy="near_tie", model="sft")
    with pytest.raises(FieldError, match="nearest"):
        HardNegatives(strategy="worst", embedding_model="some/model")
    with pytest.raises(HarnessError, match="near_miss edits Countdown answers"):
        run(HardNegatives(strategy="near_miss"), [prompt("q", [cand("<answer>1</answer>", 1.0, True)])])
    with pytest.raises(HarnessError, match="set `model:`"):
        run(HardNegatives(strategy="most_likely_wrong"), [prompt("q", [cand("a", 1.0), cand("b", 0.0)])])
    with pytest.raises(HarnessError, match="add a score step before hard_negatives"):
        run(HardNegatives(strategy="near_tie"), [prompt("q", [cand("a"), cand("b")])])
    assert HardNegatives(strategy="near_miss").required_metadata() == ("numbers", "target")
    assert HardNegatives(strategy="near_miss").requires == ("candidates",)
    assert HardNegatives(strategy="nearest").requires == ("scores",)


def test_recipe_validation_names_the_missing_score_step_and_bad_keys(tmp_path):
    from harness.recipe import load

    body = """
name: hn
data:
  sources: [{source: countdown, kind: prompt, n: 4}]
  steps:
    - {step: generate, n: 2}
    - %s
  format: preference
"""
    path = write_recipe(tmp_path, body % "{step: hard_negatives, strategy: near_tie}")
    with pytest.raises(ConfigError, match="add a `score` step"):
        load(path)
    path = write_recipe(tmp_path, body % "{step: hard_negatives, strategy: near_miss}")
    assert load(path).data.steps[1].strategy == "near_miss"        # needs no scores
    path = write_recipe(tmp_path, body % "{step: hard_negatives, strategy: random, model: base}")
    with pytest.raises(ConfigError, match=r"steps\.1\.model: only strategy most_likely_wrong"):
        load(path)


# ---------------------------------------------------------------------------------- the data card

def _built_set():
    examples = [
        prompt("p1", [cand("a long correct answer here", 1.0), cand("short", 0.0), cand("meh", 0.5)]),
        prompt("p2", [cand("ok", 0.8), cand("a much longer but wrong reply", 0.2)]),
        prompt("p3", [cand("same", 0.4), cand("also same score", 0.4)]),
        prompt("p4", [cand("x y z", 0.9), cand("w", 0.3), cand("v", 0.1)]),
    ]
    step = BuildPairs()
    out, ctx = run(step, examples)
    manifest = {"format": "preference", "rows": len(out), "data_fingerprint": "f", "order": None,
                "sources": [{"label": "s", "source": "test", "rows": 4}],
                "steps": [{"label": "1:build_pairs", "step": "build_pairs", "rows_in": 4, "rows_out": len(out),
                           "dropped": dict(ctx.drops), "counters": dict(ctx.counters)}]}
    return out, manifest


def test_card_of_a_built_set_reports_candidates_ties_margins_and_length_bias():
    from harness.data import card, pair_card

    pairs, manifest = _built_set()
    rendered = card.render_card("built", manifest, pairs, None, "built")
    text = rendered.text
    assert "## Pairs" in text and "![pair figures](built.pairs.png)" in text
    assert rendered.figures["pairs"].startswith(b"\x89PNG") and rendered.figures["lengths"].startswith(b"\x89PNG")
    # 4 prompts in, one tie: 25.0%; candidates per prompt 3, 2, 2, 3
    assert "| 1:build_pairs | 4 | 3 | 2: 2, 3: 2; mean 2.50 | 25.0% (1) | - |" in text
    margins = [1.0, 0.6, 0.8]
    assert f"| margin (chosen - rejected) | {np.mean(margins):.3g} |" in text
    # length bias in words: chosen 5, 1, 3 vs rejected 1, 6, 1 words
    diff = np.array([5 - 1, 1 - 6, 3 - 1])
    row = f"| best_vs_worst | 3 | {np.mean(margins):.3g} | {np.mean(diff > 0):.1%} | {np.mean(diff):+.1f} | nan |"
    assert row in text
    f = pair_card.figures(pairs, manifest["steps"])
    assert f["tie_rate"] == {"1:build_pairs": 0.25} and f["prompts"] == 3
    # a plain preference set has no Pairs section and no pair figure
    plain = [ex.preference([ex.user("q")], [ex.assistant("a")], [ex.assistant("b")], "s")]
    other = card.render_card("plain", {**manifest, "steps": []}, plain, None, "plain")
    assert "## Pairs" not in other.text and set(other.figures) == {"lengths"}


def test_card_shows_hard_negative_similarity():
    from harness.data import card

    example = prompt("q", [cand("The cat sat on the mat.", 1.0), cand("A cat was sitting on the mat.", 0.1),
                           cand("Revenue grew.", 0.0)])
    out, ctx = run(HardNegatives(strategy="nearest"), [example])
    manifest = {"format": "preference", "rows": 1, "data_fingerprint": "f", "order": None, "sources": [],
                "steps": [{"label": "1:hard_negatives", "step": "hard_negatives", "rows_in": 1, "rows_out": 1,
                           "dropped": {}, "counters": dict(ctx.counters)}]}
    text = card.render_card("hn", manifest, out, None, "hn").text
    sim = out[0]["metadata"]["pairing"]["similarity"]
    assert f"| similarity (cosine, chosen vs rejected) | {sim:.3g} |" in text
    assert f"| nearest | 1 | 0.9 |" in text


# candidates from a fixed rule instead of a model (a step through the `module:Attr` escape hatch), so the
# end-to-end test knows which are right: the solver's answer, a wrong sum, and no answer at all
from harness.data.step import Step  # noqa: E402


@dataclasses.dataclass(frozen=True)
class SolvedCandidates(Step):
    name = "solved_candidates"
    provides = ("candidates",)

    def apply(self, examples, ctx):
        for e in examples:
            solution = verifier.solve(e["metadata"]["numbers"], e["metadata"]["target"])
            yield C.with_candidates(e, [cand(f"<think>\nwork\n</think>\n<answer>{solution.expression}</answer>"),
                                        cand("<answer>1 + 1</answer>"), cand("I do not know.")])


def test_prepared_built_set_writes_the_pair_figure(tmp_path, workspace):
    from harness.data.prepare import prepare
    from harness.recipe import load

    path = write_recipe(tmp_path, """
name: built
data:
  sources: [{source: countdown, kind: prompt, n: 4, num_numbers: [2], max_number: 20}]
  steps:
    - "test_pair_building:SolvedCandidates"
    - {step: score, scorer: {scorer: verifier, task: countdown}}
    - {step: hard_negatives, strategy: near_tie, similarity: true}
  format: preference
""")
    folder = prepare(load(path), log=lambda _: None)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows"] == 4 and (folder / "pairs.png").read_bytes().startswith(b"\x89PNG")
    card_text = (workspace / "cards" / "built.md").read_text(encoding="utf-8")
    assert (workspace / "cards" / "built.pairs.png").is_file() and "built.pairs.png" in card_text
    assert "| 3:hard_negatives | 4 | 4 | 3 (all); mean 3.00 | 0.0% (0) | - |" in card_text
    import datasets

    rows = datasets.load_from_disk(str(folder / "dataset"))
    assert all(r["score_chosen"] == 1.0 and r["score_rejected"] == pytest.approx(0.1) for r in rows)
    assert all(r["rejected"][0]["content"] == "<answer>1 + 1</answer>" for r in rows)


def test_most_likely_wrong_loads_the_named_model_through_the_data_stage(tmp_path, tiny_model):
    from harness.data.prepare import prepare
    from harness.recipe import load

    path = write_recipe(tmp_path, f"""
name: mlw
model: {tiny_model}
data:
  sources: [{{source: countdown, kind: prompt, n: 3, num_numbers: [2], max_number: 20}}]
  steps:
    - "test_pair_building:SolvedCandidates"
    - {{step: score, scorer: {{scorer: verifier, task: countdown}}}}
    - {{step: hard_negatives, strategy: most_likely_wrong, model: base}}
  format: preference
""")
    folder = prepare(load(path), log=lambda _: None)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["steps"][-1]["counters"]["logprob_tokens"] > 0
    import datasets

    rows = datasets.load_from_disk(str(folder / "dataset"))
    # a random-init model gives every token about -ln(vocab): the shorter wrong answer is the likelier one
    assert [r["rejected"][0]["content"] for r in rows] == ["I do not know."] * 3
