"""Mix sources by weight or absolute count, seeded and without silent oversampling."""

from __future__ import annotations

import collections
import dataclasses

from harness.data.step import STEPS, Step
from harness.data.steps.sample import chosen_ids, rank
from harness.errors import FieldError, HarnessError
from harness.schema import param


def counts_from_weights(weights: dict[str, float], available: dict[str, int], total: int | None) -> dict[str, int]:
    """Integer counts proportional to weights (largest remainder). Without `total`,
    the largest mixture that needs no oversampling."""
    norm = sum(weights.values())
    shares = {k: w / norm for k, w in weights.items()}
    if total is None:
        total = int(min(available.get(k, 0) / s for k, s in shares.items() if s > 0))
    raw = {k: s * total for k, s in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class Mixture(Step):
    """Take `counts` examples from each source, or `weights` of a `total`.

    Examples are picked per source by hash(seed, id). Asking for more than a
    source has is an error unless `replace: true`, which repeats examples
    (each repeat gets its own id and `metadata.repeat_of`). Sources not named
    are dropped as `not_in_mixture`. The incoming order is kept.
    """

    name = "mixture"
    version = 1
    adds_rows = True

    weights: dict[str, float] | None = param(None, help="source label -> relative weight")
    counts: dict[str, int] | None = param(None, help="source label -> number of examples")
    total: int | None = param(None, ge=1, help="total size when mixing by weights")
    replace: bool = param(False, help="allow repeating examples when a source is too small")
    seed: int | None = param(None, help="default: the recipe seed")

    def __post_init__(self) -> None:
        if (self.weights is None) == (self.counts is None):
            raise FieldError("weights", "give exactly one of weights or counts")
        if self.counts is not None and self.total is not None:
            raise FieldError("total", "total only applies to weights")
        for key, table in (("weights", self.weights), ("counts", self.counts)):
            if table is not None and (not table or any(v < 0 for v in table.values())):
                raise FieldError(key, "must map source labels to non-negative numbers")
        if self.weights is not None and sum(self.weights.values()) <= 0:
            raise FieldError("weights", "must not all be zero")

    def apply(self, examples, ctx):
        seed = ctx.seed if self.seed is None else self.seed
        by_source: dict[str, list[dict]] = collections.defaultdict(list)
        examples = list(examples)
        for example in examples:
            by_source[example["source"]].append(example)
        wanted = dict(self.counts) if self.counts is not None else counts_from_weights(
            dict(self.weights), {k: len(v) for k, v in by_source.items()}, self.total)
        for label, k in wanted.items():
            have = len(by_source.get(label, []))
            if label not in by_source:
                raise HarnessError(f"step 'mixture': no examples from source '{label}' "
                                   f"(sources present: {', '.join(sorted(by_source)) or 'none'})")
            if k > have and not self.replace:
                raise HarnessError(f"step 'mixture': source '{label}' has {have} examples but {k} are "
                                   f"requested; lower the count or set replace: true")
        selected: dict[str, tuple[set, int]] = {}
        for label, rows in by_source.items():
            k = wanted.get(label, 0)
            selected[label] = (chosen_ids(rows, min(k, len(rows)), seed, f"mixture:{label}"),
                               max(k - len(rows), 0))
        position = collections.Counter()
        for example in examples:
            label = example["source"]
            if label not in wanted:
                ctx.drop(example, "not_in_mixture")
                continue
            keep, _ = selected[label]
            i = position[label]
            position[label] += 1
            if i in keep:
                yield example
            else:
                ctx.drop(example, "not_sampled")
        for label, (_, extra) in selected.items():
            rows = by_source[label]
            order = sorted(range(len(rows)), key=lambda i: rank(seed, rows[i]["id"], "mixture-repeat"))
            for r in range(extra):
                original = rows[order[r % len(rows)]]
                ctx.count("repeated")
                yield {**original, "id": f"{original['id']}-r{r // len(rows) + 1}",
                       "metadata": {**original["metadata"], "repeat_of": original["id"]}}
