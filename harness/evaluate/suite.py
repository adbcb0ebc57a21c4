"""The eval-suite file format (`evals/<suite>.yaml`), validated like recipes."""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.errors import FieldError
from harness.schema import first_repeat, param


@dataclasses.dataclass(frozen=True)
class TaskRef:
    """One task of a suite, with its own options."""

    task: str = param(help="task name: an lm-eval task or a harness scorer")
    limit: int | None = param(None, ge=1, help="evaluate only the first N items")
    args: dict[str, Any] = param({}, help="options passed to the task runner")


@dataclasses.dataclass(frozen=True)
class Suite:
    """An eval suite: the tasks a checkpoint is judged on."""

    name: str
    tasks: tuple[TaskRef, ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.tasks:
            raise FieldError("tasks", "a suite needs at least one task")
        i = first_repeat(t.task for t in self.tasks)
        if i is not None:
            raise FieldError(("tasks", i, "task"), f"task '{self.tasks[i].task}' appears twice")
