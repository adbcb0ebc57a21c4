"""The eval-suite file format (`evals/<suite>.yaml`), validated like recipes.

A suite lists tasks; each task names its runner (`runner: countdown`) and that
runner's options, its primary metric and the item fields decontamination
indexes. The suite fingerprint covers all of it, so leaderboard rows are only
compared when they were scored the same way.
"""

from __future__ import annotations

import dataclasses

from harness.errors import FieldError
from harness.evaluate import Decontamination, Runner
from harness.schema import first_repeat, param


@dataclasses.dataclass(frozen=True)
class Suite:
    """An eval suite: the tasks a checkpoint is judged on."""

    name: str
    tasks: tuple[Runner, ...]
    description: str = ""
    decontamination: Decontamination = param(Decontamination(), help="train/eval overlap checks")
    seed: int = param(0, help="seed for sampling and bootstrap resampling")

    def __post_init__(self) -> None:
        if not self.tasks:
            raise FieldError("tasks", "a suite needs at least one task")
        i = first_repeat(t.task_name for t in self.tasks)
        if i is not None:
            raise FieldError(("tasks", i, "task"), f"task '{self.tasks[i].task_name}' appears twice; "
                                                   f"give one a distinct `task:` name")
        for i, t in enumerate(self.tasks):
            if t.metrics and t.primary not in t.metrics:
                raise FieldError(("tasks", i, "metric"), f"runner '{t.name}' reports {', '.join(t.metrics)}; "
                                                         f"got '{t.primary}'")
