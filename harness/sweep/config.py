"""The sweep file: a recipe, a grid of dotted overrides, and what to report.

```yaml
# recipes/studies/noise_study.yaml
recipe: noisy_dpo
grid:                                  # every combination is one point; `seed` is the replicate axis
  data.steps.6.flip_rate: [0.0, 0.1, 0.2, 0.4]
  seed: [0, 1]
overrides: [eval=countdown]            # fixed for every point
metrics: [countdown.accuracy]          # `task` (its primary metric) or `task.metric`
baseline: {data.steps.6.flip_rate: 0.0}
tradeoff: [countdown.format_rate, countdown.accuracy]   # x, y of the trade-off plot
```

Grid keys use the recipe override syntax (`apply_override` in harness/recipe.py), so a point is
exactly `harness run RECIPE key=value ...`. The same config comes from the command line
(`--grid "key=a,b seed=0,1"`). Points that differ only in `seed` are replicates of one setting and are
aggregated; every other key is a factor.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from harness import yaml_tree
from harness.errors import ConfigError, FieldError, HarnessError, did_you_mean
from harness.fingerprint import fingerprint
from harness.schema import Where, build, first_repeat, param, plain

SEED = "seed"   # the grid key whose values are replicates, not settings
STUDIES = "studies"   # sweep files live in recipes/studies/


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep: one recipe run at every combination of the grid's values."""

    name: str
    recipe: str = param(help="the recipe to sweep (name or path, as for `harness run`)")
    grid: dict[str, tuple[Any, ...]] = param(help="dotted recipe key -> the values it takes; `seed` is the "
                                                  "replicate axis")
    overrides: tuple[str, ...] = param((), help="dotted overrides applied to every point (key.path=value)")
    metrics: tuple[str, ...] = param((), help="what to report: `task` (its primary metric) or `task.metric`; "
                                              "default every task's primary metric")
    baseline: dict[str, Any] | None = param(None, help="the point the others are tested against: a value for "
                                                       "every swept key but seed (default: each key's first value)")
    tradeoff: tuple[str, ...] | None = param(None, help="two metrics, [x, y], for a trade-off plot")
    description: str = ""

    def __post_init__(self) -> None:
        if not self.grid:
            raise FieldError("grid", "needs at least one key with a list of values, e.g. {seed: [0, 1]}")
        for key, values in self.grid.items():
            if not key or "=" in key or key != key.strip() or "" in key.split("."):
                raise FieldError(("grid", key), "expected a dotted recipe key such as data.steps.6.flip_rate")
            if not values:
                raise FieldError(("grid", key), "needs at least one value")
            repeat = first_repeat(json.dumps(plain(v), sort_keys=True) for v in values)
            if repeat is not None:
                raise FieldError(("grid", key, repeat), f"value {plain(values[repeat])!r} is listed twice")
        if SEED in self.grid and any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                                     for v in self.grid[SEED]):
            raise FieldError(("grid", SEED), "seeds must be non-negative integers")
        for i, override in enumerate(self.overrides):
            key, eq, _ = override.partition("=")
            if not eq or not key.strip():
                raise FieldError(("overrides", i), f"'{override}' must look like key.path=value")
            if key.strip() in self.grid:
                raise FieldError(("overrides", i), f"'{key.strip()}' is swept by the grid; remove it from overrides")
        for i, metric in enumerate(self.metrics):
            if not metric.strip() or " " in metric:
                raise FieldError(("metrics", i), "expected `task` or `task.metric`, e.g. countdown.accuracy")
        factors = self.factors
        if self.baseline is not None:
            for key, value in self.baseline.items():
                if key not in factors:
                    raise FieldError(("baseline", key), f"not a swept key other than seed"
                                     f"{did_you_mean(key, factors)}")
                if plain(value) not in [plain(v) for v in self.grid[key]]:
                    raise FieldError(("baseline", key), f"{plain(value)!r} is not one of the grid's values "
                                     f"{[plain(v) for v in self.grid[key]]}")
            missing = [k for k in factors if k not in self.baseline]
            if missing:
                raise FieldError("baseline", f"give a value for every swept key; missing {', '.join(missing)}")
        if self.tradeoff is not None and len(self.tradeoff) != 2:
            raise FieldError("tradeoff", f"expected two metrics [x, y], got {len(self.tradeoff)}")

    @property
    def factors(self) -> list[str]:
        """The swept keys that are settings (every grid key but seed), in grid order."""
        return [k for k in self.grid if k != SEED]

    @property
    def baseline_setting(self) -> dict[str, Any]:
        """The baseline's value for each factor (each factor's first value unless `baseline:` says)."""
        given = self.baseline or {}
        return {k: plain(given[k]) if k in given else plain(self.grid[k][0]) for k in self.factors}

    @property
    def sweep_id(self) -> str:
        """`<name>-<fingerprint>` of the recipe, fixed overrides and grid: what records are tagged with."""
        return f"{self.name}-{fingerprint('sweep', self.recipe, plain(self.overrides), plain(self.grid))[:10]}"


