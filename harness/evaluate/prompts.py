"""Prompt sets for the open-ended eval tasks (reward and judge win rates, safety).

A prompt set is a local jsonl file or a hub dataset column. A jsonl row holds
`prompt` (a string, taken as one user turn, or a list of chat messages) and
optionally `id` and `category` (the harm area of a safety prompt, for
example). A row without an `id` gets a content hash, so ids do not shift when
rows are added or removed elsewhere in the file. `data_hash` is the sha256 of
the file's bytes (for a hub dataset: of the prompts read), which is what the
report records as the eval data's provenance.

Relative paths are taken from the working directory, then from the harness
checkout, where the shipped sets live (`evals/data/`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from harness.data import example as ex
from harness.errors import FieldError, HarnessError, one_line
from harness.evaluate import EvalContext, EvalItem, Runner
from harness.schema import param

CHECKOUT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class HubPrompts:
    """Prompts from one column of a hub dataset (needs network, or a cached copy)."""

    hub: str = param(help="dataset id, e.g. tatsu-lab/alpaca_eval")
    split: str = param("test", help="dataset split")
    column: str = param("prompt", help="column with the prompt: a string or chat messages")
    subset: str | None = param(None, help="dataset configuration name")
    revision: str | None = param(None, help="commit sha or tag; pin it for comparable scores")
    category_column: str | None = param(None, help="column with each prompt's category, if any")


@dataclasses.dataclass(frozen=True)
class Prompt:
    id: str
    messages: list
    category: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(m["content"] for m in self.messages)


@dataclasses.dataclass(frozen=True)
class PromptSet:
    prompts: list[Prompt]
    data_hash: str
    source: str


def read(spec: str | HubPrompts, limit: int | None = None, task: str = "") -> PromptSet:
    """The first `limit` prompts of a jsonl file or hub dataset column."""
    prompt_set = _read_hub(spec, task) if isinstance(spec, HubPrompts) else _read_file(spec, task)
    if not prompt_set.prompts:
        raise HarnessError(f"task '{task}': no prompts in {prompt_set.source}; add rows with a `prompt` field")
    if limit:
        prompt_set = dataclasses.replace(prompt_set, prompts=prompt_set.prompts[:limit])
    return prompt_set


def locate(path: str) -> Path:
    """A prompt file: relative to the working directory, else to the harness checkout."""
    given = Path(path).expanduser()
    if given.is_file() or given.is_absolute():
        return given
    shipped = CHECKOUT / given
    return shipped if shipped.is_file() else given


def _read_file(path: str, task: str) -> PromptSet:
    file = locate(path)
    if not file.is_file():
        raise HarnessError(f"task '{task}': prompt file not found: {path} (relative paths are taken from "
                           f"{Path.cwd()}, then {CHECKOUT}); fix `prompts:`")
    data = file.read_bytes()
    prompts, seen = [], set()
    for line_no, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise HarnessError(f"task '{task}': {where}: not a JSON object ({err.msg}); "
                               f"write one JSON object per line") from None
        if not isinstance(row, dict):
            raise HarnessError(f"task '{task}': {where}: expected a JSON object with a `prompt` field")
        prompt = _prompt(row.get("prompt"), row.get("id"), row.get("category"), where, task)
        if prompt.id in seen:
            raise HarnessError(f"task '{task}': {where}: id '{prompt.id}' appears twice; give each row its own id")
        seen.add(prompt.id)
        prompts.append(prompt)
    return PromptSet(prompts, hashlib.sha256(data).hexdigest()[:16], str(path))


def _read_hub(spec: HubPrompts, task: str) -> PromptSet:
    import datasets

    try:
        dataset = datasets.load_dataset(spec.hub, spec.subset, split=spec.split, revision=spec.revision)
    except Exception as err:  # offline, missing, gated, bad split: one line for the user
        raise HarnessError(f"task '{task}': cannot load hub dataset '{spec.hub}' (split {spec.split}): "
                           f"{one_line(err)}; check the id and split, or download it once with network "
                           f"access") from None
    for column in (spec.column, spec.category_column):
        if column and column not in dataset.column_names:
            raise HarnessError(f"task '{task}': hub dataset '{spec.hub}' has no column '{column}' "
                               f"(found: {', '.join(dataset.column_names)}); fix `prompts.column`")
    categories = dataset[spec.category_column] if spec.category_column else [None] * len(dataset)
    prompts = [_prompt(value, None, category, f"{spec.hub} row {i}", task)
               for i, (value, category) in enumerate(zip(dataset[spec.column], categories))]
    data = json.dumps([[p.messages, p.category] for p in prompts], ensure_ascii=False)
    return PromptSet(prompts, hashlib.sha256(data.encode("utf-8")).hexdigest()[:16],
                     f"{spec.hub}:{spec.split}@{spec.revision or 'unpinned'}")


def _prompt(value, row_id, category, where: str, task: str) -> Prompt:
    if isinstance(value, str) and value.strip():
        messages = [ex.user(value)]
    elif isinstance(value, list) and value and all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str) for m in value) and value[-1]["role"] == "user":
        messages = [{"role": m["role"], "content": m["content"]} for m in value]
    else:
        raise HarnessError(f"task '{task}': {where}: `prompt` must be a non-empty string or a list of "
                           f"{{role, content}} messages ending with a user turn")
    if row_id is not None and not isinstance(row_id, (str, int)):
        raise HarnessError(f"task '{task}': {where}: `id` must be a string or an integer")
    return Prompt(str(row_id) if row_id is not None else ex.content_hash(messages), messages,
                  str(category) if category is not None else None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PromptTask(Runner):
    """A task over a prompt set: the model answers each prompt, something else scores the answers."""

    prompts: str | HubPrompts = param(help="jsonl file (`prompt`, optional `id`, `category`) or "
                                           "{hub, split, column}")

    def __post_init__(self) -> None:
        if isinstance(self.prompts, str) and not self.prompts.endswith(".jsonl"):
            raise FieldError("prompts", f"expected a .jsonl file or a {{hub, split, column}} mapping, "
                                        f"got '{self.prompts}'")

    def prompt_set(self, ctx: EvalContext) -> PromptSet:
        return read(self.prompts, ctx.limit or self.limit, self.task_name)

    def items(self, ctx: EvalContext) -> list[EvalItem] | None:
        try:
            prompt_set = self.prompt_set(ctx)
        except HarnessError:
            if isinstance(self.prompts, HubPrompts):  # offline: the report says the task was not checked
                return None
            raise
        return [EvalItem(p.id, p.text) for p in prompt_set.prompts]
