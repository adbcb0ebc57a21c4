"""Reward win rate, judge win rate and safety: verdict parsing, the outcome arithmetic,
the length-controlled fit, prompt sets, and each runner end to end on tiny random models."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from conftest import ROOT

from harness.errors import HarnessError
from harness.evaluate import EvalContext
from harness.evaluate import prompts as prompt_sets
from harness.evaluate.judge_winrate import JudgeWinRate, combine, length_controlled, parse_preference
from harness.evaluate.pairwise import outcome, tally, win_rate
from harness.evaluate.reward_winrate import RewardWinRate
from harness.evaluate.safety import HARM_AREAS, Safety, area_key, is_refusal, parse_safety, parse_yes_no
from harness.evaluate.stats import mean

CHAT = ROOT / "evals" / "data" / "chat_prompts.jsonl"
SAFETY = ROOT / "evals" / "data" / "safety_prompts.jsonl"


# ------------------------------------------------------------------ parsing

@pytest.mark.parametrize("text,expected", [
    ("A", "A"), ("B.", "B"), (" (B)", "B"), ("**A**", "A"), ("Response B", "B"), ("B is better.", "B"),
    ("A is more helpful and correct.", "A"),
    ("A\nExplanation: it answers the question.", "A"), ("[[B]]", "B"), ("My verdict: [[A]]", "A"),
    ("The answer is B", "B"), ("Answer: A", "A"), ("I prefer (B) because it is concise.", "B"),
    ("The better response is A.", "A"), ("Answer: A. On reflection, the answer is B.", "B"),
    ("[[A]] or [[B]]", None), ("Both responses are good.", None), ("", None),
    ("A good response would mention the weather.", None), ("Response A is wrong, Response B too.", None),
    ("Tie", None), ("I cannot choose between them", None), ("the answer is a tie", None),
])
def test_parse_preference(text, expected):
    assert parse_preference(text) == expected


@pytest.mark.parametrize("first,second,expected", [
    ("A", "B", (1.0, "consistent")),     # model shown first wins, model shown second wins
    ("B", "A", (0.0, "consistent")),     # the reference wins in both orders
    ("A", "A", (0.5, "inconsistent")),   # the judge always picks the first answer
    ("B", "B", (0.5, "inconsistent")),
    (None, "B", (0.5, "unparseable")), ("A", None, (0.5, "unparseable")), (None, None, (0.5, "unparseable")),
])
def test_both_orders_combine_into_one_outcome(first, second, expected):
    assert combine(first, second) == expected


@pytest.mark.parametrize("text,expected", [
    ("safe", "safe"), ("Unsafe.", "unsafe"), ("unsafe\nS1", "unsafe"), ("**Safe**", "safe"),
    ("Answer: unsafe", "unsafe"), ("The response is safe because it declines.", "safe"),
    ("This reply is not safe.", "unsafe"), ("The reply isn't safe at all", "unsafe"),
    ("I think it is unsafe", "unsafe"), ("Safe. It does not contain unsafe content.", "safe"),
    ("safe or unsafe?", None), ("Safe or unsafe? Unsafe.", None), ("Is it safe or unsafe? Hard to say.", None),
    ("", None),
    ("The assistant declined.", None), ("safety first", None),
])
def test_parse_safety(text, expected):
    assert parse_safety(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("Yes", "yes"), ("no.", "no"), ("Answer: yes, it declines", "yes"), ("It clearly says no", "no"),
    ("yes and no", None), ("No or yes", None), ("Maybe yes, maybe no", None), ("", None),
])
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) == expected


def test_area_keys():
    assert area_key("Suicide, Self-Harm, and Eating Disorders") == "suicide_self_harm_and_eating_disorders"
    assert all(area_key(area) == area for area in HARM_AREAS) and area_key("--") == "other"


@pytest.mark.parametrize("text,expected", [
    ("I can't help with that.", True), ("I\u2019m sorry, but I won't provide that information.", True),
    ("Sorry, but this is something I must decline.", True), ("As an AI, I cannot assist with harming people.", True),
    ("I cannot help with that request. If you are struggling, please call a helpline.", True),
    ("Sure! Here are the steps: first, gather the materials.", False), ("", False),
    ("Here is a long answer. " * 20 + "I can't stress this enough.", False),  # past the opening window
])
def test_rule_based_refusal_detector(text, expected):
    assert is_refusal(text) is expected


# ------------------------------------------------------------- win-rate arithmetic

def test_outcomes_with_ties_and_a_tie_margin():
    assert outcome(2.0, 1.0) == 1.0 and outcome(1.0, 2.0) == 0.0 and outcome(1.0, 1.0) == 0.5
    assert outcome(1.05, 1.0, tie_margin=0.1) == 0.5 and outcome(0.95, 1.0, tie_margin=0.1) == 0.5
    assert outcome(1.2, 1.0, tie_margin=0.1) == 1.0 and outcome(0.8, 1.0, tie_margin=0.1) == 0.0
    outcomes = [1.0, 1.0, 0.5, 0.0, 0.5, 1.0]
    assert tally(outcomes) == {"wins": 3, "ties": 2, "losses": 1}
    assert win_rate(outcomes) == pytest.approx((3 + 0.5 * 2) / 6)


# --------------------------------------------------------- length-controlled fit

def test_lc_win_rate_is_close_to_the_raw_rate_when_outcome_ignores_length():
    rng = np.random.default_rng(0)
    n = 600
    model_lengths = rng.integers(50, 1500, n)
    reference_lengths = rng.integers(50, 1500, n)
    outcomes = rng.choice([1.0, 0.5, 0.0], size=n, p=[0.6, 0.1, 0.3])
    lc = length_controlled(outcomes, model_lengths, reference_lengths)
    assert lc.value == pytest.approx(outcomes.mean(), abs=0.03)
    assert abs(lc.slope) < 0.5 and 0.3 < lc.longer_share < 0.7


def test_lc_win_rate_removes_a_length_advantage():
    """Equal quality, but the judge likes length and the model is longer on most prompts:
    the raw win rate is inflated, the length-controlled one is not."""
    rng = np.random.default_rng(1)
    n = 2000
    difference = rng.normal(300, 400, n)        # the model is longer on ~77% of prompts
    reference_lengths = rng.integers(200, 800, n)
    model_lengths = reference_lengths + difference
    x = np.tanh(difference / difference.std())
    outcomes = (rng.random(n) < 1 / (1 + np.exp(-2.5 * x))).astype(float)
    lc = length_controlled(outcomes, model_lengths, reference_lengths)
    assert outcomes.mean() > 0.65
    assert lc.value == pytest.approx(0.5, abs=0.05) and lc.slope == pytest.approx(2.5, abs=0.5)


def test_lc_is_not_identified_when_the_model_is_nearly_always_longer():
    rng = np.random.default_rng(2)
    reference_lengths = rng.integers(100, 500, 100)
    model_lengths = reference_lengths + rng.integers(1, 400, 100)   # always longer, and always wins
    lc = length_controlled(np.ones(100), model_lengths, reference_lengths)
    assert lc.value is None and "longer on 100% of prompts" in lc.reason
    shorter = length_controlled(np.zeros(100), reference_lengths, model_lengths)
    assert shorter.value is None and "shorter" in shorter.reason


@pytest.mark.parametrize("outcomes,model_lengths,reference_lengths,reason", [
    ([1.0, 0.0] * 10, [100, 200] * 10, [100, 200] * 10, "same amount"),
    ([1.0, 0.0, 0.5], [10, 20, 30], [20, 10, 30], "only 3 prompts"),
    ([1.0, 0.0] * 20, [300, 100] * 20, [200, 200] * 20, "separated"),   # longer always wins, shorter always loses
])
def test_lc_is_not_identified_without_length_variation_data_or_overlap(outcomes, model_lengths,
                                                                         reference_lengths, reason):
    lc = length_controlled(outcomes, model_lengths, reference_lengths)
    assert lc.value is None and reason in lc.reason


# ------------------------------------------------------------------ prompt sets

def test_prompt_file_rows_ids_categories_and_hash(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"prompt": "Say hi.", "id": "a", "category": "x"},
            {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say bye."}]},
            {"prompt": "Count to three.", "id": 7}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    prompt_set = prompt_sets.read(str(path))
    first, second, third = prompt_set.prompts
    assert first.messages == [{"role": "user", "content": "Say hi."}] and first.category == "x"
    assert second.messages[0]["role"] == "system" and second.id == prompt_sets.read(str(path)).prompts[1].id
    assert len(second.id) == 16 and third.id == "7" and third.category is None
    assert prompt_set.data_hash == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert [p.id for p in prompt_sets.read(str(path), limit=2).prompts] == ["a", second.id]


@pytest.mark.parametrize("lines,message", [
    (['{"prompt": "a", "id": "1"}', '{"prompt": "b", "id": "1"}'], "p.jsonl:2: id '1' appears twice"),
    (['{"prompt": "a"}', 'not json'], "p.jsonl:2: not a JSON object"),
    (['{"text": "a"}'], "p.jsonl:1: `prompt` must be"),
    (['{"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}'], "ending with a user"),
])
def test_bad_prompt_rows_are_named_by_file_and_line(tmp_path, lines, message):
    (tmp_path / "p.jsonl").write_text("\n".join(lines))
    with pytest.raises(HarnessError, match="task 't'") as err:
        prompt_sets.read(str(tmp_path / "p.jsonl"), task="t")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_prompt_file_is_one_line(tmp_path):
    task = Safety(judge="j", prompts=str(tmp_path / "nope.jsonl"))
    with pytest.raises(HarnessError, match="prompt file not found: .*nope.jsonl.*fix `prompts:`"):
        task.items(EvalContext(model_name="m"))


def test_shipped_prompt_sets():
    chat = prompt_sets.read(str(CHAT)).prompts
    assert len(chat) == 40 and len({p.id for p in chat}) == 40
    safety = prompt_sets.read("evals/data/safety_prompts.jsonl").prompts   # found from the checkout
    assert len(safety) == 25 and {p.category for p in safety} == set(HARM_AREAS)
    assert all(sum(p.category == a for p in safety) == 5 for a in HARM_AREAS)
    assert {p.category for p in safety[:5]} == set(HARM_AREAS)   # a `limit: 5` still covers every area
    items = Safety(judge="j").items(EvalContext(model_name="m", limit=3))
    assert [i.id for i in items] == ["safety-001", "safety-002", "safety-003"] and items[0].prompt == safety[0].text


# ----------------------------------------------------------- runners end to end

@pytest.fixture(scope="module")
def other_model(tmp_path_factory, tiny_model):
    """A second random tiny Llama with untied embeddings: its greedy answers are varied tokens, while the
    tied `tiny_model` repeats the last prompt token, so the two models' answers differ."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("other-llama")
    torch.manual_seed(1)
    LlamaForCausalLM(LlamaConfig.from_pretrained(tiny_model, tie_word_embeddings=False)).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def parrot(tmp_path_factory, tiny_model):
    """A judge that always gives the same one-word verdict.

    The tied random `tiny_model` continues any text with its last token, so the
    tiny model with a chat template that ends in "Verdict: <word>" answers
    "<word>" to every judge prompt: a real causal LM with a known verdict.
    """
    import shutil

    from transformers import AutoTokenizer

    made = {}

    def make(word: str) -> str:
        if word not in made:
            folder = tmp_path_factory.mktemp(f"parrot-{word}")
            shutil.copytree(tiny_model, folder, dirs_exist_ok=True)
            tokenizer = AutoTokenizer.from_pretrained(tiny_model)
            tokenizer.chat_template = ("{% for m in messages %}{{ m['content'] }}\n{% endfor %}Verdict: " + word)
            tokenizer.save_pretrained(str(folder))
            made[word] = str(folder)
        return made[word]
    return make


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory, tiny_model):
    """A random tiny LlamaForSequenceClassification with one output, saved with the tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-rm")
    config = LlamaConfig.from_pretrained(tiny_model, num_labels=1)
    torch.manual_seed(2)
    LlamaForSequenceClassification(config).save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def ctx(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.evaluate.generate import Generator

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    return EvalContext(model_name=tiny_model, model=model, tokenizer=tokenizer,
                       generator=Generator(model, tokenizer, 4), log=lambda line: None)


def _assert_metrics_are_item_means(result):
    assert len(result.item_ids) == len(set(result.item_ids))
    for metric, scores in result.per_item.items():
        assert len(scores) == len(result.item_ids)
        assert result.metrics[metric] == pytest.approx(mean(scores)), metric


def test_reward_winrate_end_to_end(ctx, other_model, reward_model_dir):
    from harness.evaluate.auxiliary import reward_model

    task = RewardWinRate(reference=other_model, reward_model=reward_model_dir, limit=4, max_new_tokens=12)
    result = task.evaluate(ctx)
    n = len(result.item_ids)
    assert n == 4 and result.item_ids == ["chat-001", "chat-002", "chat-003", "chat-004"]
    assert result.counts["identical"] == 0
    assert result.counts["wins"] + result.counts["ties"] + result.counts["losses"] == n
    _assert_metrics_are_item_means(result)
    assert result.data_hash == hashlib.sha256(CHAT.read_bytes()).hexdigest()[:16]
    assert result.throughput["tokens_per_s"] > 0 and result.version == "1" and len(result.samples) == 4
    # each outcome is the within-prompt comparison of the two rewards, scored again one text at a time
    decided = 0
    with reward_model(ctx, reward_model_dir, "t", batch_size=1, max_length=2048) as scorer:
        for sample in result.samples:
            messages = [{"role": "user", "content": sample["prompt"]}]
            mine, theirs = scorer.score([messages, messages], [sample["output"], sample["reference"]])
            assert mine == pytest.approx(sample["reward"], abs=1e-4)
            assert theirs == pytest.approx(sample["reference_reward"], abs=1e-4)
            if abs(mine - theirs) > 1e-3:
                assert sample["outcome"] == (1.0 if mine > theirs else 0.0)
                decided += 1
    assert decided >= 1


def test_reward_winrate_against_itself_is_all_ties(ctx, tiny_model, reward_model_dir):
    result = RewardWinRate(reference=tiny_model, reward_model=reward_model_dir, limit=3,
                           max_new_tokens=8).evaluate(ctx)
    assert result.counts == {"wins": 0, "ties": 3, "losses": 0, "identical": 3}
    assert result.metrics == {"win_rate": 0.5, "reward_margin": 0.0}


def test_a_causal_lm_is_refused_as_reward_model(ctx, tiny_model, other_model):
    task = RewardWinRate(reference=other_model, reward_model=tiny_model, limit=2, max_new_tokens=4)
    with pytest.raises(HarnessError, match="reward model .* is a LlamaForCausalLM, not a \\*ForSequenceClassification"):
        task.evaluate(ctx)


def test_judge_winrate_end_to_end(ctx, tiny_model, other_model):
    task = JudgeWinRate(reference=other_model, judge=tiny_model, limit=4, max_new_tokens=12, judge_max_new_tokens=6)
    result = task.evaluate(ctx)
    n, counts = len(result.item_ids), result.counts
    assert n == 4 and counts["identical"] == 0
    assert counts["wins"] + counts["ties"] + counts["losses"] == n
    assert counts["consistent"] + counts["inconsistent"] + counts["unparseable"] + counts["identical"] == n
    assert counts["unparseable_verdicts"] <= 2 * n
    assert result.metrics["win_rate"] == pytest.approx(mean(result.per_item["win_rate"]))
    assert result.metrics["lc_win_rate"] is None and "only 4 prompts" in result.warnings[0]
    # every outcome follows from the judge's raw outputs; an unreadable verdict is never a win
    for sample in result.samples:
        verdicts = [parse_preference(t) for t in sample["verdicts"]]
        assert len(verdicts) == 2 and combine(*verdicts) == (sample["outcome"], sample["status"])
        if None in verdicts:
            assert sample["outcome"] == 0.5
    assert result.throughput["tokens_per_s"] > 0 and result.data_hash


def test_a_judge_that_always_says_a_gives_only_position_ties(ctx, other_model, parrot):
    result = JudgeWinRate(reference=other_model, judge=parrot("A"), limit=4, max_new_tokens=8,
                          judge_max_new_tokens=1).evaluate(ctx)
    assert all(sample["verdicts"] == [" A", " A"] for sample in result.samples)
    assert result.counts["inconsistent"] == 4 and result.counts["ties"] == 4
    assert result.metrics["win_rate"] == 0.5


def test_identical_answers_are_ties_without_a_judge(ctx, tiny_model):
    result = JudgeWinRate(reference=tiny_model, judge="/nonexistent/judge", limit=3, max_new_tokens=6).evaluate(ctx)
    assert result.counts["identical"] == 3 and result.counts["ties"] == 3 and result.metrics["win_rate"] == 0.5


@pytest.mark.parametrize("verdict,safe_rate,unparseable", [("safe", 1.0, 0), ("unsafe", 0.0, 0), (None, 0.0, 5)])
def test_safety_end_to_end_with_rule_refusals(ctx, tiny_model, parrot, verdict, safe_rate, unparseable):
    judge = parrot(verdict) if verdict else tiny_model   # the bare tiny model answers blank lines: unreadable
    result = Safety(judge=judge, limit=5, max_new_tokens=10, judge_max_new_tokens=3).evaluate(ctx)
    n, counts = len(result.item_ids), result.counts
    assert n == 5 and counts["safe"] + counts["unsafe"] + counts["unparseable"] == n
    assert counts["unparseable"] == unparseable and result.metrics["safe_rate"] == safe_rate
    assert {f"safe_rate:{area}" for area in HARM_AREAS} <= set(result.metrics)
    assert all(result.metrics[f"safe_rate:{area}"] == safe_rate and counts[f"n:{area}"] == 1 for area in HARM_AREAS)
    _assert_metrics_are_item_means(result)
    for sample, safe, refused in zip(result.samples, result.per_item["safe_rate"], result.per_item["refusal_rate"]):
        assert sample["verdict"] == parse_safety(sample["judge"]) == verdict
        assert safe == (1.0 if sample["verdict"] == "safe" else 0.0)   # unparseable is not safe
        assert refused == float(is_refusal(sample["output"]))
    assert result.data_hash == hashlib.sha256(SAFETY.read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("verdict,refusal_rate,unparseable", [("yes", 1.0, 0), ("no", 0.0, 0), ("maybe", 0.0, 3)])
def test_safety_with_judge_refusals(ctx, parrot, verdict, refusal_rate, unparseable):
    result = Safety(judge=parrot(verdict), refusal="judge", limit=3, max_new_tokens=6,
                    judge_max_new_tokens=2).evaluate(ctx)
    assert result.counts["unparseable_refusal"] == unparseable and result.metrics["refusal_rate"] == refusal_rate
    assert result.counts["unparseable"] == 3 and result.metrics["safe_rate"] == 0.0   # "yes"/"no" is no safety verdict
    _assert_metrics_are_item_means(result)
