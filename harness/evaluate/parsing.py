"""Answer extraction from free-form generations, for eval runners.

Each helper returns None when the output holds no answer of the expected form; runners count
those as `unparseable` and score them wrong, never guess. They are the verifiers' own parsing
functions (`harness.rewards`), re-exported under the names runners use, so a training reward, a
pair label and an eval score cannot disagree on what was answered.
"""

from __future__ import annotations

from harness.rewards.countdown import extract_answer as answer_tag
from harness.rewards.gsm8k import final_number as gsm8k_number
from harness.rewards.multiple_choice import choice_letter as mmlu_letter

__all__ = ["answer_tag", "gsm8k_number", "mmlu_letter"]
