"""Recipes: YAML -> `extends:` deep merge -> dotted overrides -> frozen, validated config.

Overrides (`data.steps.2.flip_rate=0.2`, `seed=3`) edit the merged YAML tree
before anything is constructed, so they are validated exactly like the file.
Every error names the file, the line and the key path, in one line.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Literal

import yaml

from harness import yaml_tree
from harness.data.output import CONVERT
from harness.data.source import Source
from harness.data.step import Step
from harness.errors import ConfigError, FieldError, did_you_mean
from harness.evaluate.suite import Suite
from harness.schema import Where, build, first_repeat, param
from harness.rewards import Reward
from harness.tinker_clients import ENGINES, TinkerConfig
from harness.train import BACKENDS, backend_spec, check_args

EMBEDDED_DEFAULT = "embedded:smollm2-135m-instruct"
Kind = Literal["sft", "preference", "prompt"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The base model; its tokenizer also counts tokens for the data steps."""

    name_or_path: str = param(EMBEDDED_DEFAULT, help="hub id, local path, or embedded:<name>")
    revision: str | None = None
    tokenizer: str | None = param(None, help="tokenizer id or path, if not the model's")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = param("auto", help="weights dtype when loading")
    lora: dict[str, Any] | None = param(None, help="LoRA: keys passed verbatim to peft.LoraConfig")
    qlora: bool = param(False, help="load the base weights in 4-bit (bitsandbytes, GPU only); needs lora")
    chat_template: str | None = param(None, help="a Jinja chat template (or a path to one) to use instead")

    def __post_init__(self) -> None:
        if self.qlora and self.lora is None:
            raise FieldError("qlora", "QLoRA trains LoRA adapters: add a `lora:` block (e.g. {r: 16})")
        if self.lora is not None:
            from harness.train.lora import check_lora_keys

            problem = check_lora_keys(self.lora)
            if problem:
                raise FieldError(("lora", problem[0]), problem[1])


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Sources, then steps in order, written in one TRL dataset format."""

    sources: tuple[Source, ...]
    steps: tuple[Step, ...] = ()
    format: Kind | None = param(None, help="output format; default: what the first stage's trainer needs")
    write_rejects: bool = param(True, help="write dropped rows to rejects/<step>.jsonl")

    def __post_init__(self) -> None:
        if not self.sources:
            raise FieldError("sources", "needs at least one source")
        i = first_repeat(s.display_name for s in self.sources)
        if i is not None:
            raise FieldError(("sources", i), f"two sources are labelled '{self.sources[i].display_name}'; "
                                             f"set `label:` on one")
        provided: set[str] = set()
        for i, step in enumerate(self.steps):
            missing = [need for need in step.requires if need not in provided]
            if missing:
                maker = {"candidates": "a `generate` step", "scores": "a `score` step"}
                hint = " and ".join(maker.get(m, m) for m in missing)
                raise FieldError(("steps", i), f"step '{step.name}' needs {' and '.join(missing)} from an earlier "
                                               f"step; add {hint} before it")
            provided.update(step.provides)


@dataclasses.dataclass(frozen=True)
class Iterate:
    """Repeat a stage: iterative DPO (Xu et al., 2023) and Self-Rewarding LMs (Yuan et al., 2024).

    A stage with `iterate: {iterations: K}` becomes stages `<name>_1 .. <name>_K` when the recipe
    loads. Round k starts from round k-1's checkpoint (round 1 from the stage's `init_from`), and in
    its data `model: policy` names that same starting model, so round k samples (and, with a
    judge or reward scorer on `policy`, scores) with the model it is about to improve. A `shard`
    step without `block:` takes block k of one seeded order of the prompt pool, so rounds train on
    disjoint prompts.
    """

    iterations: int = param(ge=1, le=100, help="how many rounds: stages <name>_1 .. <name>_K")
    reference: Literal["previous", "start"] = param(
        "previous", help="trl_dpo reference of round k: round k-1's model (previous), or round 1's start (start)")
    evaluate: bool = param(True, help="evaluate every round's checkpoint on the recipe's suite (a leaderboard row "
                                      "each), not only the recipe's last stage")


@dataclasses.dataclass(frozen=True)
class Iteration:
    """Round `index` of `count` of the iterative stage `group` (set by expansion, not written in YAML)."""

    group: str
    index: int
    count: int
    evaluate: bool


@dataclasses.dataclass(frozen=True)
class StageConfig:
    """One training stage; `args` pass verbatim to the backend's TRL config class."""

    name: str
    backend: str = param(help="trl_sft, trl_dpo, trl_reward or trl_rloo")
    args: dict[str, Any] = param({}, help="passed verbatim to SFTConfig/DPOConfig/RewardConfig/RLOOConfig")
    data: DataConfig | None = param(None, help="this stage's own data (default: the recipe's)")
    init_from: str | None = param(None, help="an earlier stage to start from (default: the previous one)")
    reference: str | None = param(None, help="DPO reference: an earlier stage or a model id (default: the start)")
    rewards: tuple[Reward, ...] = param((), help="RLOO rewards, weighted by each entry's `weight`")
    keep_checkpoints: bool = param(False, help="keep the checkpoint-N resume points (and one at the end of "
                                               "training) after final/ is written; by default they are removed")
    iterate: Iterate | None = param(None, help="repeat this stage: K rounds of (build its data from the current "
                                               "policy, train), stages <name>_1 .. <name>_K")
    #: set when an `iterate:` stage is expanded (never a YAML key): which round of which stage this is
    iteration: Iteration | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        try:
            spec = backend_spec(self.backend)
        except KeyError as err:
            raise FieldError("backend", err.args[0]) from None
        problem = check_args(spec, self.args)
        if problem:
            raise FieldError(("args", problem[0]), problem[1])
        if self.backend == "trl_rloo" and not self.rewards:
            raise FieldError("rewards", "trl_rloo needs at least one reward, e.g. `rewards: [countdown]`")
        if self.backend != "trl_rloo" and self.rewards:
            raise FieldError("rewards", f"only trl_rloo stages take rewards, not {self.backend}")
        if self.reference is not None and self.backend != "trl_dpo":
            raise FieldError("reference", f"only trl_dpo stages take a reference model, not {self.backend}")
        if self.iterate is not None:
            if self.reference is not None:
                raise FieldError("reference", "an iterative stage sets its reference with `iterate.reference` "
                                              "(previous or start); remove `reference:`")
            if self.iterate.reference != "previous" and self.backend != "trl_dpo":
                raise FieldError(("iterate", "reference"), f"only trl_dpo stages take a reference model, "
                                                           f"not {self.backend}")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A post-training recipe: data, training stages and the eval suite."""

    name: str
    data: DataConfig | None = None
    seed: int = param(0, ge=0)
    model: ModelConfig | str = param(ModelConfig(), help="a model config, or just its name_or_path")
    stages: tuple[StageConfig, ...] = ()
    eval: str | None = param(None, help="eval suite name (evals/<name>.yaml)")
    description: str = ""
    engine: Literal[ENGINES] = param("trl", help="trl (local TRL trainers), tinker (Thinking Machines' service) or "
                                                 "tinker_local (the same client API in process, offline)")
    tinker: TinkerConfig = param(TinkerConfig(), help="settings read only by the Tinker engines")
    budget_usd: float | None = param(None, gt=0, help="Tinker engines: refuse a run estimated above this, and "
                                                      "stop (state saved) before spending past it")

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            object.__setattr__(self, "model", ModelConfig(name_or_path=self.model))
        from harness.train.tinker_engine import recipe_problem

        problem = recipe_problem(self)  # stages as written (before any expansion), so paths index the file
        if problem:
            raise FieldError(*problem)
        if self.data is None and not (self.stages and all(s.data for s in self.stages)):
            raise FieldError("data", "missing: give `data:` or a `data:` block in every stage")
        written = self.stages
        repeat = first_repeat(s.name for s in written)
        if repeat is not None:
            raise FieldError(("stages", repeat, "name"), f"stage name '{written[repeat].name}' is used twice")
        stages, origin = expand_iterations(written, self.data, self.model.name_or_path)
        object.__setattr__(self, "stages", stages)
        names = [s.name for s in stages]
        repeat = first_repeat(names)
        if repeat is not None:
            group = stages[repeat].iteration or next((s.iteration for s in stages if s.name == names[repeat]), None)
            raise FieldError(("stages", origin[repeat], "name"), f"stage name '{names[repeat]}' is used twice"
                             + (f" (the rounds of '{group.group}' are named {group.group}_1 .. {group.group}_"
                                f"{group.count})" if group else ""))
        for i, stage in enumerate(stages):
            at = origin[i]   # the stage's index in the file, for error paths
            if stage.init_from is not None and stage.init_from not in names[:i]:
                raise FieldError(("stages", at, "init_from"), f"'{stage.init_from}' is not an earlier stage"
                                 + did_you_mean(stage.init_from, names[:i]))
            self._check_format(stage, at, own_data=written[at].data is not None)
            data_key = ("stages", at, "data") if written[at].data else ("data",)
            for j, step in enumerate(self.data_for(stage).steps):  # data built from a stage's model
                if getattr(step, "needs_iteration", lambda: False)():
                    raise FieldError((*data_key, "steps", j), f"step '{step.name}' has no `block:`; give one, or "
                                     f"add `iterate:` to stage '{stage.name}' so each round takes its own block")
                for ref in step.model_refs():
                    if ref == POLICY:
                        raise FieldError((*data_key, "steps", j), _POLICY_OUTSIDE.format(stage.name))
                    if ref in names[i:]:
                        raise FieldError((*data_key, "steps", j), f"'{ref}' is not an earlier stage than "
                                         f"'{stage.name}', whose data this is; data can only sample from a "
                                         f"stage that trains before it")
            refs = {("reference",): stage.reference}  # names of stages this one loads a model from
            refs.update({("rewards", j, "model"): getattr(r, "model", None) for j, r in enumerate(stage.rewards)})
            for key, ref in refs.items():
                if ref == POLICY:
                    raise FieldError(("stages", at, *key), _POLICY_OUTSIDE.format(stage.name))
                if ref in names[i:]:
                    raise FieldError(("stages", at, *key), f"'{ref}' is not an earlier stage")

    def _check_format(self, stage: StageConfig, at: int, own_data: bool) -> None:
        need = BACKENDS[stage.backend].data_format
        data, where = (self.data_for(stage), ("stages", at, "data", "format")) if own_data else \
            (self.data, ("data", "format"))
        have = data.format
        if have is None or have == need or (have, need) in CONVERT:
            return
        raise FieldError(("stages", at, "backend"), f"backend '{stage.backend}' needs {need} data but "
                         f"{'.'.join(map(str, where))} is {have}; change one of them")

    def data_for(self, stage: StageConfig | None) -> DataConfig:
        return stage.data if stage is not None and stage.data is not None else self.data

    def output_format(self, stage: StageConfig | None) -> str | None:
        """The TRL format a stage's data is written in (the recipe data's own format without stages)."""
        if stage is not None:
            return BACKENDS[stage.backend].data_format
        return self.data_for(stage).format


# ------------------------------------------------------------- iterations

POLICY = "policy"   # in an iterative stage's data: the model the current round starts from
_POLICY_OUTSIDE = ("'policy' (the current round's model) only has a meaning in the data of an iterative stage; "
                   "add `iterate: {{iterations: K}}` to stage '{}', or name a model (base, an earlier stage, a path)")


def expand_iterations(stages: tuple[StageConfig, ...], recipe_data: DataConfig | None,
                      base_model: str) -> tuple[tuple[StageConfig, ...], list[int]]:
    """Stages with every `iterate:` stage replaced by its rounds, and each one's index in the file.

    Round k of stage `dpo` is stage `dpo_k`: it starts from `dpo_{k-1}` (round 1 from the stage's
    own start), its data names that start wherever it said `policy`, a `shard` step without
    `block:` takes block k, and its DPO reference is its start (`iterate.reference: previous`) or
    round 1's start (`start`). A later stage that names `dpo` means the last round.
    """
    out: list[StageConfig] = []
    origin: list[int] = []
    last_round: dict[str, str] = {}   # iterative stage -> its last round, for the stages after it
    for i, stage in enumerate(stages):
        if stage.iterate is None:
            out.append(_renamed_stage(stage, last_round) if last_round else stage)
            origin.append(i)
            continue
        plan = stage.iterate
        start = last_round.get(stage.init_from, stage.init_from) or (out[-1].name if out else None)
        data = stage.data if stage.data is not None else recipe_data
        for k in range(1, plan.iterations + 1):
            policy = start if k == 1 else f"{stage.name}_{k - 1}"
            names = {**last_round, POLICY: policy or "base"}
            round_data = _renamed_data(data, names, k)
            reference = None   # the round's start
            if plan.reference == "start" and k > 1:
                reference = start or base_model
            rewards = tuple(_renamed(r, names) for r in stage.rewards)
            expanded = dataclasses.replace(
                stage, name=f"{stage.name}_{k}", iterate=None, reference=reference, rewards=rewards,
                init_from=(last_round.get(stage.init_from, stage.init_from) if k == 1 else policy),
                data=None if round_data is recipe_data else round_data)
            object.__setattr__(expanded, "iteration", Iteration(stage.name, k, plan.iterations, plan.evaluate))
            out.append(expanded)
            origin.append(i)
        last_round[stage.name] = f"{stage.name}_{plan.iterations}"
    return tuple(out), origin


def _renamed_stage(stage: StageConfig, names: dict[str, str]) -> StageConfig:
    """A stage after iterative ones, with references to an iterative stage's name made to its last round."""
    changes = {key: names[value] for key in ("init_from", "reference") if (value := getattr(stage, key)) in names}
    rewards = tuple(_renamed(r, names) for r in stage.rewards)
    if rewards != stage.rewards:
        changes["rewards"] = rewards
    if stage.data is not None and (data := _renamed_data(stage.data, names, None)) is not stage.data:
        changes["data"] = data
    return dataclasses.replace(stage, **changes) if changes else stage


