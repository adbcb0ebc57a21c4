"""Frozen typed configs from YAML trees, and JSON Schema from the same definitions.

A config is a frozen dataclass; its fields are its YAML keys and its type hints
are the schema. `param(...)` adds ranges and help text. Polymorphic entries (a
data source, a step) are subclasses of `Component`: the YAML names one with its
tag key (`step: dedup`) and the registry supplies the class. One walker builds
objects and another writes JSON Schema, so the two cannot drift.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, Literal, Union

from harness.errors import ConfigError, FieldError, did_you_mean


def first_repeat(values) -> int | None:
    """Index of the first value that already appeared earlier in the list, or None."""
    seen = set()
    for i, value in enumerate(values):
        if value in seen:
            return i
        seen.add(value)
    return None


def param(default: Any = dataclasses.MISSING, *, ge=None, gt=None, le=None, lt=None,
          help: str = "") -> Any:
    """A config field with optional numeric bounds and a help line (goes into the JSON Schema)."""
    meta = {k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt, help=help).items() if v not in (None, "")}
    if isinstance(default, (list, dict)):
        frozen = freeze(default)
        return dataclasses.field(default_factory=lambda: frozen, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Component:
    """Base for configs chosen by name from a registry (sources, steps).

    Subclass families set `tag` (the YAML key holding the name) and `registry`;
    concrete classes set `name` and `version` (bump the version whenever the
    output for the same parameters changes, so caches are invalidated).
    """

    tag: ClassVar[str]
    registry: ClassVar[Any]
    name: ClassVar[str]
    version: ClassVar[int] = 1


@dataclasses.dataclass
class Where:
    """Where a tree came from: for each key path, the (file, line) that wrote it.

    A merged recipe (`extends:`) mixes files, and overrides come from the
    command line; errors point at the deepest recorded ancestor of the key.
    """

    file: str | None = None
    locations: dict = dataclasses.field(default_factory=dict)  # path -> (file, line | None)

    def error(self, path: tuple, message: str) -> ConfigError:
        for cut in range(len(path), -1, -1):
            found = self.locations.get(tuple(path[:cut]))
            if found:
                return ConfigError(message, file=found[0], line=found[1], path=path)
        return ConfigError(message, file=self.file, path=path)


def build(tp: Any, value: Any, where: Where, path: tuple = ()) -> Any:
    """Check `value` against type `tp` and return the frozen config object."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return freeze(value)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        rest = [o for o in options if o is not type(None)]
        if len(rest) == 1:
            return build(rest[0], value, where, path)
        errors = []
        for option in rest:
            try:
                return build(option, value, where, path)
            except ConfigError as err:
                errors.append(err)
        deepest = max(errors, key=lambda e: len(e.path))  # the option that got furthest explains best
        if len(deepest.path) > len(path):
            raise deepest
        raise where.error(path, f"expected {' or '.join(describe(o) for o in rest)}, got {_kind(value)}")
    if value is None:
        raise where.error(path, f"expected {describe(tp)}, got null")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise where.error(path, f"expected one of {', '.join(map(repr, choices))}, got "
                                    f"{value!r}{did_you_mean(value, choices) if isinstance(value, str) else ''}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise where.error(path, f"expected a list, got {_kind(value)}")
        (item,) = [a for a in typing.get_args(tp) if a is not Ellipsis][:1] or [Any]
        return tuple(build(item, v, where, path + (i,)) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise where.error(path, f"expected a mapping, got {_kind(value)}")
        _, item = typing.get_args(tp)
        return types.MappingProxyType({k: build(item, v, where, path + (k,)) for k, v in value.items()})
    if isinstance(tp, type) and issubclass(tp, Component) and not hasattr(tp, "name"):
        return _build_component(tp, value, where, path)
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, where, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(path, f"expected true or false, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(path, f"expected an integer, got {_kind(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise where.error(path, f"expected a finite number, got {_kind(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise where.error(path, f"expected a string, got {_kind(value)}")
        return value
    raise TypeError(f"schema: unsupported type {tp!r} at {path}")


def _build_component(base: type, value: Any, where: Where, path: tuple) -> Any:
    tag = base.tag
    if isinstance(value, str):  # `- dedup` is short for `- step: dedup`
        value = {tag: value}
    if not isinstance(value, dict):
        raise where.error(path, f"expected a mapping with a '{tag}' key, got {_kind(value)}")
    if tag not in value:
        raise where.error(path, f"missing '{tag}' (the {tag} name)")
    name = value[tag]
    if not isinstance(name, str):
        raise where.error(path + (tag,), f"expected a {tag} name, got {_kind(name)}")
    try:
        cls = base.registry.get(name)
    except KeyError as err:
        raise where.error(path + (tag,), err.args[0]) from None
    if not (isinstance(cls, type) and issubclass(cls, base) and dataclasses.is_dataclass(cls)):
        raise where.error(path + (tag,), f"'{name}' is not a {tag} (expected a frozen dataclass "
                                         f"subclassing {base.__module__}.{base.__name__})")
    rest = {k: v for k, v in value.items() if k != tag}
    return _build_dataclass(cls, rest, where, path, what=f"{tag} '{name}'")


def _build_dataclass(cls: type, value: Any, where: Where, path: tuple, what: str = "") -> Any:
    if not isinstance(value, dict):
        raise where.error(path, f"expected a mapping, got {_kind(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            owner = f" for {what}" if what else ""
            raise where.error(path + (key,), f"unknown key '{key}'{owner}{did_you_mean(key, fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = path + (name,)
        if name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise where.error(path, f"missing required key '{name}'")
            continue
        kwargs[name] = build(hints[name], value[name], where, sub)
        _check_bounds(f, kwargs[name], where, sub)
    try:
        return cls(**kwargs)
    except FieldError as err:
        field = err.field if isinstance(err.field, tuple) else (err.field,)
        raise where.error(path + field, str(err)) from None
    except (ValueError, TypeError) as err:
        raise where.error(path, str(err)) from None


def _check_bounds(f: dataclasses.Field, value: Any, where: Where, path: tuple) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    meta = f.metadata
    checks = [("ge", lambda b: value >= b, ">="), ("gt", lambda b: value > b, ">"),
              ("le", lambda b: value <= b, "<="), ("lt", lambda b: value < b, "<")]
    for key, ok, sign in checks:
        if key in meta and not ok(meta[key]):
            raise where.error(path, f"expected a value {_range_text(meta)}, got {value}")


def _range_text(meta) -> str:
    parts = [f"{sign} {meta[k]}" for k, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if k in meta]
    return " and ".join(parts)


def describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if origin in (tuple, list):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (boolean)"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    if value is None:
        return "null"
    return f"{value!r} ({type(value).__name__})"


def freeze(value: Any) -> Any:
    """Deep-freeze plain YAML data: dicts become read-only mappings, lists tuples."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """The inverse of `freeze`, also for config objects: JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        if isinstance(value, Component):
            out[value.tag] = value.name
        for f in dataclasses.fields(value):
            out[f.name] = plain(getattr(value, f.name))
        return out
    if isinstance(value, (dict, types.MappingProxyType)):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------- JSON Schema

def json_schema(tp: Any) -> dict:
    """JSON Schema (draft 2020-12) for a config type, for editor autocompletion."""
    defs: dict = {}
    root = _schema(tp, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **root, "$defs": defs}


def _schema(tp: Any, defs: dict, meta: Any = None) -> dict:
    origin = typing.get_origin(tp)
    out: dict
    if tp is Any:
        out = {}
    elif origin in (Union, types.UnionType):
        out = {"anyOf": [_schema(a, defs) for a in typing.get_args(tp)]}
    elif tp is type(None):
        out = {"type": "null"}
    elif origin is Literal:
        out = {"enum": list(typing.get_args(tp))}
    elif origin in (tuple, list):
        (item,) = [a for a in typing.get_args(tp) if a is not Ellipsis][:1] or [Any]
        out = {"type": "array", "items": _schema(item, defs)}
    elif origin is dict:
        out = {"type": "object", "additionalProperties": _schema(typing.get_args(tp)[1], defs)}
    elif isinstance(tp, type) and issubclass(tp, Component) and not hasattr(tp, "name"):
        options = []
        for name in tp.registry.names():
            cls = tp.registry.get(name)
            options.append({"$ref": f"#/$defs/{tp.tag}.{name}"})
            obj = _object_schema(cls, defs)
            obj["properties"] = {tp.tag: {"const": name}, **obj["properties"]}
            obj["required"] = [tp.tag, *obj.get("required", [])]
            defs[f"{tp.tag}.{name}"] = obj
        out = {"oneOf": [*options, {"enum": tp.registry.names()}]}
    elif dataclasses.is_dataclass(tp):
        key = tp.__name__
        if key not in defs:
            defs[key] = {}
            defs[key] = _object_schema(tp, defs)
        out = {"$ref": f"#/$defs/{key}"}
    else:
        out = {"type": {int: "integer", float: "number", str: "string", bool: "boolean"}[tp]}
    if meta:
        for key, word in (("ge", "minimum"), ("le", "maximum"), ("gt", "exclusiveMinimum"), ("lt", "exclusiveMaximum")):
            if key in meta:
                out[word] = meta[key]
        if "help" in meta:
            out["description"] = meta["help"]
    return out


def _object_schema(cls: type, defs: dict) -> dict:
    hints = typing.get_type_hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        props[f.name] = _schema(hints[f.name], defs, f.metadata)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    obj = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        obj["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        obj["required"] = required
    return obj
