"""The verifiers: one parsing function per task, shared by RLOO rewards, pair labelling and eval
scoring, so that a reward and an eval score agree on every output."""

from __future__ import annotations

import pytest
from conftest import ROOT, write_recipe

from harness.evaluate.parsing import answer_tag, gsm8k_number, mmlu_letter
from harness.rewards import REWARDS
from harness.rewards.countdown import score, score_tinyzero, verify
from harness.rewards.gsm8k import reference_answer

GSM8K = [  # (completion, reference answer, the number it commits to)
    ("She has 3 + 4 = 7 apples.\n#### 7", "7", "7"),
    ("#### 18\n\nQuestion: Tom has 20 apples and eats 2. How many are left?\nAnswer: 18 + 2 = 20", "18", "18"),
    ("#### 18 apples, since 20 - 2 = 18. Next question: 5", "18", "18"),
    ("He lost -$5 on the deal.", "-5", "-5"),
    ("The balance is $-5.", "-5", "-5"),
    ("It costs $1,200.50 in total", "1200.5", "1200.5"),
    ("So the total is 1,234 dollars.", "1234", "1234"),
    ("The result is 3.50", "3.5", "3.5"),
    ("First 12, then 15, finally \u22123", "-3", "-3"),
    ("The answer is 41.", "42", "41"),
    ("no digits here", "3", None),
]


@pytest.mark.parametrize("completion, answer, number", GSM8K)
def test_gsm8k_reward_and_eval_parser_agree(completion, answer, number):
    reward = REWARDS.get("gsm8k")().make(lambda name: name)
    assert gsm8k_number(completion) == number
    assert reward([completion], answer=[answer]) == [float(number is not None and float(number) == float(answer))]


def test_gsm8k_reference_answers():
    assert reference_answer("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 1,072") == "1072"
    assert reference_answer("She owes #### -5") == "-5"
    assert reference_answer("no marker 12") is None


MMLU = [  # (completion, the letter it commits to)
    ("The correct answer is B", "B"),
    ("Let me think. A is wrong because... so the answer is (c).", "C"),
    ("Answer: **D**", "D"),
    ("B. Paris is the capital", "B"),
    ("I think (A) fits best", "A"),
    ("(A) and (C) both look plausible", None),
    ("Either (A) or (C) could be right", None),
    ("the answer is a bit unclear", None),
    ("The answer is A or C", None),
    ("A man walks into a bar", None),
    ("The answer is A, wait, no: the answer is D", "D"),
    ("No idea, sorry.", None),
]


@pytest.mark.parametrize("completion, letter", MMLU)
def test_multiple_choice_reward_and_eval_parser_agree(completion, letter):
    reward = REWARDS.get("multiple_choice")().make(lambda name: name)
    assert mmlu_letter(completion) == letter
    for answer in "ABCD":
        assert reward([completion], answer=[answer]) == [float(letter == answer)]


COUNTDOWN = [  # (completion, numbers, target, lenient score, tinyzero score)
    ("<answer>2 + 3</answer>", [2, 3], 5, 1.0, 1.0),
    ("<think>2 + 3 = 5</think>\n<answer>(2 + 3)</answer>", [2, 3], 5, 1.0, 1.0),
    ("<answer>2 + 3</answer>\n", [2, 3], 5, 1.0, 0.0),                # TinyZero reads the last line only
    ("<answer>2 + 3</answer>\nI hope that helps.", [2, 3], 5, 1.0, 0.0),
    ("<answer>2 ** 3</answer>", [2, 3], 8, 0.1, 1.0),                 # ** passes TinyZero's whitelist
    ("<answer>7 // 2</answer>", [7, 2], 3, 0.1, 1.0),
    ("<answer>1 / 3 * 3</answer>", [1, 3, 3], 1, 1.0, 1.0),          # exact vs within 1e-5
    ("<answer>9 ** 9 ** 9</answer>", [9, 9, 9], 5, 0.1, 0.1),         # too large: wrong, not a hang
    ("<answer>2 + 3</answer>", [2, 3], 6, 0.1, 0.1),
    ("<answer>2 + 2</answer>", [2, 3], 4, 0.1, 0.1),                  # numbers must be used exactly once
    ("<answer>3 / 0 + 2</answer>", [3, 0, 2], 5, 0.1, 0.1),
    ("<answer>2 x 3</answer>", [2, 3], 6, 0.1, 0.1),
    ("the answer is 5", [2, 3], 5, 0.0, 0.0),
]


@pytest.mark.parametrize("completion, numbers, target, lenient, tinyzero", COUNTDOWN)
def test_countdown_modes(completion, numbers, target, lenient, tinyzero):
    assert score(completion, numbers, target) == lenient
    assert score_tinyzero(completion, numbers, target) == tinyzero
    for mode, expected in (("lenient", lenient), ("tinyzero", tinyzero)):
        reward = REWARDS.get("countdown")(mode=mode).make(lambda name: name)
        assert reward([completion], numbers=[numbers], target=[target]) == [expected]
    # the eval runner's verdict is the lenient reward's: correct exactly when the reward is 1.0
    assert verify(completion, numbers, target).correct == (lenient == 1.0)
    assert (answer_tag(completion) is not None) == (lenient > 0)


def test_countdown_reward_takes_messages_and_validates_its_mode(tmp_path):
    from harness.errors import ConfigError
    from harness.recipe import load

    reward = REWARDS.get("countdown")().make(lambda name: name)
    messages = [{"role": "assistant", "content": "<answer>4 * 5</answer>"}]
    assert reward([messages], numbers=[[4, 5]], target=[20]) == [1.0]
    recipe = (ROOT / "recipes" / "countdown_rloo.yaml").read_text()
    good = write_recipe(tmp_path, recipe.replace("rewards: [countdown]", "rewards: [{reward: countdown, mode: tinyzero}]"))
    assert load(good).stages[0].rewards[0].mode == "tinyzero"
    bad = write_recipe(tmp_path, recipe.replace("rewards: [countdown]", "rewards: [{reward: countdown, mode: strict}]"), "bad")
    with pytest.raises(ConfigError, match="stages.0.rewards.0.mode"):
        load(bad)