def _renamed_data(data: DataConfig | None, names: dict[str, str], round_index: int | None) -> DataConfig | None:
    """`data` with its steps' model references renamed, and (in round k) `shard` steps given block k."""
    if data is None:
        return None
    steps = []
    for step in data.steps:
        step = _renamed(step, names)
        if round_index is not None and hasattr(step, "for_iteration"):
            step = step.for_iteration(round_index)
        steps.append(step)
    steps = tuple(steps)
    return data if all(a is b for a, b in zip(steps, data.steps)) else dataclasses.replace(data, steps=steps)


def _renamed(component, names: dict[str, str]):
    """A step, scorer or reward with each model it loads (`model_refs()`, or a `model` field) renamed by
    `names`; fields holding a nested component (a step's scorer) are renamed recursively."""
    refs = set(component.model_refs()) if hasattr(component, "model_refs") else {getattr(component, "model", None)}
    changes = {}
    for f in dataclasses.fields(component):
        if not f.init:
            continue
        value = getattr(component, f.name)
        if isinstance(value, str) and value in refs and value in names:
            changes[f.name] = names[value]
        elif dataclasses.is_dataclass(value) and not isinstance(value, type) and hasattr(value, "model_refs"):
            renamed = _renamed(value, names)
            if renamed is not value:
                changes[f.name] = renamed
    return dataclasses.replace(component, **changes) if changes else component


