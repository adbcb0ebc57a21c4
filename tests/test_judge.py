"""LLM judges and pairwise rankers as candidate scorers, against a scripted loopback OpenAI-compatible
server and the tiny local model: both-order verdicts, unparseable verdicts, the verdict cache,
timeouts and retries, checks before any work, templates, the LIMA format, and whole recipes."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT, write_recipe
from openai_stub_server import StubServer

from harness.data import candidates
from harness.data import example as ex
from harness.data.step import StepContext
from harness.errors import ConfigError, HarnessError
from harness.recipe import load
from harness.schema import Where, build
from harness.scorers import Scorer
from harness.verdicts import parse_rating

KEY = "JUDGE_TEST_KEY"


def scorer(**fields) -> Scorer:
    return build(Scorer, fields, Where("<test>"))


def endpoint(server, **fields) -> Scorer:
    return scorer(scorer="judge", model="stub-judge", base_url=server.base_url, api_key_env=KEY, **fields)


def problem(texts, numbers=(3, 5), target=8) -> dict:
    prompt = ex.prompt([ex.user(f"Use {list(numbers)} to make {target}.")], "t",
                       {"numbers": list(numbers), "target": target})
    return candidates.with_candidates(prompt, [candidates.candidate(t) for t in texts])


def run_scorer(s, examples):
    ctx = StepContext(label="1:score", seed=0)
    return s.score(examples, ctx), ctx.counters


def section(prompt: str, name: str) -> str:
    """A response's text inside a rendered pairwise_v1 prompt."""
    return re.search(rf"\[Response {name}\]\n(.*?)\n\n(?:\[Response B\]|Which response)", prompt, re.S).group(1)


def prefers(word):
    """A consistent judge: picks the response containing `word`."""
    return lambda prompt: "[[A]]" if word in section(prompt, "A") else "[[B]]"


@pytest.fixture(autouse=True)
def judge_key(monkeypatch):
    monkeypatch.setenv(KEY, "test-key")


# ------------------------------------------------------------------ verdicts

@pytest.mark.parametrize("text,expected", [
    ("[[7]]", 7.0), ("Rating: [[3]]", 3.0), ("The response is fine. Rating: 8/10", 8.0), ("Score: 6", 6.0),
    ("9", 9.0), ("7/10", 7.0), ("[[11]]", None), ("[[0]]", None), ("[[3]] or [[4]]", None),
    ("It is quite good.", None), ("", None), ("Rating: 12", None),
])
def test_parse_rating(text, expected):
    assert parse_rating(text, 1, 10) == expected


# ------------------------------------------------------------------ pairwise, both orders

def test_a_judge_that_always_picks_the_first_answer_gives_only_ties():
    with StubServer(answer=lambda prompt: "[[A]]") as server:
        scores, counts = run_scorer(endpoint(server), [problem(["one", "two", "three"])])
    assert server.chat_requests == 6                     # 3 pairs x 2 orders
    assert counts["judge_pairs"] == 3 and counts["position_flip"] == 3 and counts["judge_consistent"] == 0
    assert [s.value for s in scores[0]] == [1.0, 1.0, 1.0]  # every comparison a tie: half a win each


def test_a_consistent_judge_ranks_by_round_robin_wins_and_agrees_with_the_verifier():
    texts = ["<answer>3 + 5</answer> good", "<answer>3 * 5</answer>", "<answer>5 - 3</answer>"]
    with StubServer(answer=prefers("good")) as server:
        s = endpoint(server, verifier_agreement="countdown", concurrency=3)
        scores, counts = run_scorer(s, [problem(texts)])
    values = [x.value for x in scores[0]]
    assert values[0] == 2.0 and values[1] + values[2] == 1.0    # the good one wins both; the others split by flips
    assert counts["judge_consistent"] == 2 and counts["position_flip"] == 1
    assert counts["verifier_pairs"] == 2 and counts["verifier_agree"] == 2   # only the first is correct
    assert s.required_fields() == ("numbers", "target")


