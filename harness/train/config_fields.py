"""The field names of a TRL config class, read from its source without importing it.

`harness validate` must reject a misspelt TRL argument (`learning_rat`) yet stay
fast and free of torch/trl imports. TRL configs are dataclasses, so their field
names are the annotated names in the class body and its bases; reading them
from the installed source (with `ast`) gives exactly TRL's own list, for
whatever TRL version is installed. Full construction of the config class, which
also checks types and values, happens before training and in the test suite.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from pathlib import Path


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # a top-level name: finds without importing
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@functools.cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _class_in(path: Path, name: str) -> ast.ClassDef | None:
    for node in _parse(path).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def _find_base(path: Path, name: str) -> tuple[Path, ast.ClassDef] | None:
    """Where a base class named in `path` is defined: same module, relative or package import."""
    found = _class_in(path, name)
    if found:
        return path, found
    for node in _parse(path).body:
        if not isinstance(node, ast.ImportFrom) or name not in {a.name for a in node.names}:
            continue
        if node.level:  # from .base_config import _BaseConfig
            folder = path.parent
            for _ in range(node.level - 1):
                folder = folder.parent
            target = folder.joinpath(*(node.module or "").split(".")).with_suffix(".py")
            return (target, _class_in(target, name)) if target.is_file() and _class_in(target, name) else None
        package = _package_dir(node.module.split(".")[0])  # from transformers import TrainingArguments
        if package is None:
            return None
        sub = package.joinpath(*node.module.split(".")[1:])
        candidates = [sub.with_suffix(".py")] if sub.with_suffix(".py").is_file() else sorted(sub.glob("*.py"))
        for candidate in candidates:
            if f"class {name}" in candidate.read_text(encoding="utf-8") and _class_in(candidate, name):
                return candidate, _class_in(candidate, name)
    return None


def _fields(path: Path, cls: ast.ClassDef) -> dict[str, str]:
    """name -> annotation source, bases first so a subclass's redeclaration wins."""
    fields: dict[str, str] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name):
            found = _find_base(path, base.id)
            if found:
                fields.update(_fields(*found))
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            annotation = ast.unparse(node.annotation)
            if "ClassVar" not in annotation:
                fields[node.target.id] = annotation
    return fields


@functools.cache
def field_types(module_file: str, class_name: str) -> dict[str, str] | None:
    """Fields of `class_name` in `<package>/<relative path>.py` with their annotations,
    or None if that package is not installed."""
    package, _, rest = module_file.partition("/")
    root = _package_dir(package)
    if root is None:
        return None
    path = root / rest
    cls = _class_in(path, class_name) if path.is_file() else None
    return _fields(path, cls) if cls else None


def field_names(module_file: str, class_name: str) -> frozenset[str] | None:
    types = field_types(module_file, class_name)
    return None if types is None else frozenset(types)


# Only scalar annotations are judged: TRL coerces some others in __post_init__
# (a `loss_type: list[str]` accepts "sigmoid"), and the real class checks the rest before training.
_SIMPLE = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "None": lambda v: v is None,
}


def type_problem(annotation: str, value) -> str | None:
    """Why `value` does not fit a scalar annotation such as `int` or `float | None`; None when
    it fits or when the annotation is not a plain scalar one."""
    text = re.sub(r"^(?:typing\.)?Optional\[(.*)\]$", r"\1 | None", annotation.strip())
    options = [o.strip() for o in text.split("|")]
    if any(o not in _SIMPLE for o in options) or any(_SIMPLE[o](value) for o in options):
        return None
    return f"expected {annotation}, got {value!r} ({type(value).__name__})"
