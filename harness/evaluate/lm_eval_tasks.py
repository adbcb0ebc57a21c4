"""Finding, building and fingerprinting one lm-eval task for the `lm_eval` runner.

Ours live under `evals/tasks/`, with data paths relative to their YAML; built-in
ones are looked up in the one lm-eval folder that defines them, so no call
indexes lm-eval's ~14.7k task YAMLs (the in-process slowdown of lm-eval issue
#3207). `config_hash` and the data hash give every reported number its provenance.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, did_you_mean, one_line

TASKS_DIR = Path(__file__).resolve().parents[2] / "evals" / "tasks"


class Unreachable(HarnessError):
    """A built-in task whose data cannot be had (no network, no cached copy)."""


@dataclasses.dataclass
class LoadedTask:
    task: Any                 # lm_eval ConfigurableTask
    manager: Any              # the TaskManager that built it (small index)
    source: str               # "local:<yaml path>" or "lm-eval:<yaml path>"
    raw_config: dict          # the config before data paths were made absolute (what the hash covers)
    data_hash: str
    dataset: dict


def load_task(name: str) -> LoadedTask:
    """Build one lm-eval task: ours from evals/tasks/ (data paths made absolute), else a built-in one."""
    from lm_eval.tasks import TaskManager

    local = TaskManager(include_path=str(TASKS_DIR), include_defaults=False) if TASKS_DIR.is_dir() else None
    if local is not None and name in local.all_tasks:
        return _load_local(name, local)
    return _load_builtin(name)


def _load_local(name: str, manager) -> LoadedTask:
    from lm_eval.tasks._yaml_loader import load_yaml

    entry = manager.task_index[name]
    if entry.yaml_path is None or name in manager.all_groups or name in manager.all_tags:
        raise HarnessError(f"lm-eval task '{name}' in {TASKS_DIR} is a group or tag; this runner scores one task, "
                           f"so list its tasks as separate suite tasks")
    yaml_path = Path(entry.yaml_path)
    raw = load_yaml(yaml_path, resolve_func=True)
    config = _absolute_data_paths(raw, yaml_path.parent)
    try:
        task = manager.load([config])["tasks"][name]
    except Exception as err:   # a bad YAML or a missing data file: name the file
        raise HarnessError(f"lm-eval task '{name}' ({yaml_path}): cannot build it ({one_line(err)}); "
                           f"fix the YAML or its data files") from None
    files = _data_files(config)
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return LoadedTask(task, manager, f"local:{yaml_path}", raw, digest.hexdigest()[:16],
                      {"path": config.get("dataset_path"), "files": [f.name for f in files]})


def _load_builtin(name: str) -> LoadedTask:
    from lm_eval.tasks import TaskManager

    folder = builtin_folder(name)
    manager = TaskManager(include_path=str(folder), include_defaults=False) if folder else None
    if manager is None or name not in manager.all_tasks:
        manager = TaskManager(include_path=str(TASKS_DIR) if TASKS_DIR.is_dir() else None)  # the full index
    if name not in manager.all_tasks:
        raise HarnessError(f"lm-eval task '{name}': no such task in {TASKS_DIR} or in lm-eval "
                           f"{package_version('lm_eval')}{did_you_mean(name, manager.all_subtasks)}; fix `lm_task:`")
    if name in manager.all_groups or name in manager.all_tags:
        kids = [k for k in manager.all_subtasks if k.startswith(f"{name}_")][:3]
        hint = f" (e.g. {', '.join(kids)})" if kids else ""
        raise HarnessError(f"lm-eval task '{name}' is a group or tag; this runner scores one task, so list "
                           f"its tasks{hint} as separate suite tasks")
    try:
        with quiet("lm_eval"):
            task = manager.load([name])["tasks"][name]
    except ImportError as err:
        raise HarnessError(f"lm-eval task '{name}': a package it needs is missing ({one_line(err)}); "
                           f"install it, e.g. pip install 'harness[hub]'") from None
    except Exception as err:   # offline, hub unreachable, gated dataset
        raise Unreachable(f"lm-eval task '{name}': cannot load its data from the Hugging Face Hub "
                           f"({one_line(err)}); built-in tasks need network access once (then the datasets "
                           f"cache serves them), or write a local task under evals/tasks/") from None
    config = task.config
    split = config.test_split or config.validation_split
    data = getattr(task, "dataset", None)
    fingerprint = getattr(data[split], "_fingerprint", None) if data is not None and split in data else None
    revision = (config.dataset_kwargs or {}).get("revision")
    dataset = {"path": config.dataset_path, "name": config.dataset_name, "split": split,
               "revision": revision, "fingerprint": fingerprint}
    digest = hashlib.sha256(json.dumps(dataset, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return LoadedTask(task, manager, f"lm-eval:{manager.task_index[name].yaml_path}", {}, digest, dataset)


def builtin_folder(name: str) -> Path | None:
    """The lm-eval tasks folder that defines `name`, found without indexing all tasks:
    `<tasks>/<name>/` or `<tasks>/<prefix before the first _>/` (arc_easy -> arc/)."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    tasks = Path(list(spec.submodule_search_locations)[0]) / "tasks"
    for candidate in dict.fromkeys([name, name.split("_")[0]]):
        folder = tasks / candidate
        if candidate and folder.is_dir() and _find_yaml(name, folder):
            return folder
    return None


