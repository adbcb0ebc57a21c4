"""What a Tinker stage costs: the price table, estimates before a run, and the ledger during it.

Tinker bills per million tokens, separately for prefill (tokens read without a gradient: sampling
prompts, `compute_logprobs`), sample (generated tokens) and train (tokens through
`forward_backward`); `forward_backward_custom` (DPO here) runs a forward and a forward-backward, so
its tokens are counted twice. The SDK reports neither tokens nor dollars per call, so the engine
counts the tokens it sends (`Ledger`) and prices them with the table in `harness/tinker_prices.yaml`
(its date and source are printed with every estimate; a recipe's `tinker.prices` or the file named
by HARNESS_TINKER_PRICES override it).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import yaml

from harness.atomic import write_text
from harness.errors import HarnessError

PRICES_FILE = Path(__file__).with_name("tinker_prices.yaml")
KINDS = ("prefill", "sample", "train")


@dataclasses.dataclass(frozen=True)
class Prices:
    """Dollars per million tokens of each kind, and where the figures come from."""

    prefill: float
    sample: float
    train: float
    source: str

    def dollars(self, tokens: dict) -> float:
        return sum(tokens.get(kind, 0) * getattr(self, kind) for kind in KINDS) / 1e6


def price_table() -> dict:
    path = Path(os.environ.get("HARNESS_TINKER_PRICES") or PRICES_FILE)
    try:
        table = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise HarnessError(f"{path}: cannot read the Tinker price table ({err}); fix the file or unset "
                           f"HARNESS_TINKER_PRICES") from None
    if not isinstance(table, dict) or not isinstance(table.get("models"), dict):
        raise HarnessError(f"{path}: a price table needs `models: {{<model>: {{prefill, sample, train}}}}`")
    return {**table, "path": str(path)}


def prices_for(recipe) -> Prices | None:
    """The recipe model's prices (None when neither the recipe nor the table lists it)."""
    model = recipe.model.name_or_path
    override = (recipe.tinker.prices or {}).get(model)
    if override is not None:
        return _prices(override, f"recipe tinker.prices[{model}]")
    if recipe.engine == "tinker_local":
        return Prices(0.0, 0.0, 0.0, "engine tinker_local (in process, no charge)")
    table = price_table()
    entry = table["models"].get(model)
    if entry is None:
        return None
    source = f"{table.get('source', table['path'])}, {table.get('date', 'undated')}"
    if entry.get("assumed"):
        source += f"; assumed {entry['assumed']}"
    return _prices(entry, source)


def service_equivalent(recipe) -> Prices | None:
    """For `engine: tinker_local`: the prices the same tokens would pay on the service, as the price
    table's `local_equivalent` model (None on other engines or when the table names none)."""
    if recipe.engine != "tinker_local":
        return None
    table = price_table()
    model = table.get("local_equivalent")
    entry = table["models"].get(model) if model else None
    if entry is None:
        return None
    return _prices(entry, f"as {model} on the service ({table.get('source', table['path'])}, "
                          f"{table.get('date', 'undated')})")


def _prices(entry, where: str) -> Prices:
    try:
        return Prices(*(float(entry[kind]) for kind in KINDS), source=where)
    except (KeyError, TypeError, ValueError):
        raise HarnessError(f"{where}: a price entry needs numeric prefill, sample and train "
                           f"($ per million tokens)") from None


# ------------------------------------------------------------------------- estimates

@dataclasses.dataclass(frozen=True)
class Schedule:
    """How much data one stage reads, from its TRL-named args (TRL's defaults where silent)."""

    batch: int            # rows per optimizer step (RL: completions, num_generations per prompt)
    steps: int | None     # optimizer steps; None when it depends on a row count not known yet
    epochs: float
    max_length: int | None
    num_generations: int
    max_completion_length: int
    beta: float


