"""Countdown accuracy and format rate on held-out generated problems.

The problems come from the same generator as the training data, from its
`test` split (disjoint from any `train` problem by construction) and the
suite's own seed. Answers are checked by `harness.rewards.countdown.verify`, the
verifier the RLOO reward and the data labelling use, so "correct" means the
same thing everywhere.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from typing import Literal

from harness.data import example as ex
from harness.evaluate import RUNNERS, EvalContext, EvalItem, Runner, TaskResult
from harness.schema import param


@RUNNERS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class CountdownTask(Runner):
    """Distinct held-out Countdown problems; `accuracy` (verified correct) and `format_rate` (an `<answer>` block)."""

    name = "countdown"
    version = 1
    metrics = ("accuracy", "format_rate")

    n: int = param(200, ge=1, help="problems generated (before `limit`)")
    num_numbers: tuple[int, ...] = param([3, 4], help="how many numbers a problem may have")
    max_number: int = param(99, ge=1)
    max_target: int = param(100, ge=1)
    seed: int = param(1234, help="generator seed of the eval problems")
    split: Literal["test", "validation", "all"] = param(
        "test", help="`test` (reporting) and `validation` (tuning) never overlap training problems")
    max_new_tokens: int = param(160, ge=1, help="generation budget per response")

    def _problems(self, ctx: EvalContext) -> list[dict]:
        from harness.data.sources.countdown import Countdown
        from harness.data.step import StepContext

        # small problems repeat; draw more and keep the first `n` distinct ones, so no item counts twice
        source = Countdown(kind="prompt", n=self.n * 4, num_numbers=self.num_numbers, max_number=self.max_number,
                           max_target=self.max_target, seed=self.seed, split=self.split, label=self.task_name)
        problems, seen = [], set()
        for p in source.load(StepContext(label=self.task_name, seed=self.seed)):
            key = (tuple(sorted(p["metadata"]["numbers"])), p["metadata"]["target"])
            if key not in seen:
                seen.add(key)
                problems.append(p)
            if len(problems) == self.n:
                break
        limit = ctx.limit or self.limit
        return problems[:limit] if limit else problems

    def items(self, ctx: EvalContext) -> list[EvalItem]:
        from harness.rewards.countdown import solve

        out = []
        for p in self._problems(ctx):
            meta = p["metadata"]
            solution = solve(meta["numbers"], meta["target"])
            out.append(EvalItem(p["id"], ex.prompt_text(p), solution.expression if solution else ""))
        return out

    def evaluate(self, ctx: EvalContext) -> TaskResult:
        from harness.evaluate.generate import ANSWER_CLOSED
        from harness.rewards.countdown import verify

        problems = self._problems(ctx)
        # an answer is complete at its closing tag: generation stops there instead of at max_new_tokens
        generations = ctx.generator.generate([p["prompt"] for p in problems], max_new_tokens=self.max_new_tokens,
                                             stop=[ANSWER_CLOSED])
        correct, formatted, samples = [], [], []
        reasons = collections.Counter()
        for p, (text,) in zip(problems, generations.texts):
            meta = p["metadata"]
            verdict = verify(text, meta["numbers"], meta["target"])
            correct.append(float(verdict.correct))
            formatted.append(float(verdict.formatted))
            reasons[verdict.reason] += 1
            if len(samples) < 5:
                samples.append({"id": p["id"], "numbers": meta["numbers"], "target": meta["target"],
                                "output": text, "verdict": verdict.reason})
        n = len(problems)
        data = json.dumps([[p["metadata"]["numbers"], p["metadata"]["target"]] for p in problems])
        return TaskResult(
            metrics={"accuracy": sum(correct) / n, "format_rate": sum(formatted) / n},
            item_ids=[p["id"] for p in problems], per_item={"accuracy": correct, "format_rate": formatted},
            counts={"unparseable": reasons.get("no_answer", 0), **{f"verdict:{k}": v for k, v in reasons.items()}},
            throughput=generations.throughput, version=str(self.version),
            data_hash=hashlib.sha256(data.encode()).hexdigest()[:16],
            info={"split": self.split, "seed": self.seed, "num_numbers": list(self.num_numbers)},
            samples=samples)