def test_unparseable_verdicts_are_counted_and_never_scored():
    with StubServer(answer=lambda prompt: "Both are fine, hard to say.") as server:
        scores, counts = run_scorer(endpoint(server), [problem(["x", "y"])])
    assert [s.value for s in scores[0]] == [None, None]
    assert counts["judge_unparseable"] == 2 and counts["judge_unparseable_pairs"] == 1

    def rate(prompt):
        return "no idea" if "bad" in prompt else "Rating: [[7]]"

    with StubServer(answer=rate) as server:
        scores, counts = run_scorer(endpoint(server, mode="pointwise"), [problem(["fine", "bad", "ok"])])
    assert [s.value for s in scores[0]] == [7.0, None, 7.0]
    assert counts["judge_unparseable"] == 1 and counts["judge_verdicts"] == 3


def test_identical_answers_are_a_tie_without_asking():
    with StubServer(answer=prefers("b")) as server:
        scores, counts = run_scorer(endpoint(server), [problem(["a", "a", "b"])])
    # a-vs-b is asked once for both copies of a (same prompt, same key): 2 calls for 4 verdicts
    assert server.chat_requests == 2 and counts["judge_identical_pairs"] == 1 and counts["judge_verdicts"] == 4
    assert [s.value for s in scores[0]] == [0.5, 0.5, 2.0]


# ------------------------------------------------------------------ the verdict cache

def test_a_rerun_makes_no_calls_and_a_new_template_asks_again(tmp_path):
    examples = [problem(["p", "q", "r"]), problem(["s", "t"], numbers=(2, 2), target=4)]
    with StubServer(answer=prefers("q")) as server:
        first, counts = run_scorer(endpoint(server), examples)
        assert server.chat_requests == 8 and counts["judge_calls"] == 8
        again, counts = run_scorer(endpoint(server), examples)
        assert server.chat_requests == 8                          # nothing asked twice
        assert counts["judge_cached"] == 8 and counts["judge_calls"] == 0 and again == first
        template = tmp_path / "strict.txt"
        template.write_text((ROOT / "harness/scorers/judge_templates/pairwise_v1.txt").read_text() + "\nBe strict.")
        run_scorer(endpoint(server, template=str(template)), examples)
        assert server.chat_requests == 16                         # the template text is part of the key
    assert endpoint(server).identity() != endpoint(server, template=str(template)).identity()


# ------------------------------------------------------------------ timeouts and retries

def test_a_call_past_its_timeout_is_retried_then_fails_in_one_line():
    with StubServer(failures=["sleep:3"] * 4) as server:
        s = endpoint(server, timeout=0.3, max_retries=1)
        with pytest.raises(HarnessError) as err:
            run_scorer(s, [problem(["x", "y"])])
        assert server.chat_requests >= 2
    message = str(err.value)
    assert "\n" not in message and "timeout=0.3s on each of 2 tries" in message and server.base_url in message


def test_a_server_error_then_success_is_retried():
    with StubServer(answer=prefers("y"), failures=["500"]) as server:
        scores, counts = run_scorer(endpoint(server, max_retries=2, concurrency=1), [problem(["x", "y"])])
    assert server.chat_requests == 3 and counts["judge_calls"] == 2
    assert [s.value for s in scores[0]] == [0.0, 1.0]


def test_an_endpoint_that_keeps_failing_is_one_line():
    with StubServer(failures=["500"] * 10) as server:
        with pytest.raises(HarnessError, match=r"request failed after 2 tries .*raise `max_retries`"):
            run_scorer(endpoint(server, max_retries=1, concurrency=1), [problem(["x", "y"])])


# ------------------------------------------------------------------ checks before any work

JUDGED = """
name: judged
seed: 0
model: {tiny}
data:
  sources: [{{source: countdown, kind: prompt, n: 4, num_numbers: [2], max_number: 20, max_target: 40}}]
  steps:
    - {{step: generate, model: base, n: 2, temperature: 1.0, max_new_tokens: 6, batch_size: 4}}
    - step: score
      scorer: {{scorer: judge, model: stub, base_url: "{url}", api_key_env: {key}, verifier_agreement: countdown}}
  format: prompt
"""


def _prepare(recipe):
    from harness.data.prepare import prepare

    folder = prepare(recipe, log=lambda _: None)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return folder, {s["label"]: s for s in manifest["steps"]}


