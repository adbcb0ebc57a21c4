"""Drop training examples that overlap eval data (train-side decontamination).

The eval data is given as an eval suite (`suite: core`: every task's items,
the fields each task indexes), as ordinary sources (`against:`, for example a
hub GSM8K test split or Countdown problems generated with the eval seed), or
both. Everything is indexed with the shared n-gram module
(`harness.decontaminate.ngrams`) that the eval-side report also uses.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.data import example as ex
from harness.data.source import Source
from harness.data.step import STEPS, Step, StepContext
from harness.errors import HarnessError
from harness.schema import param


def eval_text(example: dict, answers: bool) -> str:
    """What of an eval item is indexed: its prompt, plus its reference answer if asked."""
    text = ex.prompt_text(example)
    if answers:
        answer = example.get("metadata", {}).get("answer") or ex.response_text(example)
        text = f"{text}\n{answer}" if answer else text
    return text


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class Decontaminate(Step):
    """Drop examples sharing n-grams with the `against` eval sources.

    `mode: any` drops on any shared `ngram` (13 by default, GPT-3 style);
    `mode: coverage` drops when one example's shared n-grams cover more than
    `coverage` of an eval item's words (Tulu 3 used 8-grams over 50%).
    Drops are reasoned `contaminated:<task>` (suite tasks) or
    `contaminated:<eval source label>` (`against` sources).
    """

    name = "decontaminate"
    version = 1

    suite: str | None = param(None, help="eval suite whose tasks' items are protected (evals/<name>.yaml)")
    against: tuple[Source, ...] = param((), help="eval data sources to protect")
    field: Literal["prompt", "response", "example"] = param("example", help="training text that is scanned")
    answers: bool = param(False, help="also index the eval items' reference answers")
    ngram: int = param(13, ge=3, le=50)
    mode: Literal["any", "coverage"] = "any"
    coverage: float = param(0.5, gt=0.0, le=1.0, help="item coverage that counts as contaminated (mode: coverage)")
    common_fraction: float = param(0.05, gt=0.0, le=1.0,
                                   help="n-grams in more than this share of eval items are template, not indexed")

    def __post_init__(self) -> None:
        if not self.against and not self.suite:
            from harness.errors import FieldError

            raise FieldError("against", "needs a `suite` or at least one eval source")

    def identity(self) -> dict:
        out: dict = {"against": [s.identity() for s in self.against]}
        if self.suite:   # the suite's file content: editing a task's items re-runs the step
            from harness.evaluate.run import find_suite
            from harness.fingerprint import fingerprint

            path, _ = find_suite(self.suite)
            out["suite"] = fingerprint("suite-file", path.read_text(encoding="utf-8"))
        return out

    def eval_items(self, ctx) -> tuple[list[str], list[str]]:
        """(indexed texts, labels) of every eval item: the suite's tasks', then the `against` sources'."""
        items, labels = [], []
        if self.suite:
            from harness.evaluate import EvalContext
            from harness.evaluate.run import find_suite

            _, suite = find_suite(self.suite)
            for task in suite.tasks:
                loaded = task.items(EvalContext(model_name="", seed=suite.seed))
                if loaded is None:
                    raise HarnessError(f"step 'decontaminate': task '{task.task_name}' of suite '{self.suite}' "
                                       "cannot read its items offline; run once with network to cache them")
                items += [item.text(task.index) for item in loaded]
                labels += [task.task_name] * len(loaded)
        for source in self.against:
            sub = StepContext(label=f"{ctx.label}:{source.display_name}", seed=ctx.seed, keep_rejects=False)
            loaded = list(source.load(sub))
            if not loaded:
                raise HarnessError(f"step 'decontaminate': eval source '{source.display_name}' gave no items")
            items += [eval_text(e, self.answers) for e in loaded]
            labels += [source.display_name] * len(loaded)
        return items, labels

    def apply(self, examples, ctx):
        from harness.decontaminate.ngrams import Index, scan

        examples = list(examples)
        items, labels = self.eval_items(ctx)
        index = Index.build(items, self.ngram, self.common_fraction)
        ctx.count("eval_items", len(items))
        ctx.count("eval_items_too_short", len(index.too_short))
        matches = scan(index, [ex.TEXT_VIEWS[self.field](e) for e in examples])
        hit: dict[int, tuple] = {}
        for m in matches:
            if self.mode == "any" or m.coverage > self.coverage:
                best = hit.get(m.document)
                if best is None or m.coverage > best[1]:
                    hit[m.document] = (m.item, m.coverage)
        for i, example in enumerate(examples):
            if i in hit:
                item, coverage = hit[i]
                ctx.drop(example, f"contaminated:{labels[item]}", eval_item=items[item][:300],
                         coverage=round(coverage, 3))
            else:
                yield example
