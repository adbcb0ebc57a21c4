"""Hand-made examples and a step runner for unit tests."""

from __future__ import annotations

from harness.data import example as ex
from harness.data.step import StepContext


def pair(prompt: str, chosen: str, rejected: str, source: str = "s", **kw) -> dict:
    return ex.preference([ex.user(prompt)], [ex.assistant(chosen)], [ex.assistant(rejected)], source, **kw)


def chat(prompt: str, answer: str, source: str = "s") -> dict:
    return ex.sft([ex.user(prompt), ex.assistant(answer)], source)


def apply(step, examples, seed: int = 0, tokenizer=None):
    """(kept examples, context) after running one step."""
    ctx = StepContext(label=f"1:{step.name}", seed=seed, tokenizer_factory=(lambda: tokenizer) if tokenizer else None)
    return list(step.apply(iter(examples), ctx)), ctx