def test_a_missing_key_or_a_dead_endpoint_fails_before_generation(tmp_path, tiny_model, monkeypatch):
    from harness.data.step_models import StepModels
    from harness.evaluate import generate as generation

    monkeypatch.setattr(generation.Generator, "generate", lambda *a, **k: pytest.fail("generated first"))
    monkeypatch.delenv(KEY)
    with StubServer() as server:
        path = write_recipe(tmp_path / "recipes", JUDGED.format(tiny=tiny_model, url=server.base_url, key=KEY))
        with pytest.raises(HarnessError, match=rf"the environment variable {KEY} is not set; export") as err:
            _prepare(load(path))
        assert "\n" not in str(err.value)
        recipe = load(path)
        with pytest.raises(HarnessError, match=f"{KEY} is not set"):       # the run's check, before training
            StepModels.for_recipe(recipe).check_all(recipe)
        assert server.chat_requests == 0
    monkeypatch.setenv(KEY, "k")
    with pytest.raises(HarnessError, match=r"judge endpoint http://127.0.0.1:9/v1 \(model stub\) is unreachable"):
        _prepare(load(write_recipe(tmp_path / "recipes",
                                   JUDGED.format(tiny=tiny_model, url="http://127.0.0.1:9/v1", key=KEY))))


def test_a_template_without_its_placeholders_fails_validation(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Compare {a} with {b}. Answer [[A]] or [[B]].")
    with pytest.raises(ConfigError, match=r"scorer.template: template .*bad.txt lacks the placeholder \{instruction\}"):
        load(write_recipe(tmp_path / "recipes", JUDGED.format(tiny="base", url="http://x/v1", key=KEY).replace(
            "verifier_agreement: countdown", f"template: {bad}")))
    with pytest.raises(ConfigError, match=r"template file .*missing.txt not found"):
        load(write_recipe(tmp_path / "recipes", JUDGED.format(tiny="base", url="http://x/v1", key=KEY).replace(
            "verifier_agreement: countdown", "template: missing.txt")))
    with pytest.raises(ConfigError, match="api_key_env: give the NAME of the environment variable"):
        load(write_recipe(tmp_path / "recipes", JUDGED.format(tiny="base", url="http://x/v1", key="sk-123")))


# ------------------------------------------------------------------ whole pipelines

def test_a_local_judge_labels_generated_candidates_end_to_end(tmp_path, tiny_model, monkeypatch):
    text = JUDGED.format(tiny=tiny_model, url="", key=KEY).replace(
        'base_url: "", api_key_env: JUDGE_TEST_KEY, ', "max_new_tokens: 8, ").replace("model: stub", "model: base")
    path = write_recipe(tmp_path / "recipes", text)
    folder, steps = _prepare(load(path))
    counters = steps["2:score"]["counters"]
    pairs = counters["judge_pairs"] - counters.get("judge_identical_pairs", 0)
    assert counters["judge_verdicts"] == 2 * pairs and counters["judge_calls"] + counters["judge_cached"] == 2 * pairs
    readable = counters.get("judge_consistent", 0) + counters.get("position_flip", 0)
    assert readable + counters.get("judge_unparseable_pairs", 0) == pairs   # a random model: verdicts poor, mechanics real
    assert counters.get("scored", 0) + counters.get("unscored", 0) == 8

    import shutil

    from harness import paths
    from harness.evaluate import generate as generation

    shutil.rmtree(paths.runs_root())
    monkeypatch.setattr(generation.Generator, "generate", lambda *a, **k: pytest.fail("judged again"))
    _, again = _prepare(load(path))
    assert again["2:score"]["cached"]


def _run_judge_dpo(tiny_model, *judge_overrides):
    from harness.run import run

    overrides = (f"model={tiny_model}", "eval=", "data.sources.0.n=40", "data.steps.1.n=4",
                 "data.steps.2.n=3", "data.steps.2.max_new_tokens=8", "data.steps.2.batch_size=4", *judge_overrides,
                 "stages.0.data.sources.0.n=16", "stages.0.args.max_steps=1", "stages.1.args.max_steps=1")
    return run(load(ROOT / "recipes" / "judge_dpo.yaml", overrides), log=lambda _: None)


def _judge_dpo_outputs(workspace):
    card = (workspace / "cards" / "judge_dpo.md").read_text(encoding="utf-8")
    manifest = json.loads(next((workspace / "runs" / "judge_dpo" / "data").glob("*-preference/manifest.json"))
                          .read_text(encoding="utf-8"))
    return card, next(s for s in manifest["steps"] if s.get("step") == "score")["counters"]


def test_judge_dpo_runs_end_to_end_with_an_endpoint_judge(tmp_path, tiny_model, monkeypatch, workspace):
    monkeypatch.chdir(ROOT)
    with StubServer(answer=lambda prompt: "[[A]]" if len(section(prompt, "A")) >= len(section(prompt, "B"))
                    else "[[B]]") as server:
        finals = _run_judge_dpo(tiny_model, f"data.steps.3.scorer.base_url={server.base_url}",
                                "data.steps.3.scorer.model=stub", f"data.steps.3.scorer.api_key_env={KEY}",
                                "data.steps.3.scorer.verdict=text", 'data.steps.3.scorer.answer_prefix=""')
        asked = server.chat_requests
    assert (finals["dpo"] / "checkpoint.json").is_file()
    card, score = _judge_dpo_outputs(workspace)
    assert asked == score["judge_calls"] > 0 and score["judge_verdicts"] == 2 * (
        score["judge_pairs"] - score.get("judge_identical_pairs", 0))
    flips = score.get("position_flip", 0)   # equal lengths: the stub answers A in both orders
    flip_rate = flips / (score["judge_consistent"] + flips)
    assert "### Judge" in card and f"| {flip_rate:.1%} |" in card and "| 4:score |" in card


def test_shipped_judge_dpo_runs_with_its_local_logprob_judge(tmp_path, tiny_model, monkeypatch, workspace):
    """The recipe as shipped (a local judge, logprob verdicts), on the tiny model: every readable comparison
    is decided, so pairs are built even from a judge whose written verdicts would all tie."""
    monkeypatch.chdir(ROOT)
    finals = _run_judge_dpo(tiny_model)
    assert (finals["dpo"] / "checkpoint.json").is_file()
    card, score = _judge_dpo_outputs(workspace)
    asked = score["judge_pairs"] - score.get("judge_identical_pairs", 0)
    assert score["judge_verdicts"] == 2 * asked and score.get("judge_unparseable", 0) == 0
    assert score.get("judge_consistent", 0) + score.get("position_flip", 0) == asked
    assert score.get("judge_calibrated", 0) == score.get("position_flip", 0)   # no margin is exactly equal
    if score.get("judge_calibrated"):
        assert f"Logprob verdicts: {score['judge_calibrated']} flipped comparisons" in card


# ------------------------------------------------------------------ pairwise ranker

def test_a_ranker_needs_two_candidates():
    with StubServer(answer=prefers("b")) as server:
        ranker = scorer(scorer="pairwise_ranker", ranker="judge", method="round_robin",
                        judge={"model": "stub", "base_url": server.base_url, "api_key_env": KEY})
        with pytest.raises(HarnessError, match="none of the 2 prompts has two candidates to rank"):
            run_scorer(ranker, [problem(["only"]), problem(["single"], target=9)])
        scores, counts = run_scorer(ranker, [problem(["only"]), problem(["a", "b"])])
    assert scores[0][0].value is None and counts["fewer_than_two_candidates"] == 1
    assert [s.value for s in scores[1]] == [0.0, 1.0]


def test_a_tournament_ranks_with_n_minus_one_comparisons():
    texts = ["a", "bbbb", "cc", "ddd"]
    longer = lambda prompt: "[[A]]" if len(section(prompt, "A")) > len(section(prompt, "B")) else "[[B]]"  # noqa: E731
    with StubServer(answer=longer) as server:
        ranker = scorer(scorer="pairwise_ranker", ranker="judge", method="tournament",
                        judge={"model": "stub", "base_url": server.base_url, "api_key_env": KEY})
        scores, counts = run_scorer(ranker, [problem(texts)])
    assert server.chat_requests == 6 and counts["judge_pairs"] == 3         # 3 matches, both orders
    assert [s.value for s in scores[0]] == [0.0, 2.0, 0.0, 1.0]              # bbbb beats a, then ddd


def test_pairrm_without_llm_blender_is_one_line_and_validates():
    pytest.importorskip("pytest")
    try:
        import llm_blender  # noqa: F401
        pytest.skip("llm-blender is installed")
    except ImportError:
        pass
    ranker = scorer(scorer="pairwise_ranker")
    assert ranker.model == "llm-blender/PairRM" and ranker.model_refs() == ()
    with pytest.raises(HarnessError, match="needs the llm-blender package, which is not installed; pip install llm-blender"):
        ranker.preflight()
    with pytest.raises(HarnessError, match="pip install llm-blender"):
        run_scorer(ranker, [problem(["a", "b"])])
    with pytest.raises(ConfigError, match="ranker: judge needs the judge's settings"):
        scorer(scorer="pairwise_ranker", ranker="judge")


# ------------------------------------------------------------------ LIMA

def test_lima_conversations():
    from harness.data.formats import adapt

    rows = [{"conversations": ["What is 2+2?", "4."], "source": "stackexchange"},
            {"conversations": ["Hi", "Hello! How can I help?", "Tell me a joke.", "Why did the chicken..."]},
            {"conversations": ["Write a haiku about rain."]},
            {"conversations": ["Question", ""]}, {"conversations": "not a list"}]
    ctx = StepContext(label="source:lima", seed=0)
    out = list(adapt(iter(rows), ["conversations", "source"], "lima", "sft", "lima", ctx))
    assert ctx.drops == {"no_assistant_turn": 1, "empty_turn": 1, "bad_conversations": 1}
    assert [m["role"] for m in out[1]["messages"]] == ["user", "assistant", "user", "assistant"]
    assert out[0]["metadata"] == {"source": "stackexchange"} and out[0]["messages"][1]["content"] == "4."
    ctx = StepContext(label="source:lima", seed=0)
    prompts = list(adapt(iter(rows), ["conversations", "source"], "lima", "prompt", "lima", ctx))
    assert [len(p["prompt"]) for p in prompts] == [1, 3, 1]
    assert prompts[2]["prompt"] == [{"role": "user", "content": "Write a haiku about rain."}]
    assert prompts[1]["prompt"][-1] == {"role": "user", "content": "Tell me a joke."}


def test_a_local_judges_answer_can_be_prefilled(tmp_path, tiny_model):
    from harness.data.step_models import StepModels
    from harness.evaluate import generate as generation
    from harness.judge_client import LocalJudge

    text = JUDGED.format(tiny=tiny_model, url="", key=KEY).replace(
        'base_url: "", api_key_env: JUDGE_TEST_KEY, ', "max_new_tokens: 8, ").replace("model: stub", "model: base")
    models = StepModels.for_recipe(load(write_recipe(tmp_path / "recipes", text)), [])
    seen, out = [], {}
    real = generation.Generator.generate

    def spy(self, prompts, **kwargs):
        seen.extend(prompts)
        return real(self, prompts, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(generation.Generator, "generate", spy):
        judge = LocalJudge("base", models, 4, 2, "[[")
        judge.complete(["Which is better?"], out.__setitem__)
    assert seen[0].endswith("[[") and "Which is better?" in seen[0]   # the prefix follows the assistant header
    assert out[0].startswith("[[") and len(out[0]) > 2
    assert judge.identity.endswith(":prefix:[[") and LocalJudge("base", models, 4, 2).identity != judge.identity
    with pytest.raises(ConfigError, match="answer_prefix: only a local judge's answer can be prefilled"):
        load(write_recipe(tmp_path / "recipes", JUDGED.format(tiny="base", url="http://x/v1", key=KEY).replace(
            "verifier_agreement: countdown", "answer_prefix: '[['")))


# ------------------------------------------------------------------ logprob verdicts

class _Models:
    """Step models for scripted logprob margins: an identity, nothing to load."""

    def identity(self, name):
        return f"scripted:{name}"

    def load(self, name):
        return None, None


def test_logprob_verdicts_average_both_orders(monkeypatch):
    """A judge biased towards position A by +2 nats still ranks when its preference is smaller than
    its bias: averaging the two orders' margins cancels the bias (Wang et al., 2023)."""
    from harness.judge_client import LocalJudge

    quality = {"good": 0.5, "fair": 0.0, "bad": -0.5}   # the last word of each candidate

    def margins(self, model, tokenizer, prompts):  # always prefers "A", by more when A is better
        return [2.0 + quality[section(p, "A").split()[-1]] - quality[section(p, "B").split()[-1]] for p in prompts]

    monkeypatch.setattr(LocalJudge, "margins", margins)
    s = scorer(scorer="judge", model="base", verdict="logprob", verifier_agreement="countdown")
    ctx = StepContext(label="1:score", seed=0, models=_Models())
    # 3 + 5 makes the target 8: only the good candidate is verified correct
    good, fair, bad = "<answer>3 + 5</answer> good", "<answer>3 - 5</answer> fair", "<answer>5 - 3</answer> bad"
    scores = s.score([problem([good, fair, bad])], ctx)[0]
    assert [x.value for x in scores] == [2.0, 1.0, 0.0]              # every pair decided by the averaged margin
    assert ctx.counters["position_flip"] == 3 and ctx.counters["judge_calibrated"] == 3
    assert ctx.counters["judge_verdicts"] == 6 and ctx.counters.get("judge_unparseable", 0) == 0
    assert ctx.counters["verifier_pairs"] == 2 and ctx.counters["verifier_agree"] == 2

    from harness.data.pair_card import judge_figures
    figures = judge_figures(ctx.counters)
    assert figures["position_flip_rate"] == 1.0 and figures["tie_rate"] == 0.0 and figures["calibrated"] == 3


def test_logprob_margins_are_the_models_own_and_independent_of_batching(tmp_path, tiny_model):
    import torch

    from harness.data.step_models import StepModels
    from harness.evaluate.auxiliary import chat_or_text
    from harness.evaluate.generate import render
    from harness.judge_client import LocalJudge

    text = JUDGED.format(tiny=tiny_model, url="", key=KEY).replace(
        'base_url: "", api_key_env: JUDGE_TEST_KEY, ', "verdict: logprob, ").replace("model: stub", "model: base")
    models = StepModels.for_recipe(load(write_recipe(tmp_path / "recipes", text)), [])
    prompts = ["Which is better?", "A much longer question about two answers, which one is better here?", "Pick."]
    model, tokenizer = models.load("base")
    batched = LocalJudge("base", models, 4, 2, "[[", logprob=True).margins(model, tokenizer, prompts)
    single = LocalJudge("base", models, 4, 1, "[[", logprob=True).margins(model, tokenizer, prompts)
    assert batched == pytest.approx(single, abs=1e-4)
    ids = tokenizer(render(tokenizer, chat_or_text(tokenizer, prompts[1])) + "[[", add_special_tokens=False,
                    return_tensors="pt").input_ids
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), -1)
    a, b = LocalJudge("base", models, 4, 1, "[[", logprob=True).letter_ids(tokenizer)
    assert single[1] == pytest.approx((logp[a] - logp[b]).item(), abs=1e-4)
    assert len(set(round(m, 4) for m in single)) == 3                 # the prompts give different margins

    out = {}
    judge = LocalJudge("base", models, 4, 2, "[[", logprob=True)
    judge.complete(prompts[:1], out.__setitem__)
    assert float(out[0]) == pytest.approx(batched[0], abs=1e-5) and ":logprob:prefix:[[" in judge.identity


def test_logprob_verdicts_need_a_local_pairwise_judge(tmp_path):
    with pytest.raises(ConfigError, match="verdict: logprob verdicts need a local judge in pairwise mode"):
        load(write_recipe(tmp_path / "recipes", JUDGED.format(tiny="base", url="http://x/v1", key=KEY).replace(
            "verifier_agreement: countdown", "verdict: logprob")))
