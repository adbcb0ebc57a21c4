"""YAML to plain Python trees that remember where each key was written.

PyYAML's composer keeps a line for every node; we keep one per key path so a
validation error can say `recipe.yaml:12: data.steps.2.flip_rate: ...`.
Duplicate keys are an error here (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness.errors import ConfigError

Lines = dict  # key path (tuple) -> 1-based line number



class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML read the YAML 1.2 way where PyYAML still follows YAML 1.1:

    - floats without a dot (`5e-6`) are numbers, not strings; every learning rate in a
      recipe would otherwise trip over this;
    - only `true` and `false` (any of the three capitalisations) are booleans. YAML 1.1
      also reads `yes`, `no`, `on`, `off`, `y` and `n` as booleans, which turns TRL's own
      spelling `save_strategy: no` into False ("False is not a valid SaveStrategy").
    """


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
                              list("-+0123456789."))
_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {  # the class now owns a copy (made by the call above): drop YAML 1.1 booleans
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def parse_value(text: str):
    """A command-line override value, parsed like a value in a recipe file."""
    return yaml.load(text, Loader=_Loader)


def load_text(text: str, file: str) -> tuple[object, Lines]:
    """Parse YAML text into (tree, lines); malformed YAML becomes a one-line ConfigError."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        line = mark.line + 1 if mark else None
        column = f" (column {mark.column + 1})" if mark else ""
        raise ConfigError(f"invalid YAML: {problem}{column}", file=file, line=line) from None
    lines: Lines = {}
    if node is None:
        return None, lines
    constructor = yaml.constructor.SafeConstructor()
    return _convert(node, (), lines, constructor, file), lines


def load_file(path: str | Path) -> tuple[object, Lines]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML file", file=str(path)) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason})", file=str(path)) from None
    return load_text(text, str(path))


def _convert(node, path: tuple, lines: Lines, constructor, file: str):
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        constructor.flatten_mapping(node)  # resolves `<<: *anchor` merges
        out: dict = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, file, constructor)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ConfigError(f"keys must be strings, got {key!r}", file=file,
                                  line=key_node.start_mark.line + 1, path=path)
            key = str(key)
            if key in out:
                raise ConfigError(f"duplicate key '{key}'", file=file,
                                  line=key_node.start_mark.line + 1, path=path)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, path + (key,), lines, constructor, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), lines, constructor, file)
                for i, item in enumerate(node.value)]
    return _scalar(node, path, file, constructor)


def _scalar(node, path, file, constructor):
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError("keys must be plain scalars", file=file,
                          line=node.start_mark.line + 1, path=path)
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid value: {getattr(err, 'problem', err)}", file=file,
                          line=node.start_mark.line + 1, path=path) from None
