"""User-facing errors.

Anything a user can fix (a bad recipe, a missing column, an unreachable hub)
raises `HarnessError`. The CLI prints its one-line message and exits with 2;
tracebacks appear only with `--debug`.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix; `str(err)` is the one line the CLI prints."""


class ConfigError(HarnessError):
    """A recipe or suite that does not validate: names the file, line and key path."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 path: tuple = ()) -> None:
        self.file, self.line, self.path, self.message = file, line, tuple(path), message
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or "<recipe>"
        if self.line:
            where += f":{self.line}"
        key = dotted(self.path)
        return f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"


class FieldError(ValueError):
    """Raised from a config's `__post_init__` to blame one of its fields."""

    def __init__(self, field: str | tuple, message: str) -> None:
        self.field = field
        super().__init__(message)


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def did_you_mean(name: str, options) -> str:
    """' (did you mean 'x'?)' for a near miss, else a short list of the valid names."""
    import difflib

    options = sorted(str(o) for o in options)
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if not options:
        return ""
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f" (expected one of: {shown})"


def one_line(err: BaseException) -> str:
    """The first line of an exception's message, for errors that wrap a library's."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