def first_metric(name: str) -> str:
    """The task's first metric, read from its YAML without importing lm-eval ("" when unknown)."""
    for root in (TASKS_DIR, builtin_folder(name)):
        path = _find_yaml(name, root) if root and root.is_dir() else None
        if path:
            metric_list = _plain_yaml(path).get("metric_list") or []
            first = metric_list[0].get("metric") if metric_list and isinstance(metric_list[0], dict) else None
            return first if isinstance(first, str) else ""
    return ""


@functools.lru_cache(maxsize=64)
def _find_yaml(name: str, root: Path) -> Path | None:
    for path in sorted(root.rglob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        if name in text and _plain_yaml(path).get("task") == name:
            return path
    return None


def _plain_yaml(path: Path, depth: int = 0) -> dict:
    """A task YAML as data, `include:` merged (the file's own keys win), `!function` tags as strings."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                                 if isinstance(node, yaml.ScalarNode) else None)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    includes = data.pop("include", None)
    merged: dict = {}
    for inc in ([includes] if isinstance(includes, str) else includes or [])[:8] if depth < 4 else []:
        merged.update(_plain_yaml(path.parent / inc, depth + 1))
    return {**merged, **data}


def _absolute_data_paths(config: dict, base: Path) -> dict:
    """A copy of the config whose relative local data paths are resolved against the YAML's folder."""
    import copy

    config = copy.deepcopy(config)
    kwargs = config.get("dataset_kwargs") or {}

    def fix(value):
        if isinstance(value, str):
            return value if "://" in value or Path(value).is_absolute() else str((base / value).resolve())
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    for key in ("data_files", "data_dir"):
        if key in kwargs:
            kwargs[key] = fix(kwargs[key])
    path = config.get("dataset_path")
    if isinstance(path, str) and path.startswith(("./", "../")):
        config["dataset_path"] = fix(path)
    return config


def _data_files(config: dict) -> list[Path]:
    kwargs = config.get("dataset_kwargs") or {}
    found: list[Path] = []

    def walk(value):
        if isinstance(value, str):
            p = Path(value)
            if p.is_file():
                found.append(p)
            elif p.is_dir():
                found.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(kwargs.get("data_files"))
    walk(kwargs.get("data_dir"))
    return found


def config_hash(config: dict, loaded: LoadedTask) -> str:
    """sha256 of the task config as run, with machine-specific parts (absolute data paths,
    where the config came from) replaced, so the same task hashes the same in every clone."""
    config = dict(config)
    if loaded.raw_config:
        config["dataset_kwargs"] = loaded.raw_config.get("dataset_kwargs")
        config["dataset_path"] = loaded.raw_config.get("dataset_path")
    config["metadata"] = {k: v for k, v in (config.get("metadata") or {}).items() if k != "config_source"}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class quiet:
    """Raise a library logger to WARNING+ for the block: lm-eval logs every step at INFO, and warns
    that a model object was passed (which is what we mean to do)."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.setLevel(self.level)


def package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
