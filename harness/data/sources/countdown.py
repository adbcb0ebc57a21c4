"""Countdown problems generated locally (TinyZero-style; Pan et al., 2025).

Each problem is built from a random expression over `num_numbers` numbers, so
it is solvable by construction; the exact solver then writes the worked
solution. Kinds:

- `prompt`: the question, with `numbers` and `target` as metadata (for RLOO and eval);
- `sft`: the question and a correct worked solution ending in `<answer>...</answer>`;
- `preference`: chosen is that solution; rejected is a realistic failure, one of
  wrong arithmetic, a reused number, a missing number or a broken format.

Both responses are checked with the shared verifier before they are emitted.
`num_numbers: [2]` gives easy problems; TinyZero's setting is `[3, 4]`.

`split` partitions the problem space itself: a problem (its sorted numbers and
target) belongs to `test` when its hash falls in one held-out tenth and to
`validation` when it falls in another, so training data (`split: train`, the
default), the problems hyperparameters are tuned on (`validation`) and the
eval suite's problems (`test`) are disjoint by construction, whatever seeds
they use.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Literal

from harness.data import example as ex
from harness.data.source import SOURCES, Source
from harness.errors import FieldError
from harness.rewards import countdown as verifier
from harness.schema import param

REJECTED_KINDS = ("wrong_arithmetic", "reused_number", "missing_number", "broken_format")
RejectedKind = Literal["wrong_arithmetic", "reused_number", "missing_number", "broken_format"]


def question(numbers: list[int], target: int) -> str:
    return (f"Using the numbers {numbers}, write an equation that equals {target}. "
            "Use +, -, * and /, and use each number exactly once. Reason step by step inside "
            "<think> </think>, then give only the equation inside <answer> </answer>, "
            "for example <answer>(7 - 2) * 3</answer>.")


def worked_solution(solution: verifier.Solution) -> str:
    return "<think>\n" + "\n".join(solution.steps) + "\n</think>\n" + f"<answer>{solution.expression}</answer>"


@SOURCES.register()
@dataclasses.dataclass(frozen=True)
class Countdown(Source):
    """Generated Countdown problems with an exact solver and verified answers."""

    name = "countdown"
    version = 3   # 3: a validation tenth taken out of train

    kind: Literal["prompt", "sft", "preference"] = "prompt"
    n: int = param(1000, ge=1, help="number of problems to generate")
    num_numbers: tuple[int, ...] = param([3, 4], help="how many numbers a problem may have (2 = easy)")
    min_number: int = param(1, ge=0)
    max_number: int = param(99, ge=1)
    min_target: int = param(1)
    max_target: int = param(100)
    rejected_kinds: tuple[RejectedKind, ...] = param(list(REJECTED_KINDS),
                                                     help="failure modes used for rejected answers")
    seed: int | None = param(None, help="generator seed (default: the recipe seed)")
    split: Literal["train", "validation", "test", "all"] = param(
        "train", help="train, validation and test problems never overlap; tune on validation, report on test")
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.num_numbers or any(not 2 <= k <= 6 for k in self.num_numbers):
            raise FieldError("num_numbers", "each entry must be between 2 and 6")
        if self.max_number < self.min_number:
            raise FieldError("max_number", "must be >= min_number")
        if self.max_target < self.min_target:
            raise FieldError("max_target", "must be >= min_target")
        if not self.rejected_kinds:
            raise FieldError("rejected_kinds", "needs at least one kind")

    def describe(self) -> dict:
        return {**super().describe(), "generator": "countdown", "license": "apache-2.0",
                "kind": self.kind, "n": self.n}

    def load(self, ctx):
        seed = ctx.seed if self.seed is None else self.seed
        for i in range(self.n):
            rng = random.Random(f"countdown:{seed}:{i}")
            numbers, target = self._problem(rng)
            solution = verifier.solve(numbers, target)
            messages = [ex.user(question(numbers, target))]
            meta = {"numbers": numbers, "target": target}
            if self.kind == "prompt":
                yield ex.prompt(messages, self.display_name, meta)
            elif self.kind == "sft":
                yield ex.sft(messages + [ex.assistant(worked_solution(solution))], self.display_name, meta)
            else:
                chosen = worked_solution(solution)
                rejected_kind, rejected = _rejected(rng, numbers, target, solution, self.rejected_kinds)
                assert verifier.verify(chosen, numbers, target).correct
                yield ex.preference(messages, [ex.assistant(chosen)], [ex.assistant(rejected)],
                                    self.display_name, metadata={**meta, "rejected_kind": rejected_kind})

    def _problem(self, rng: random.Random) -> tuple[list[int], int]:
        for _ in range(10_000):
            numbers = [rng.randint(self.min_number, self.max_number) for _ in range(rng.choice(self.num_numbers))]
            target = _random_value(rng, numbers)
            if (target is not None and self.min_target <= target <= self.max_target
                    and self.split in ("all", split_of(numbers, target))):
                return numbers, target
        raise ValueError("countdown: no problem found in range; widen min_target/max_target "
                         "or the number range")


def split_of(numbers: list[int], target: int) -> str:
    """'test' for one held-out tenth of problems (by a stable hash), 'validation' for another
    tenth, else 'train'."""
    import hashlib

    key = f"{sorted(numbers)}:{target}".encode()
    return SPLITS.get(hashlib.sha256(key).digest()[0] % 10, "train")


SPLITS = {0: "test", 1: "validation"}  # hash byte mod 10 -> split; the other eight tenths are `train`


def _random_value(rng: random.Random, numbers: list[int]) -> int | None:
    """Combine the numbers in random order with random exact integer operations."""
    pool = list(numbers)
    while len(pool) > 1:
        a = pool.pop(rng.randrange(len(pool)))
        b = pool.pop(rng.randrange(len(pool)))
        options = [a + b, a * b]
        if a >= b:
            options.append(a - b)
        if b and a % b == 0:
            options.append(a // b)
        pool.append(rng.choice(options))
    return pool[0]


def _rejected(rng, numbers, target, solution, kinds) -> tuple[str, str]:
    """A realistic wrong answer; falls back through the kinds until one verifies as wrong."""
    order = list(kinds)
    rng.shuffle(order)
    for kind in order + [k for k in REJECTED_KINDS if k not in order]:
        text = _make_rejected(kind, rng, numbers, target, solution)
        if text and not verifier.verify(text, numbers, target).correct:
            return kind, text
    raise AssertionError("unreachable: broken_format is always wrong")


def _make_rejected(kind, rng, numbers, target, solution) -> str | None:
    think = "<think>\n" + "\n".join(solution.steps) + "\n</think>\n"
    expression = solution.expression
    if kind == "broken_format":
        return think + f"The equation is {expression} = {target}."
    if kind == "wrong_arithmetic":
        swaps = {"+": "-", "-": "+", "*": "+", "/": "*"}
        positions = [i for i, ch in enumerate(expression) if ch in swaps and expression[i - 1] == " "]
        if not positions:
            return None
        i = rng.choice(positions)
        wrong = expression[:i] + swaps[expression[i]] + expression[i + 1:]
        return f"<think>\n{wrong} = {target}\n</think>\n<answer>{wrong}</answer>"
    tokens = _number_spans(expression)
    if kind == "reused_number" and len(set(numbers)) > 1:
        (start, end, value) = rng.choice(tokens)
        other = rng.choice([n for n in numbers if n != value])
        wrong = expression[:start] + str(other) + expression[end:]
        return f"<think>\n{wrong} = {target}\n</think>\n<answer>{wrong}</answer>"
    if kind == "missing_number" and len(numbers) > 2:
        partial = solution.steps[0].split(" = ")[0]  # the first step uses two of the given numbers
        return f"<think>\n{partial} = {target}\n</think>\n<answer>{partial}</answer>"
    return None


def _number_spans(expression: str) -> list[tuple[int, int, int]]:
    import re

    return [(m.start(), m.end(), int(m.group())) for m in re.finditer(r"\d+", expression)]
