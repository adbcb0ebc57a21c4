"""`harness completions`: several models' greedy answers to the same held-out prompts, side by side.

The qualitative half of a write-up: after the metrics, read what each checkpoint actually says.
Every model answers the same N prompts with greedy decoding through the eval generator
(`harness.evaluate.generate`: batched, stop rules, vLLM on a GPU when installed), so the answers
differ only because the weights do. The table is printed in the terminal and written as a CSV
with one row per prompt and one column per model (read it with `pandas.read_csv`), atomically.

Models are named as `harness eval` names them (a run folder, a hub id, `base`), or by stage name
with `--recipe` (the stage's finished checkpoint: `sft`, `dpo_1`, `dpo_2`). Prompts come from a
`.jsonl` file (`prompt` as text or chat messages, else `messages` up to the last user turn, else
`instruction`/`question`) or from a data source spec, e.g. `{source: countdown, kind: prompt,
split: test}`; the first N are used.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError, one_line

TERMINAL_CHARS = 600   # per cell in the terminal table; the CSV keeps whole answers


@dataclasses.dataclass(frozen=True)
class Prompt:
    id: str
    prompt: Any            # text, or chat messages ending with a user turn
    text: str              # what the table shows in the prompt column


# ---------------------------------------------------------------- prompts

def load_prompts(spec: str, n: int, seed: int = 0) -> list[Prompt]:
    """The first `n` prompts of a .jsonl file or of a data source spec (YAML mapping or source name)."""
    path = Path(spec)
    if spec.endswith((".jsonl", ".jsonl.gz")) or path.is_file():
        prompts = _from_jsonl(path, n)
    else:
        prompts = _from_source(spec, n, seed)
    if not prompts:
        raise HarnessError(f"--prompts {spec}: no prompts found; give a .jsonl with a `prompt` field per line "
                           f"or a source spec such as '{{source: countdown, kind: prompt, split: test}}'")
    return prompts


def _from_jsonl(path: Path, n: int) -> list[Prompt]:
    import gzip

    if not path.is_file():
        raise HarnessError(f"--prompts {path}: file not found (relative paths are taken from {Path.cwd()})")
    opener = gzip.open if path.suffix == ".gz" else open
    out: list[Prompt] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if len(out) == n:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise HarnessError(f"{path}:{number}: not valid JSON ({err}); fix that line") from None
            prompt = _prompt_of(row)
            if prompt is None:
                raise HarnessError(f"{path}:{number}: no prompt: expected a `prompt` (text or chat messages), "
                                   f"`messages`, `instruction` or `question` field")
            out.append(Prompt(str(row.get("id", number)), prompt, _shown(prompt)))
    return out


def _prompt_of(row: dict) -> Any:
    if not isinstance(row, dict):
        return None
    prompt = row.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and prompt:
        return _up_to_last_user(prompt)
    if isinstance(row.get("messages"), list):
        return _up_to_last_user(row["messages"])
    for key in ("instruction", "question"):
        if isinstance(row.get(key), str) and row[key].strip():
            extra = row.get("input")
            text = row[key] + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
            return [{"role": "user", "content": text}]
    return None


def _up_to_last_user(messages: list) -> list | None:
    """A conversation cut after its last user turn (an answer already in it is not a prompt)."""
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=None)
    return [dict(m) for m in messages[:last + 1]] if last is not None else None


def _from_source(spec: str, n: int, seed: int) -> list[Prompt]:
    import yaml

    from harness.data.source import Source
    from harness.data.step import StepContext
    from harness.errors import ConfigError
    from harness.schema import Where, build

    try:
        tree = yaml.safe_load(spec)
    except yaml.YAMLError as err:
        raise HarnessError(f"--prompts {spec!r}: not a file and not a YAML source spec ({one_line(err)})") from None
    if isinstance(tree, str):
        tree = {"source": tree, "kind": "prompt"}
    if not isinstance(tree, dict):
        raise HarnessError(f"--prompts {spec!r}: expected a .jsonl file or a source spec such as "
                           f"'{{source: countdown, kind: prompt, split: test}}'")
    try:
        source = build(Source, tree, Where(file="--prompts"))
    except ConfigError as err:
        raise HarnessError(f"--prompts {spec!r}: {err}") from None
    out: list[Prompt] = []
    for example in source.load(StepContext(label=source.display_name, seed=seed)):
        if len(out) == n:
            break
        prompt = example.get("prompt") or _up_to_last_user(example.get("messages") or [])
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        if prompt:
            out.append(Prompt(str(example["id"]), prompt, _shown(prompt)))
    return out


def _shown(prompt) -> str:
    """The prompt as the table shows it: the user turns' text (a system prompt is left out)."""
    return "\n\n".join(str(m.get("content", "")) for m in prompt if m.get("role") == "user")


