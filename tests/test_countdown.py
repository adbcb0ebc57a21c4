"""Countdown: the shared verifier, the exact solver and the generator's three kinds."""

from __future__ import annotations

from fractions import Fraction

import pytest

from harness.data.sources.countdown import Countdown
from harness.data.step import StepContext
from harness.rewards import countdown as cd


@pytest.mark.parametrize("completion,reason", [
    ("<think>x</think><answer>(44 + 19) + 35</answer>", "correct"),
    ("<answer>44 + 19 + 35</answer> then <answer>35 + 19 + 44</answer>", "correct"),  # last block counts
    ("The answer is 44 + 19 + 35", "no_answer"),
    ("<answer>44 + 19 + 35 = 98</answer>", "invalid_characters"),
    ("<answer>__import__('os')</answer>", "invalid_characters"),
    ("<answer>44 + 44 + 35</answer>", "numbers_mismatch"),
    ("<answer>44 + 19</answer>", "numbers_mismatch"),
    ("<answer>44 - 19 + 35</answer>", "wrong_result"),
    ("<answer>44 / (19 - 19) + 35</answer>", "numbers_mismatch"),
    ("<answer>(44 + 19 + 35</answer>", "invalid_expression"),
])
def test_verifier_reasons(completion, reason):
    verdict = cd.verify(completion, [44, 19, 35], 98)
    assert verdict.reason == reason
    assert verdict.correct == (reason == "correct")


def test_score_follows_tinyzero():
    assert cd.score("<answer>44 + 19 + 35</answer>", [44, 19, 35], 98) == 1.0
    assert cd.score("<answer>44 + 19 - 35</answer>", [44, 19, 35], 98) == 0.1
    assert cd.score("no tags", [44, 19, 35], 98) == 0.0


def test_evaluate_is_exact_and_safe():
    assert cd.evaluate("1 / 3 + 1 / 3 + 1 / 3") == 1
    assert cd.evaluate("(7 - 2) * 3") == Fraction(15)
    with pytest.raises(ValueError):
        cd.evaluate("1 / 0")
    with pytest.raises(ValueError):
        cd.evaluate("2 ** 10")


@pytest.mark.parametrize("numbers,target", [([44, 19, 35], 98), ([3, 7, 25, 50], 3), ([6, 4], 24), ([1, 5, 5, 5], 24)])
def test_solver_finds_verified_solutions(numbers, target):
    solution = cd.solve(numbers, target)
    assert solution is not None
    assert cd.verify(f"<answer>{solution.expression}</answer>", numbers, target).correct
    assert len(solution.steps) == len(numbers) - 1


def test_solver_reports_impossible():
    assert cd.solve([1, 1], 100) is None


def generate(**kw):
    ctx = StepContext(label="source:countdown", seed=0)
    return list(Countdown(**kw).load(ctx))


def test_prompt_kind_carries_numbers_and_target():
    rows = generate(kind="prompt", n=30, num_numbers=(3, 4))
    assert len(rows) == 30
    for r in rows:
        meta = r["metadata"]
        assert 3 <= len(meta["numbers"]) <= 4 and 1 <= meta["target"] <= 100
        assert str(meta["numbers"]) in r["prompt"][0]["content"]
        assert cd.solve(meta["numbers"], meta["target"]) is not None


def test_sft_kind_ends_with_a_correct_answer():
    for r in generate(kind="sft", n=30, num_numbers=(2,), max_number=20):
        answer = r["messages"][-1]["content"]
        assert answer.rstrip().endswith("</answer>")
        assert cd.verify(answer, r["metadata"]["numbers"], r["metadata"]["target"]).correct
        assert len(r["metadata"]["numbers"]) == 2


def test_preference_kind_chosen_correct_rejected_realistically_wrong():
    rows = generate(kind="preference", n=200)
    kinds = {}
    for r in rows:
        numbers, target = r["metadata"]["numbers"], r["metadata"]["target"]
        assert cd.verify(r["chosen"][0]["content"], numbers, target).correct
        verdict = cd.verify(r["rejected"][0]["content"], numbers, target)
        assert not verdict.correct
        kind = r["metadata"]["rejected_kind"]
        kinds[kind] = kinds.get(kind, 0) + 1
        expected = {"broken_format": "no_answer", "wrong_arithmetic": "wrong_result",
                    "reused_number": "numbers_mismatch", "missing_number": "numbers_mismatch"}[kind]
        assert verdict.reason == expected, (kind, r["rejected"][0]["content"])
    assert set(kinds) == set(cd_kinds()) and min(kinds.values()) > 20