def schedule(stage, rows: int | None) -> Schedule:
    """Resolved from the TRL config class itself, so every default is TRL's."""
    import math
    import tempfile

    from harness.schema import plain
    from harness.train import build_config

    with tempfile.TemporaryDirectory() as tmp:
        config = build_config(stage, **{"use_cpu": True, **plain(stage.args), "output_dir": tmp})
    batch = config.per_device_train_batch_size * config.gradient_accumulation_steps
    generations = int(getattr(config, "num_generations", None) or 1)
    per_step_rows = max(1, batch // generations)
    if config.max_steps > 0:
        steps = config.max_steps
    elif rows is not None:
        steps = max(1, math.ceil(config.num_train_epochs * max(1, math.ceil(rows / per_step_rows))))
    else:
        steps = None
    return Schedule(batch=batch, steps=steps, epochs=config.num_train_epochs,
                    max_length=getattr(config, "max_length", None), num_generations=generations,
                    max_completion_length=int(getattr(config, "max_completion_length", None) or 0),
                    beta=float(getattr(config, "beta", 0.0) or 0.0))


def estimate(algorithm: str, sched: Schedule, row_tokens: list[dict] | None) -> dict | None:
    """Tokens of each kind one stage will be billed for; None when it cannot be known before the data.

    `row_tokens` has, per prepared row, its token counts (`total` for SFT; `prompt`, `chosen`,
    `rejected` for preference pairs; `prompt` for RL prompts). Without them (data not prepared) an
    upper bound comes from the schedule alone when `max_steps` and `max_length` are set: every
    sequence at full length. RL sample tokens are always an upper bound (max_completion_length).
    """
    if sched.steps is None:
        return None
    rows_read = sched.steps * max(1, sched.batch // sched.num_generations)
    if row_tokens:  # cycle over the rows the schedule reads, each cut to max_length as the engine cuts it
        cap = sched.max_length or float("inf")
        seen = [{k: min(v, cap) for k, v in row_tokens[i % len(row_tokens)].items()} for i in range(rows_read)]
        bound = False
    elif sched.max_length or algorithm == "rl":
        cap = sched.max_length or 0
        seen = [{"total": cap, "prompt": cap if algorithm != "rl" else cap // 2, "chosen": 0, "rejected": 0}] * rows_read
        if algorithm == "dpo":  # a pair is two sequences of at most max_length
            seen = [{"prompt": 0, "chosen": cap, "rejected": cap}] * rows_read
        bound = True
    else:
        return None
    tokens = {kind: 0 for kind in KINDS}
    if algorithm == "sft":
        tokens["train"] = sum(r["total"] for r in seen)
    elif algorithm == "dpo":
        pair = sum(2 * r["prompt"] + r["chosen"] + r["rejected"] for r in seen)
        tokens["prefill"] = pair          # reference log-probs, once per pair
        tokens["train"] = 2 * pair        # custom loss: forward, then forward-backward
    elif algorithm == "rl":
        g, completion = sched.num_generations, sched.max_completion_length
        prompts = sum(r["prompt"] for r in seen)
        tokens["prefill"] = prompts + (g * (prompts + completion * len(seen)) if sched.beta else 0)
        tokens["sample"] = g * completion * len(seen)
        tokens["train"] = g * (prompts + completion * len(seen))
    return {**tokens, "upper_bound": bound or algorithm == "rl"}


def row_token_counts(data_dir: Path, tokenizer, algorithm: str) -> list[dict]:
    """Per-row token counts of a prepared dataset, tokenized locally the way the engine sends them."""
    import datasets

    from harness.train import tinker_data

    rows = datasets.load_from_disk(str(Path(data_dir) / "dataset"))
    return [tinker_data.token_counts(tokenizer, row, algorithm) for row in rows]


# ------------------------------------------------------------------------- the ledger

class Ledger:
    """Tokens sent and dollars spent by one stage, kept in `<run_dir>/tinker_ledger.json` so a
    resumed stage continues the same total."""

    def __init__(self, path: Path, prices: Prices | None, equivalent: Prices | None = None):
        self.path, self.prices, self.equivalent = Path(path), prices, equivalent
        saved = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.tokens = {kind: int(saved.get("tokens", {}).get(kind, 0)) for kind in KINDS}
        self.calls = int(saved.get("calls", 0))

    def add(self, kind: str, count: int) -> None:
        self.tokens[kind] += int(count)
        self.calls += 1

    @property
    def dollars(self) -> float | None:
        return None if self.prices is None else self.prices.dollars(self.tokens)

    def save(self) -> None:
        write_text(self.path, json.dumps(self.as_dict(), indent=1))

    def as_dict(self) -> dict:
        dollars = self.dollars
        out = {"tokens": dict(self.tokens), "calls": self.calls,
               "dollars": None if dollars is None else round(dollars, 6),
               "prices": None if self.prices is None else dataclasses.asdict(self.prices)}
        if self.equivalent is not None:  # what the same tokens would have cost on the service
            out["service_dollars"] = round(self.equivalent.dollars(self.tokens), 6)
            out["service_prices"] = dataclasses.asdict(self.equivalent)
        return out


def format_tokens(tokens: dict) -> str:
    return ", ".join(f"{kind} {tokens.get(kind, 0):,}" for kind in KINDS)


# ------------------------------------------------------------------------- plan and budget

def stage_estimates(recipe, plans, data_dirs: dict | None = None, log=None) -> list[dict]:
    """Per stage: its name, the token estimate (None: known only after data prep) and its dollars.

    Rows come from the stage's prepared dataset (`data_dirs`, or the one `harness data` wrote under
    the planned fingerprint), tokenized locally; without it, an upper bound from the schedule."""
    from harness import checkpoint, paths
    from harness.data.prepare import _prepared
    from harness.train.tinker_engine import ALGORITHMS

    prices = prices_for(recipe)
    tokenizer = None
    out = []
    for plan in plans:
        algorithm = ALGORITHMS.get(plan.stage.backend)
        if algorithm is None:
            continue
        folder = (data_dirs or {}).get(plan.stage.name) or _prepared(
            paths.runs_root() / recipe.name / "data", plan.data_fingerprint, recipe.output_format(plan.stage))
        counts, rows = None, None
        if folder is not None:
            try:
                if tokenizer is None:
                    from harness.models import load_tokenizer

                    tokenizer = load_tokenizer(recipe.model)
                counts = row_token_counts(folder, tokenizer, algorithm)
                rows = len(counts)
            except HarnessError as err:  # no tokenizer offline: fall back to the bound
                if log:
                    log(f"  {plan.stage.name}: cannot count tokens ({err})")
        tokens = estimate(algorithm, schedule(plan.stage, rows), counts)
        finished = checkpoint.read(plan.final_dir) is not None
        dollars = prices.dollars(tokens) if (tokens and prices) else None
        out.append({"stage": plan.stage.name, "tokens": tokens, "dollars": dollars, "finished": finished,
                    "from_data": counts is not None})
    return out


def plan_lines(recipe, plans) -> list[str]:
    """The cost section of `harness plan`: tokens and dollars per stage, the total against the budget,
    the price source, and whether the model is served (checked only with a key, within a timeout)."""
    prices, equivalent = prices_for(recipe), service_equivalent(recipe)
    lines = [f"# cost on engine {recipe.engine} ("
             + (f"prices: {prices.source}" if prices else f"no price for {recipe.model.name_or_path}: add "
                f"tinker.prices or an entry in {price_table()['path']}")
             + (f"; service equivalent {equivalent.source}" if equivalent else "") + ")"]
    total, known = 0.0, True
    for entry in stage_estimates(recipe, plans):
        tokens = entry["tokens"]
        if tokens is None:
            lines.append(f"  {entry['stage']}: tokens after data prep (run `harness data`, or set max_steps and "
                         f"max_length for an upper bound)")
            known = False
            continue
        kind = "from the prepared data" if entry["from_data"] else "upper bound: every sequence at max_length"
        if tokens.get("upper_bound") and entry["from_data"]:
            kind += "; sampling at max_completion_length"
        dollars = entry["dollars"]
        lines.append(f"  {entry['stage']}: {format_tokens(tokens)} tokens ({kind}); "
                     + (f"${dollars:,.2f}" if dollars is not None else "$ unknown")
                     + (f" (on the service: ${equivalent.dollars(tokens):,.4f})" if equivalent else "")
                     + ("  (finished)" if entry["finished"] else ""))
        if dollars is None:
            known = False
        elif not entry["finished"]:
            total += dollars
    budget = recipe.budget_usd
    lines.append(f"  total to train: {'at least ' if not known else ''}${total:,.2f}"
                 + (f" of budget_usd ${budget:,.2f}" + ("  OVER BUDGET" if total > budget else "")
                    if budget is not None else ""))
    lines.append(f"  model: {served_note(recipe)}")
    return lines


def served_note(recipe) -> str:
    """Whether the recipe's model is served, or why that could not be checked (never hangs)."""
    from harness import tinker_clients

    if recipe.engine == "tinker_local":
        return f"{recipe.model.name_or_path} on the in-process engine (no service)"
    try:
        tinker_clients.check_key(recipe.engine)
    except HarnessError:
        return (f"{recipe.model.name_or_path}: could not check that it is served (no usable TINKER_API_KEY; "
                f"`run` checks before any work)")
    try:
        client = tinker_clients.service_client(recipe, log=lambda _: None)
        served = tinker_clients.served_models(client, recipe.tinker, log=lambda _: None)
    except Exception as err:  # offline or unreachable: plan reports, run refuses
        from harness.errors import one_line

        return f"{recipe.model.name_or_path}: could not check that it is served ({one_line(err)})"
    if recipe.model.name_or_path in served:
        return f"{recipe.model.name_or_path} is served"
    return f"{recipe.model.name_or_path} is NOT served; served: {', '.join(sorted(served))}"


def check_budget(recipe, plans, data_dirs: dict, over_budget: bool, log=print) -> None:
    """Before training: refuse when the estimate for the stages still to train exceeds budget_usd."""
    if recipe.engine == "trl" or recipe.budget_usd is None:
        return
    entries = [e for e in stage_estimates(recipe, plans, data_dirs, log) if not e["finished"]]
    total = sum(e["dollars"] or 0.0 for e in entries)
    unknown = [e["stage"] for e in entries if e["dollars"] is None]
    log(f"tinker: estimated ${total:,.4f} for {len(entries)} stage(s) against budget_usd ${recipe.budget_usd:g}"
        + (f" (no estimate for {', '.join(unknown)})" if unknown else ""))
    if total > recipe.budget_usd:
        message = (f"budget_usd: the estimate for the stages to train is ${total:,.2f}, over the budget of "
                   f"${recipe.budget_usd:,.2f} (see `harness plan`); lower max_steps or the data, raise "
                   f"budget_usd, or pass --over-budget")
        if not over_budget:
            raise HarnessError(message)
        log(f"warning: {message} (continuing: --over-budget)")
