"""Countdown: verifier and exact solver (TinyZero-style task).

A problem is a list of numbers and a target; an answer is an arithmetic
expression inside `<answer>...</answer>` that uses every number exactly once
with + - * / and evaluates to the target. Scoring follows TinyZero
(Pan et al., 2025): a small format score for a well-formed but wrong answer,
1.0 for a correct one. Expressions are evaluated with exact fractions over a
parsed AST, never with `eval`.

Two scoring modes (`CountdownReward.mode`):

- `lenient` (the default, and what the eval runner and the data generator use): the last
  `<answer>` block anywhere in the completion, exact rational arithmetic with + - * / only.
- `tinyzero`: scores exactly as TinyZero's `compute_score` does, for runs that must be comparable
  with published TinyZero / CS224R numbers. It reads only the completion's **last line**, so an
  answer followed by a newline and anything else scores 0; it evaluates with Python's float
  semantics (tolerance 1e-5), so `**` and `//`, which pass TinyZero's character whitelist, are
  operators there. Evaluation is still over a parsed AST, never `eval`, and an exponent too large
  to compute scores as a malformed answer instead of hanging. TinyZero also cuts the decoded
  prompt off at "Assistant:"; TRL passes only the completion, so that step does not apply.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
from fractions import Fraction
from typing import Literal

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


def score_tinyzero(completion: str, numbers: list[int], target: int, format_score: float = 0.1) -> float:
    """TinyZero's `compute_score` semantics (see the module docstring): last line only, float
    arithmetic with a 1e-5 tolerance; 0 without an answer, `format_score` for a wrong one."""
    found = re.findall(r"<answer>(.*?)</answer>", completion.split("\n")[-1])
    if not found:
        return 0.0
    expression = found[-1].strip()
    if sorted(int(n) for n in re.findall(r"\d+", expression)) != sorted(numbers):
        return format_score
    if not _ALLOWED.match(expression):
        return format_score
    try:
        value = _evaluate_float(ast.parse(expression, mode="eval").body)
    except (ValueError, SyntaxError, ArithmeticError, RecursionError, TypeError):
        return format_score
    return 1.0 if abs(value - target) < 1e-5 else format_score


_FLOAT_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Pow: lambda a, b: a ** b}


def _evaluate_float(node):
    """Python's own arithmetic on the whitelisted grammar (what `eval` would compute)."""
    if isinstance(node, ast.BinOp) and type(node.op) in _FLOAT_OPS:
        left, right = _evaluate_float(node.left), _evaluate_float(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64 and abs(left) > 1:
            raise ValueError("exponent too large")
        return _FLOAT_OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate_float(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    raise ValueError("not an arithmetic expression")


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
    """TinyZero reward on `numbers`/`target` columns: 1.0 correct, `format_score` well-formed.

    `mode: tinyzero` reproduces TinyZero's `compute_score` exactly (last line only, float
    arithmetic); the default `lenient` is the verifier the eval suite scores with."""

    name = "countdown"

    format_score: float = param(0.1, ge=0.0, le=1.0, help="reward for a well-formed but wrong answer")
    mode: Literal["lenient", "tinyzero"] = param(
        "lenient", help="lenient: the eval verifier; tinyzero: TinyZero's compute_score (last line only)")

    def make(self, resolve):
        scorer = score_tinyzero if self.mode == "tinyzero" else score

        def countdown(completions, numbers, target, **_):
            return [scorer(completion_text(c), list(n), int(t), self.format_score)
                    for c, n, t in zip(completions, numbers, target)]
        return countdown