# ----------------------------------------------------------------- loading

def find_sweep(name: str, recipes_dir: str | Path = "recipes") -> Path:
    """A sweep file by path, or by name under `<recipes>/studies/` (then the harness's own)."""
    from harness.recipe import HARNESS_RECIPES

    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError("file not found; give a sweep file (recipes/studies/<name>.yaml) or a recipe with "
                              "--grid", file=str(path))
        return path
    folders = [Path(recipes_dir) / STUDIES, HARNESS_RECIPES / STUDIES]
    for folder in folders:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    known = [p.stem for f in folders if f.is_dir() for p in f.glob("*.yaml")]
    raise ConfigError(f"no sweep named '{name}' in {' or '.join(f'{f}/' for f in folders)}"
                      f"{did_you_mean(name, known)}; to sweep a recipe give --grid \"key=a,b seed=0,1\"",
                      file=str(folders[0] / f"{name}.yaml"))


def load_sweep(path: str | Path) -> SweepConfig:
    """Parse and validate a sweep file (the points themselves are checked by `grid.points`)."""
    from harness.recipe import load_named

    return load_named(path, SweepConfig, "a sweep file must be a mapping with `recipe:` and `grid:`")


def from_command_line(recipe: str, grid: str, overrides: tuple[str, ...] = (), metrics: tuple[str, ...] = (),
                      baseline: str | None = None, tradeoff: str | None = None) -> SweepConfig:
    """A sweep given as `RECIPE --grid "key=a,b seed=0,1" [key=value ...]`."""
    tree: dict = {"name": f"{Path(recipe).stem}_sweep", "recipe": recipe, "grid": parse_grid(grid),
                  "overrides": list(overrides), "metrics": list(metrics)}
    if baseline:
        tree["baseline"] = {k: v[0] for k, v in parse_grid(baseline, what="--baseline").items()}
    if tradeoff:
        tree["tradeoff"] = [m.strip() for m in tradeoff.split(",")]
    return build(SweepConfig, tree, Where(file="command line"))


def parse_grid(text: str, what: str = "--grid") -> dict[str, list]:
    """`"a.b=0,0.1 seed=0,1"` -> {"a.b": [0, 0.1], "seed": [0, 1]}; values are YAML, and commas inside
    brackets (`loss_type=[sigmoid,sft],[ipo]`) do not split."""
    out: dict[str, list] = {}
    for word in _split(text, " "):
        key, eq, raw = word.partition("=")
        if not eq or not key or not raw:
            raise HarnessError(f"{what} '{word}': expected key.path=value1,value2,... (for example "
                               f"data.steps.6.flip_rate=0,0.1 seed=0,1)")
        if key in out:
            raise HarnessError(f"{what}: key '{key}' is given twice; list all its values once, comma-separated")
        out[key] = [yaml_tree.parse_value(part) for part in _split(raw, ",")]
    if not out:
        raise HarnessError(f"{what} is empty; give key.path=value1,value2 (space-separated keys)")
    return out


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets and braces."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{" and 1 or 0
        depth -= char in "]}" and 1 or 0
        if char == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def resolve(sweep: str, grid: str | None = None, overrides: tuple[str, ...] = (),
            recipes_dir: str | Path = "recipes") -> tuple[SweepConfig, Path | None]:
    """The sweep a command names: a sweep file (name or path), or a recipe with `--grid`. Returns the
    config and the file it came from (None for a command-line grid)."""
    if grid is not None:
        return from_command_line(sweep, grid, overrides), None
    if overrides:
        raise HarnessError(f"overrides {' '.join(overrides)} given for sweep file '{sweep}'; put fixed overrides "
                           "in its `overrides:` list, or sweep a recipe with --grid")
    path = find_sweep(sweep, recipes_dir)
    return load_sweep(path), path