# ---------------------------------------------------------------- models

def resolve_models(specs: list[str], recipe=None) -> dict[str, str]:
    """label -> what `harness eval` accepts: a stage name of `recipe` becomes its finished checkpoint,
    `base` the recipe's base model (the embedded default without a recipe); anything else is a run
    folder or a hub id, checked when it loads."""
    from harness import checkpoint

    stages = {}
    if recipe is not None:
        from harness.stages import plan_stages

        stages = {p.stage.name: p.final_dir for p in plan_stages(recipe)}
    out: dict[str, str] = {}
    for spec in specs:
        if spec in out:
            raise HarnessError(f"--models: '{spec}' is named twice; name each model once")
        if spec in stages:
            if not checkpoint.read(stages[spec]):
                raise HarnessError(f"--models {spec}: stage '{spec}' of recipe '{recipe.name}' has not been trained "
                                   f"({stages[spec]}); run the recipe first (harness run {recipe.name})")
            out[spec] = str(stages[spec])
        elif spec == "base" and recipe is not None:
            out[spec] = recipe.model.name_or_path
        else:
            out[spec] = spec
    return out


# ---------------------------------------------------------------- generation and output

def greedy_answers(ref: str, prompts: list[Prompt], max_new_tokens: int, stop: tuple[str, ...],
                   batch_size: int, log: Callable[[str], None] = print) -> list[str]:
    """One model's greedy answer to every prompt, with the eval generator."""
    import gc

    from harness.evaluate.generate import Generator, Stop
    from harness.evaluate.run import load_model, resolve_checkpoint

    model = resolve_checkpoint(ref, log)
    loaded, tokenizer = load_model(model)
    generator = Generator.create(loaded, tokenizer, model.location if model.folder else None, batch_size, log=log)
    generator.task = f"completions {ref}"
    result = generator.generate([p.prompt for p in prompts], max_new_tokens=max_new_tokens, n=1, temperature=0.0,
                                stop=[Stop.literal(s, keep=True) for s in stop] or None)
    del loaded, generator
    gc.collect()
    return [texts[0] for texts in result.texts]


def table_csv(prompts: list[Prompt], answers: dict[str, list[str]]) -> str:
    """One row per prompt: `prompt`, then one column per model (in the order given)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["prompt", *answers])
    for i, prompt in enumerate(prompts):
        writer.writerow([prompt.text, *(texts[i] for texts in answers.values())])
    return buffer.getvalue()


def show(prompts: list[Prompt], answers: dict[str, list[str]], out=None) -> None:
    """The side-by-side table in the terminal (rich), long answers shortened."""
    from rich.console import Console
    from rich.table import Table

    def short(text: str) -> str:
        return text if len(text) <= TERMINAL_CHARS else text[:TERMINAL_CHARS] + " [...]"

    table = Table(show_lines=True, expand=True)
    table.add_column("prompt", ratio=1)
    for label in answers:
        table.add_column(label, ratio=1)
    for i, prompt in enumerate(prompts):
        table.add_row(short(prompt.text), *(short(texts[i]) for texts in answers.values()), end_section=False)
    (out or Console()).print(table)


def completions(models: list[str], prompts_spec: str, n: int = 10, *, recipe=None, out: Path | None = None,
                max_new_tokens: int = 256, stop: tuple[str, ...] = (), batch_size: int = 8,
                log: Callable[[str], None] = print) -> Path:
    """Generate, write the CSV (atomically) and print the table; returns the CSV's path."""
    from harness import atomic, paths

    if n < 1:
        raise HarnessError(f"--n {n}: must be at least 1")
    if not models:
        raise HarnessError("--models: name at least one model, e.g. --models base,runs/<recipe>/<stage>-<fp>/final")
    refs = resolve_models(models, recipe)
    prompts = load_prompts(prompts_spec, n, seed=recipe.seed if recipe is not None else 0)
    if len(prompts) < n:
        log(f"--prompts {prompts_spec}: only {len(prompts)} prompts, fewer than --n {n}")
    answers = {}
    for label, ref in refs.items():
        log(f"{label}: answering {len(prompts)} prompts (greedy, up to {max_new_tokens} new tokens)")
        answers[label] = greedy_answers(ref, prompts, max_new_tokens, stop, batch_size, log)
    if out is None:
        import datetime

        stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
        out = paths.runs_root() / "completions" / f"completions-{stamp}.csv"
    atomic.write_text(Path(out), table_csv(prompts, answers))
    show(prompts, answers)
    log(f"wrote {out} ({len(prompts)} prompts x {len(answers)} models)")
    return Path(out)