# ----------------------------------------------------------------- loading

CHECKOUT = Path(__file__).resolve().parents[1]
HARNESS_RECIPES = CHECKOUT / "recipes"   # the shipped recipes, which a user's own recipe may extend
HARNESS_EVALS = CHECKOUT / "evals"


def recipes_root(path: Path) -> Path:
    """The `recipes/` folder a recipe lives in (for `extends:` by name), else its own folder."""
    for parent in path.resolve().parents:
        if parent.name == "recipes":
            return parent
    return path.resolve().parent


NOT_RECIPES = ("accelerate", "studies")  # folders under recipes/ of launcher configs and sweep files


def _is_recipe(path: Path, folder: Path) -> bool:
    return not set(NOT_RECIPES) & set(path.relative_to(folder).parts)


def find_recipe(name: str, recipes_dir: Path | str = "recipes") -> Path:
    """A recipe by path or by name (`filtered_dpo` -> recipes/**/filtered_dpo.yaml)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError("file not found", file=str(path))
        return path
    recipes_dir = Path(recipes_dir)
    folders = [recipes_dir] + ([HARNESS_RECIPES] if HARNESS_RECIPES.is_dir() and not (
        recipes_dir.is_dir() and recipes_dir.resolve() == HARNESS_RECIPES.resolve()) else [])
    for folder in folders:  # the given folder first, then the shipped recipes (from a user's own project)
        found = sorted(p for p in folder.rglob(f"{name}.yaml") if _is_recipe(p, folder))
        if found:
            return found[0]
    if any(next(folder.rglob(f"studies/{name}.yaml"), None) for folder in folders):
        raise ConfigError(f"'{name}' is a sweep (recipes/studies/), not a recipe; run it with `harness sweep run "
                          f"{name}` or `make sweep S=recipes/studies/{name}.yaml`", file=str(recipes_dir / f"{name}.yaml"))
    known = [p.stem for folder in folders for p in folder.rglob("*.yaml") if _is_recipe(p, folder)]
    raise ConfigError(f"no recipe named '{name}' under {' or '.join(f'{f}/' for f in folders)}"
                      f"{did_you_mean(name, known)}", file=str(recipes_dir / f"{name}.yaml"))


def load_tree(path: Path, seen: tuple = ()) -> tuple[dict, dict]:
    """The merged YAML tree of a recipe and its `extends:` chain, with locations."""
    tree, lines = yaml_tree.load_file(path)
    file = str(path)
    if tree is None:
        raise ConfigError("empty recipe file", file=file)
    if not isinstance(tree, dict):
        raise ConfigError(f"a recipe must be a mapping of keys, got a {type(tree).__name__}", file=file, line=1)
    locations = {p: (file, line) for p, line in lines.items()}
    tree.setdefault("name", path.stem)  # a child recipe is named after its own file, not its parent
    parent_name = tree.pop("extends", None)
    if parent_name is None:
        return tree, locations
    where = (file, lines.get(("extends",)))
    if not isinstance(parent_name, str):
        raise ConfigError("expected the name or path of a recipe", file=where[0], line=where[1], path=("extends",))
    parent_path = _resolve_parent(parent_name, path, where)
    if parent_path.resolve() in seen:
        raise ConfigError(f"circular extends via {parent_path}", file=where[0], line=where[1], path=("extends",))
    base, base_locations = load_tree(parent_path, seen + (path.resolve(),))
    merged = deep_merge(base, tree)
    return merged, _merged_locations(merged, locations, base_locations)


def _resolve_parent(name: str, child: Path, where) -> Path:
    """The recipe an `extends:` names: beside the child first, then (recursively) in the `recipes/`
    folder the child lives in, then in the harness's own `recipes/`, so a recipe kept in a user's
    project can extend a shipped one by name."""
    child = child.resolve()
    folders = [child.parent]
    for root in (recipes_root(child), HARNESS_RECIPES.resolve()):
        if root.is_dir() and root not in folders:
            folders.append(root)
    for i, folder in enumerate(folders):
        candidates = [folder / name, folder / f"{name}.yaml", folder / f"{name}.yml"]
        if i > 0:  # recipe folders are searched recursively, shallowest match first
            stem = Path(name).name.removesuffix(".yaml").removesuffix(".yml")
            found = [p for p in folder.rglob(f"{stem}.yaml") if _is_recipe(p, folder)]
            candidates += sorted(found, key=lambda p: (len(p.parts), str(p)))
        for candidate in candidates:
            if candidate.is_file() and candidate.resolve() != child:
                return candidate
    known = {p.stem for p in child.parent.glob("*.yaml")} | {
        p.stem for folder in folders[1:] for p in folder.rglob("*.yaml") if _is_recipe(p, folder)}
    looked = f"beside it in {folders[0]}/" + "".join(f", then in {f}/ (recursively)" for f in folders[1:])
    raise ConfigError(f"no recipe '{name}' to extend: looked {looked}{did_you_mean(name, known - {child.stem})}",
                      file=where[0], line=where[1], path=("extends",))


def deep_merge(base: Any, child: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced by the child's value."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for key, value in child.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return child


def _merged_locations(tree: Any, child: dict, base: dict, path: tuple = ()) -> dict:
    out = {}
    found = child.get(path) or base.get(path)
    if found:
        out[path] = found
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = enumerate(tree)
    else:
        items = ()
    for key, value in items:
        out.update(_merged_locations(value, child, base, path + (key,)))
    return out


def apply_override(tree: dict, override: str, locations: dict) -> None:
    """Set `a.b.2.c=value` (value parsed as YAML) on the tree, in place."""
    where = ("command line", None)
    if "=" not in override:
        raise ConfigError(f"override '{override}' must look like key.path=value", file=where[0])
    dotted_key, _, raw = override.partition("=")
    try:
        value = yaml_tree.parse_value(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    keys: list = []
    node: Any = tree
    parts = dotted_key.strip().split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise ConfigError(f"override '{override}': index '{part}' is out of range "
                                  f"(list of {len(node)})", file=where[0], path=tuple(keys))
            part = int(part) % len(node)
        elif not isinstance(node, dict):
            raise ConfigError(f"override '{override}': '{'.'.join(map(str, keys))}' is not a mapping or list",
                              file=where[0], path=tuple(keys))
        keys.append(part)
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and part not in node:
                node[part] = {}
            node = node[part]
    locations[tuple(keys)] = (f"override {override}", None)


def load(name_or_path: str | Path, overrides: tuple[str, ...] = (), recipes_dir: str | Path = "recipes") -> Recipe:
    """Load, merge, override and validate a recipe."""
    path = find_recipe(str(name_or_path), recipes_dir)
    tree, locations = load_tree(path)
    tree = copy.deepcopy(tree)
    for override in overrides:
        apply_override(tree, override, locations)
    recipe = build(Recipe, tree, Where(file=str(path), locations=locations))
    check_suite(recipe, path, locations)
    return recipe


def suites_dir(recipe_path: Path) -> Path:
    root = recipes_root(recipe_path)
    return (root.parent if root.name == "recipes" else Path.cwd()) / "evals"


def check_suite(recipe: Recipe, path: Path, locations: dict) -> None:
    if recipe.eval is None:
        return
    folder = suites_dir(path)
    folders = [folder] + ([HARNESS_EVALS] if HARNESS_EVALS.resolve() != folder.resolve() else [])
    if not any((f / f"{recipe.eval}.yaml").is_file() for f in folders):  # where `harness eval` looks too
        known = [p.stem for f in folders for p in f.glob("*.yaml")]
        file, line = locations.get(("eval",), (str(path), None))
        raise ConfigError(f"no eval suite '{recipe.eval}' in {' or '.join(f'{f}/' for f in folders)}"
                          f"{did_you_mean(recipe.eval, known)}", file=file, line=line, path=("eval",))


def load_named(path: str | Path, config: type, not_a_mapping: str):
    """A one-file config (suite, sweep) named after its file unless it says `name:`."""
    tree, lines = yaml_tree.load_file(path)
    if not isinstance(tree, dict):
        raise ConfigError(not_a_mapping, file=str(path), line=1)
    tree.setdefault("name", Path(path).stem)
    return build(config, tree, Where(file=str(path), locations={p: (str(path), n) for p, n in lines.items()}))


def load_suite(path: str | Path) -> Suite:
    return load_named(path, Suite, "a suite must be a mapping of keys")


# -------------------------------------------------------------- validation

def discover(paths: list[str]) -> list[tuple[str, Path]]:
    """(kind, file) for every recipe and suite under the given files or folders.

    Folders are searched recursively. Files under an `evals/` folder are suites,
    except lm-eval task YAMLs in `evals/tasks/`; `recipes/accelerate/` holds
    accelerate launcher configs, not recipes; files under a `studies/` folder are sweeps.
    """
    found = []
    for raw in paths:
        root = Path(raw)
        files = sorted(list(root.rglob("*.yaml")) + list(root.rglob("*.yml"))) if root.is_dir() else [root]
        for f in files:
            parts = f.parts
            if "accelerate" in parts or ("evals" in parts and "tasks" in parts):
                continue
            kind = "suite" if "evals" in parts else "sweep" if "studies" in parts else "recipe"
            found.append((kind, f))
    return found


def validate_file(kind: str, path: Path) -> object:
    if kind == "suite":
        return load_suite(path)
    if kind == "sweep":   # recipes/studies/: a sweep file, valid when every one of its points is
        from harness.sweep.config import load_sweep
        from harness.sweep.grid import points

        sweep = load_sweep(path)
        points(sweep, recipes_root(path))
        return sweep
    return load(path)


def recipe_json_schema() -> dict:
    """JSON Schema for recipe files: the Recipe config plus `extends:`; nothing is required
    at the top level because a child recipe may inherit every key."""
    from harness.schema import json_schema

    schema = json_schema(Recipe)
    top = schema["$defs"]["Recipe"]
    top["properties"]["extends"] = {"type": "string", "description": "recipe to deep-merge this one onto"}
    top.pop("required", None)
    return schema
