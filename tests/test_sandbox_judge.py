"""The judge's side of a test run: values cross the pipes as plain data, and program objects stay handles."""

from __future__ import annotations

import json
import math

import pytest

from harness import sandbox
from harness.sandbox_judge import decode, encode, global_names, to_json

LIMITS = sandbox.Limits.for_timeout(5)


def refuse(value):
    raise TypeError(type(value).__name__)


VALUES = [None, True, False, 0, -7, 10 ** 5000, 1.5, -0.0, float("inf"), -float("inf"), 5e-324, "", "a\"b\\c\n\x00",
          "é😀", "\ud800 lone", [1, [2, (3,)]], (), (1, "x", (2.5,)), {1, 2}, frozenset({"a"}), {"k": [1], 2: (3,)},
          b"\x00\xff", bytearray(b"ab"), 1 + 2j, range(1, 10, 3), [[[]]]]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_plain_values_cross_unchanged_in_type_and_value(value):
    import sys

    sys.set_int_max_str_digits(0)
    back = decode(json.loads(to_json(encode(value, refuse))), refuse)
    assert type(back) is type(value) and back == value
    if isinstance(value, float):
        assert math.copysign(1, back) == math.copysign(1, value)


def test_nan_crosses_and_non_plain_objects_are_refused_on_the_judges_side():
    assert math.isnan(decode(json.loads(to_json(encode(float("nan"), refuse))), refuse))
    with pytest.raises(TypeError, match="object"):
        encode(object(), refuse)


@pytest.mark.parametrize("bad", [["X", []], ["L"], ["L", 1], ["D", [[1]]], ["S", [["L", []]]], ["C", "1", 2],
                                 ["R", 1, 2], {"k": 1}, ["B", "zz"], []])
def test_malformed_data_is_a_value_error_never_an_object(bad):
    with pytest.raises((ValueError, TypeError)):
        decode(bad, refuse)


def test_global_names_are_what_the_tests_may_read_minus_builtins():
    code = compile("import math\ndef check(candidate):\n    assert abs(candidate(x) - helper.value) < 1\n"
                   "check(f)\n", "<tests>", "exec")
    names = global_names(code)
    assert {"check", "f", "x", "helper", "value", "math"} <= names and "abs" not in names and "candidate" not in names


PAIRS = '''
import math
class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b
def max_chain_length(pairs, n):
    pairs = sorted(pairs, key=lambda p: p.b)
    count, end = 0, -math.inf
    for p in pairs:
        if p.a > end:
            count, end = count + 1, p.b
    return count
def squares(n):
    return (i * i for i in range(n))
def largest(pair):
    return pair
'''

PAIR_TESTS = """
assert max_chain_length([Pair(5, 24), Pair(15, 25), Pair(27, 40), Pair(50, 60)], 4) == 3
assert math.isclose(max_chain_length([Pair(1, 2)], 1), 1.0)     # math: imported by the solution, as in MBPP
assert list(squares(4)) == [0, 1, 4, 9] and sum(squares(3)) == 5
p = largest(Pair(3, 4))
assert p.a == 3 and p.b == 4 and p != Pair(3, 4) and p == p
"""


def test_program_objects_are_handles_the_tests_can_build_pass_and_read():
    verdict = sandbox.run_tests(PAIRS, sandbox.TestCode(PAIR_TESTS, "max_chain_length"), LIMITS)
    assert verdict.status == "passed", verdict.reason
    calls = int(verdict.reason.split("(")[1].split()[0])
    assert calls >= 14   # every constructor, call, iteration step and attribute read went over the pipes


def test_a_handle_never_equals_a_value():
    verdict = sandbox.run_tests(PAIRS, sandbox.TestCode("assert largest(Pair(1, 2)) == Pair(1, 2)", "largest"), LIMITS)
    assert verdict.status == "failed" and verdict.reason.startswith("assertion failed")


def test_exceptions_the_program_raises_can_be_caught_by_the_tests():
    tests = "try:\n    f(0)\n    raised = False\nexcept ZeroDivisionError:\n    raised = True\nassert raised\n"
    ok = sandbox.run_tests("def f(x):\n    return 1 / x", sandbox.TestCode(tests, "f"), LIMITS)
    assert ok.status == "passed", ok.reason
    exits = sandbox.run_tests("import sys\ndef f(x):\n    sys.exit(0)", sandbox.TestCode("f(1)", "f"), LIMITS)
    assert exits.status == "failed" and exits.reason == "error: SystemExit: 0 (test line 1)"


def test_numpy_numbers_count_as_the_numbers_they_hold():
    solution = "import numpy\ndef f():\n    return numpy.int64(3), numpy.float64(0.5), numpy.bool_(True)"
    verdict = sandbox.run_tests(solution, sandbox.TestCode("assert f() == (3, 0.5, True)", "f"),
                                sandbox.Limits.for_timeout(10))
    assert verdict.status == "passed", verdict.reason