def cd_kinds():
    from harness.data.sources.countdown import REJECTED_KINDS

    return REJECTED_KINDS


def test_generation_is_deterministic_and_prefix_stable():
    a = generate(kind="preference", n=20)
    b = generate(kind="preference", n=40)
    assert a == b[:20]
    other = list(Countdown(kind="preference", n=20, seed=5).load(StepContext(label="x", seed=0)))
    assert [r["id"] for r in other] != [r["id"] for r in a]


def test_restricting_rejected_kinds():
    rows = generate(kind="preference", n=30, rejected_kinds=("broken_format",))
    assert {r["metadata"]["rejected_kind"] for r in rows} == {"broken_format"}


def test_rewards_score_trl_style_completions():
    from harness.rewards import REWARDS

    countdown = REWARDS.get("countdown")(format_score=0.2).make(lambda name: name)
    completions = [[{"role": "assistant", "content": "<answer>44 + 19 + 35</answer>"}],
                   [{"role": "assistant", "content": "<answer>44 - 19 + 35</answer>"}], "no tags"]
    assert countdown(completions, numbers=[[44, 19, 35]] * 3, target=[98] * 3) == [1.0, 0.2, 0.0]
    gsm8k = REWARDS.get("gsm8k")().make(lambda name: name)
    assert gsm8k(["so 1,200 apples", "it is 7.0", "none"], answer=["1200", "7", "3"]) == [1.0, 1.0, 0.0]


# ------------------------------------------------------------------ the eval runner's scoring

class ScriptedGenerator:
    """Stands in for a model: replies to each prompt with the text a test chose for it, and honours
    the stop rules the runner passes, as the real generators do."""

    backend = "scripted"

    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def generate(self, prompts, max_new_tokens=256, n=1, temperature=0.0, seed=0, stop=None):
        from harness.evaluate.generate import Generations, cut

        self.calls.append({"prompts": len(prompts), "stop": stop})
        texts = [[cut(self.reply("\n".join(m["content"] for m in prompt)), stop or ())[0]] for prompt in prompts]
        return Generations(texts, new_tokens=sum(len(t[0].split()) for t in texts), seconds=1.0)


def test_countdown_runner_scores_scripted_answers():
    """Correct answers score 1, wrong ones 0, missing ones count as unparseable; a reply that goes on
    after a complete answer is scored on that answer (the verifier alone would read the last block)."""
    from harness.evaluate import EvalContext
    from harness.evaluate.countdown import CountdownTask

    task = CountdownTask(n=12, num_numbers=(2, 3), max_number=30, seed=1234)
    ctx = EvalContext(model_name="scripted")
    items = task.items(ctx)
    solutions = {item.prompt: item.answer for item in items}
    assert all(solutions.values())                                  # the solver found every answer
    order = list(solutions)

    def reply(prompt: str) -> str:
        i = order.index(prompt)
        if i % 3 == 0:   # correct, then rambling with a wrong second answer the stop rule cuts away
            return f"<think>solved</think>\n<answer>{solutions[prompt]}</answer>\nOr maybe <answer>1 + 1</answer>"
        if i % 3 == 1:   # well-formed, wrong: an extra number
            return "<answer>" + " + ".join(cd_numbers(prompt)) + " + 1</answer>"
        return "I do not know."

    generator = ScriptedGenerator(reply)
    result = task.evaluate(EvalContext(model_name="scripted", generator=generator))
    expected = [1.0 if i % 3 == 0 else 0.0 for i in range(12)]
    assert result.item_ids == [item.id for item in items]
    assert result.per_item["accuracy"] == expected
    assert result.metrics["accuracy"] == pytest.approx(4 / 12)
    assert result.per_item["format_rate"] == [0.0 if i % 3 == 2 else 1.0 for i in range(12)]
    assert result.counts["unparseable"] == 4 and result.counts["verdict:correct"] == 4
    assert result.counts["verdict:numbers_mismatch"] == 4        # "+ 1" uses a number the problem lacks
    assert "</answer>" in generator.calls[0]["stop"][0].trigger
    assert result.samples[0]["verdict"] == "correct" and "maybe" not in result.samples[0]["output"]


def cd_numbers(prompt: str) -> list[str]:
    import re

    return re.search(r"\[([\d, ]+)\]", prompt).group(1).split(", ")
