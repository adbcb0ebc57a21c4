"""The data runner: sources, then steps in order, each cached by fingerprint.

A node's fingerprint covers (input fingerprint, name, version, parameters,
seed, and the tokenizer for steps that count tokens), so a second run with the
same recipe recomputes nothing, and changing one step's parameter recomputes
that step and those after it. Every drop is counted by step and reason.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Callable

from harness import paths
from harness.data import cache
from harness.data.step import StepContext
from harness.errors import HarnessError
from harness.fingerprint import fingerprint
from harness.schema import plain


@dataclasses.dataclass(frozen=True)
class Node:
    """One source or step of a data plan, with its cache key."""

    label: str       # "source:countdown" or "3:length_filter"
    component: object
    fingerprint: str
    is_source: bool


@dataclasses.dataclass
class DataResult:
    examples: list[dict]
    fingerprint: str
    nodes: list[Node]
    stats: list[dict]
    order: dict | None  # the step that fixed the row order, if any


def plan(data, seed: int, tokenizer_id: str, model_ids: Callable[[str], str] | None = None) -> list[Node]:
    """The nodes of a data config and their fingerprints (cheap: no data is read).

    `model_ids` maps a model a step loads (`step.model_refs()`) to its fingerprint, so on-policy
    data is regenerated exactly when the model it samples from changes."""
    model_ids = model_ids or (lambda ref: ref)
    nodes = []
    for source in data.sources:
        fp = fingerprint("source", source.name, source.version, plain(source), source.identity(), seed)
        nodes.append(Node(f"source:{source.display_name}", source, fp, True))
    previous = fingerprint("sources", [n.fingerprint for n in nodes])
    for i, step in enumerate(data.steps, start=1):
        tokenizer = tokenizer_id if step.uses_tokenizer else None
        models = [model_ids(ref) for ref in step.model_refs()]
        previous = fingerprint(previous, step.name, step.version, plain(step), step.identity(), seed, tokenizer,
                               *([models] if models else []))
        nodes.append(Node(f"{i}:{step.name}", step, previous, False))
    return nodes


def data_fingerprint(nodes: list[Node]) -> str:
    return fingerprint([n.fingerprint for n in nodes])


def planned_fingerprint(data, seed: int, tokenizer_id: str, models=None) -> str:
    """The data fingerprint that `run` would give, found without reading or computing any data, so a
    dataset prepared before can be reused as a whole: nothing decoded, nothing replayed."""
    return data_fingerprint(plan(data, seed, tokenizer_id, models.identity if models else None))


def preflight(nodes: list[Node], cache_dir: Path) -> None:
    """Before any node runs: the cheap checks of every step that will run (not cached), such as a
    judge endpoint's key and reachability, so a run fails in one line before sampling or training."""
    for node in nodes:
        if not node.is_source and not (cache.entry_dir(cache_dir, node.fingerprint) / cache.STATS).is_file():
            node.component.preflight()


def log_reused(manifest: dict, log: Callable[[str], None]) -> None:
    """The per-node lines of a run, from the manifest of a dataset reused as a whole (all cached)."""
    for entry in manifest["steps"]:
        log(_summary(entry["label"], {**entry, "cached": True}))


def run(data, seed: int, tokenizer_id: str, tokenizer_factory: Callable | None,
        cache_dir: Path | None = None, log: Callable[[str], None] = lambda _: None,
        models=None) -> DataResult:
    """Run (or replay from cache) every node; `models` loads what model-reading steps name
    (`harness.data.step_models.StepModels`) and gives their fingerprints."""
    cache_dir = Path(cache_dir or paths.cache_root())
    if tokenizer_factory is not None:  # load at most once per run, and only if a step needs it
        tokenizer_factory = functools.cache(tokenizer_factory)
    nodes = plan(data, seed, tokenizer_id, models.identity if models else None)
    preflight(nodes, cache_dir)
    examples: list[dict] = []
    all_stats, order = [], None
    for i, node in enumerate(nodes):
        inputs = None if node.is_source else examples
        if not node.is_source and nodes[i - 1].is_source:  # sources loaded: check before any step runs
            _check_metadata(nodes[i:], examples)
        if cache.exists(cache_dir, node.fingerprint):
            output, stats = cache.load(cache_dir, node.fingerprint, inputs)
            stats = {**stats, "cached": True}
        else:
            output, stats = _compute(node, inputs, seed, tokenizer_factory, data.write_rejects, cache_dir, models)
        log(_summary(node.label, stats))
        all_stats.append(stats)
        examples = examples + output if node.is_source else output
        if not node.is_source and getattr(node.component, "sets_order", False):
            order = {"step": node.label, **plain(node.component)}
        if not output:
            _fail_empty(node, stats)
    return DataResult(examples, data_fingerprint(nodes), nodes, all_stats, order)


def _compute(node: Node, inputs, seed, tokenizer_factory, keep_rejects, cache_dir, models) -> tuple[list, dict]:
    ctx = StepContext(label=node.label, seed=seed, tokenizer_factory=tokenizer_factory, keep_rejects=keep_rejects,
                      models=models)
    start, cpu = time.perf_counter(), time.process_time()
    if node.is_source:
        output = list(node.component.load(ctx))
    else:
        output = list(node.component.apply(iter(inputs), ctx))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    n_in = None if node.is_source else len(inputs)
    dropped = sum(ctx.drops.values())
    if n_in is not None and not node.component.adds_rows and len(output) != n_in - dropped:
        raise HarnessError(f"step {node.label} returned {len(output)} of {n_in} rows but reported {dropped} "
                           f"drops; a step must drop rows through ctx.drop(example, reason)")
    stats = {"label": node.label, "fingerprint": node.fingerprint, "rows_in": n_in, "rows_out": len(output),
             "dropped": dict(ctx.drops), "counters": dict(ctx.counters), "seconds": round(seconds, 3),
             "cpu_seconds": round(cpu, 3)}  # all threads of the process: steadier than wall time when shared
    cache.save(cache_dir, node.fingerprint, inputs, output, stats, ctx.rejects)
    return output, {**stats, "cached": False}


def _check_metadata(nodes: list[Node], examples: list[dict]) -> None:
    """Fail in one line, before any generation work, when a later step needs task metadata (a
    verifier's `numbers`/`target`) that the sources do not give."""
    for node in nodes:
        needed = node.component.required_metadata()
        for example in examples if needed else ():
            missing = [k for k in needed if k not in example.get("metadata", {})]
            if missing:
                raise HarnessError(f"step {node.label} needs metadata {', '.join(missing)}, which source "
                                   f"'{example['source']}' does not give (example {example['id']}); use a "
                                   f"source that carries it, or a scorer that does not need it")


def _summary(label: str, stats: dict) -> str:
    hit = "cached" if stats.get("cached") else f"{stats['seconds']:.2f}s"
    drops = ", ".join(f"{k}={v}" for k, v in sorted(stats["dropped"].items()))
    counters = ", ".join(f"{k}={v}" for k, v in sorted(stats["counters"].items()))
    rows = f"{stats['rows_out']} rows" if stats["rows_in"] is None else f"{stats['rows_in']} -> {stats['rows_out']}"
    extra = "; ".join(x for x in (drops and f"dropped {drops}", counters) if x)
    return f"{label:<24} {rows:<18} [{hit}]" + (f"  {extra}" if extra else "")


def _fail_empty(node: Node, stats: dict) -> None:
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(stats["dropped"].items())) or "no rows produced"
    what = "source" if node.is_source else "step"
    raise HarnessError(f"data: no examples left after {what} {node.label} ({reasons}); "
                       f"loosen that {what}'s settings or add data")
