"""Countdown: verifier and exact solver (TinyZero-style task).

A problem is a list of numbers and a target; an answer is an arithmetic
expression inside `<answer>...</answer>` that uses every number exactly once
with + - * / and evaluates to the target. Scoring follows TinyZero
(Pan et al., 2025): a small format score for a well-formed but wrong answer,
1.0 for a correct one. Expressions are evaluated with exact fractions over a
parsed AST, never with `eval`.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
from fractions import Fraction

from harness.rewards import REWARDS, Reward, completion_text
from harness.schema import param

ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_ALLOWED = re.compile(r"^[\d+\-*/().\s]+$")
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


@dataclasses.dataclass(frozen=True)
class Verdict:
    correct: bool
    formatted: bool
    reason: str  # "correct" or why not: no_answer, invalid_characters, numbers_mismatch, ...


def extract_answer(completion: str) -> str | None:
    """The content of the last `<answer>` block, or None."""
    found = ANSWER.findall(completion)
    return found[-1].strip() if found else None


def evaluate(expression: str) -> Fraction:
    """Exact value of an arithmetic expression; ValueError if it is not one."""
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return Fraction(node.value)
        raise ValueError("not an arithmetic expression")
    try:
        return walk(ast.parse(expression, mode="eval"))
    except (SyntaxError, ZeroDivisionError, RecursionError) as err:
        raise ValueError(str(err)) from None


def verify(completion: str, numbers: list[int], target: int) -> Verdict:
    expression = extract_answer(completion)
    if expression is None:
        return Verdict(False, False, "no_answer")
    if not expression or not _ALLOWED.match(expression):
        return Verdict(False, True, "invalid_characters")
    used = sorted(int(n) for n in re.findall(r"\d+", expression))
    if used != sorted(numbers):
        return Verdict(False, True, "numbers_mismatch")
    try:
        value = evaluate(expression)
    except ValueError:
        return Verdict(False, True, "invalid_expression")
    if value != target:
        return Verdict(False, True, "wrong_result")
    return Verdict(True, True, "correct")


def score(completion: str, numbers: list[int], target: int, format_score: float = 0.1) -> float:
    """TinyZero reward: 1.0 if correct, `format_score` if well-formed, else 0."""
    verdict = verify(completion, numbers, target)
    return 1.0 if verdict.correct else (format_score if verdict.formatted else 0.0)


# ------------------------------------------------------------------ solver

@dataclasses.dataclass(frozen=True)
class Solution:
    expression: str
    steps: tuple[str, ...]  # "a op b = c", in the order they are computed


def solve(numbers: list[int], target: int) -> Solution | None:
    """An expression using every number once that equals `target`, or None.

    Exhaustive search over pairwise combinations; integer-only intermediate
    results are tried first (what a person would write), then exact fractions.
    """
    start = [(Fraction(n), str(n), ()) for n in numbers]
    for integers_only in (True, False):
        found = _search(start, Fraction(target), integers_only)
        if found:
            return Solution(_strip_parens(found[1]), found[2])
    return None


def _search(items, target, integers_only):
    if len(items) == 1:
        return items[0] if items[0][0] == target else None
    for i, j in itertools.combinations(range(len(items)), 2):
        rest = [items[k] for k in range(len(items)) if k not in (i, j)]
        for (a, ea, sa), (b, eb, sb) in ((items[i], items[j]), (items[j], items[i])):
            for symbol, value in _combine(a, b):
                if integers_only and (value.denominator != 1 or value < 0):
                    continue
                step = f"{_fmt(a)} {symbol} {_fmt(b)} = {_fmt(value)}"
                found = _search(rest + [(value, f"({ea} {symbol} {eb})", sa + sb + (step,))],
                                target, integers_only)
                if found:
                    return found
    return None


def _combine(a, b):
    yield "+", a + b
    yield "*", a * b
    yield "-", a - b
    if b != 0:
        yield "/", a / b


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _strip_parens(expression: str) -> str:
    if expression.startswith("(") and expression.endswith(")"):
        depth = 0
        for i, ch in enumerate(expression):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(expression) - 1:
                return expression
        return expression[1:-1]
    return expression


# ------------------------------------------------------------------ reward

@REWARDS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class CountdownReward(Reward):
    """TinyZero reward on `numbers`/`target` columns: 1.0 correct, `format_score` well-formed."""

    name = "countdown"

    format_score: float = param(0.1, ge=0.0, le=1.0, help="reward for a well-formed but wrong answer")

    def make(self, resolve):
        def countdown(completions, numbers, target, **_):
            return [score(completion_text(c), list(n), int(t), self.format_score)
                    for c, n, t in zip(completions, numbers, target)]
        return countdown
