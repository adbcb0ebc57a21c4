"""Verifiers and rewards, shared by data generation, pair labelling, RL rewards and eval scoring.

Keeping them in one place means the Countdown problems a generator emits, the
reward RLOO optimises and the score the eval suite reports can never disagree.
A reward is a frozen dataclass registered by name (`rewards: [countdown]` in a
stage); `make(resolve)` returns the function TRL calls as
`fn(completions, **dataset_columns) -> list[float]`. Each entry's `weight`
becomes TRL's `reward_weights`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Callable, ClassVar

from harness.registry import Registry
from harness.schema import Component, param

REWARDS = Registry("reward", "harness.rewards")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reward(Component, abc.ABC):
    tag: ClassVar[str] = "reward"
    registry: ClassVar[Registry] = REWARDS

    weight: float = param(1.0, help="weight of this reward in the sum (TRL reward_weights)")

    @abc.abstractmethod
    def make(self, resolve: Callable[[str], str]) -> Callable[..., list[float]]:
        """The reward function; `resolve` maps an earlier stage name or model id to a checkpoint path."""


def completion_text(completion) -> str:
    """A completion as text, whether TRL passes a string or a list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion if m.get("role", "assistant") == "assistant")

