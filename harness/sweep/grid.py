"""Grid expansion: every combination of the grid's values is one point, a recipe with its overrides.

Points are numbered in grid order with the last key varying fastest (`itertools.product`), so a point's
index is stable for a given grid: it is what a SLURM array task is given. Every point is loaded and
validated before anything runs, so a bad value in point 7 stops the sweep before point 1 trains.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

from harness.errors import HarnessError
from harness.schema import plain
from harness.sweep.config import SEED, SweepConfig


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: its index, its coordinates (grid key -> value) and its loaded recipe."""

    index: int
    coordinates: tuple[tuple[str, object], ...]
    recipe: object = dataclasses.field(compare=False, repr=False)

    @property
    def values(self) -> dict:
        return dict(self.coordinates)

    @property
    def seed(self):
        return self.values.get(SEED)

    @property
    def setting(self) -> tuple[tuple[str, object], ...]:
        """The coordinates without the seed: points with equal settings are replicates."""
        return tuple((k, v) for k, v in self.coordinates if k != SEED)

    @property
    def label(self) -> str:
        return " ".join(f"{k}={_text(v)}" for k, v in self.coordinates)

    @property
    def overrides(self) -> tuple[str, ...]:
        return overrides_for(self.coordinates)


def overrides_for(coordinates) -> tuple[str, ...]:
    """`key=value` overrides for coordinates; values as JSON, which the override parser reads as YAML."""
    return tuple(f"{k}={json.dumps(v)}" for k, v in coordinates)


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def setting_label(setting) -> str:
    return " ".join(f"{k}={_text(v)}" for k, v in setting) or "(no swept key)"


def coordinates(sweep: SweepConfig) -> list[tuple[tuple[str, object], ...]]:
    """Every combination of the grid's values, in grid order."""
    keys = list(sweep.grid)
    values = [[plain(v) for v in sweep.grid[k]] for k in keys]
    return [tuple(zip(keys, combo)) for combo in itertools.product(*values)]


def points(sweep: SweepConfig, recipes_dir: str | Path = "recipes", only: int | None = None) -> list[Point]:
    """Every point, loaded and validated (recipe schema, overrides, suite); the first bad one raises a
    one-line error naming the point and its coordinates. `only` returns just that point, after
    validating all of them."""
    from harness.recipe import load

    combos = coordinates(sweep)
    if only is not None and not 0 <= only < len(combos):
        raise HarnessError(f"--point {only}: the sweep has {len(combos)} points (0..{len(combos) - 1}); "
                           f"see `harness sweep plan`")
    loaded = []
    for index, combo in enumerate(combos):
        point = Point(index, combo, None)
        try:
            recipe = load(sweep.recipe, tuple(sweep.overrides) + point.overrides, recipes_dir)
        except HarnessError as err:
            raise HarnessError(f"sweep {sweep.name}: point {index} ({point.label}): {err}") from None
        if not recipe.eval:
            raise HarnessError(f"sweep {sweep.name}: recipe '{sweep.recipe}' has no `eval:` suite, so its points "
                               "have nothing to report; add `eval: <suite>` to the recipe or `eval=<suite>` to the "
                               "sweep's overrides")
        if not recipe.stages:
            raise HarnessError(f"sweep {sweep.name}: recipe '{sweep.recipe}' has no training stages; a sweep "
                               "evaluates each point's final checkpoint")
        loaded.append(dataclasses.replace(point, recipe=recipe))
    return loaded if only is None else [loaded[only]]


def preflight(sweep: SweepConfig, loaded: list[Point]) -> None:
    """The checks `harness run` makes before any data work (TRL configs build, QLoRA has a GPU, a Tinker
    key), for every point, before the first one starts."""
    from harness.run import preflight as run_preflight

    for point in loaded:
        try:
            run_preflight(point.recipe)
        except HarnessError as err:
            raise HarnessError(f"sweep {sweep.name}: point {point.index} ({point.label}): {err}") from None
        except (TypeError, ValueError) as err:   # a TRL config class refusing an argument
            raise HarnessError(f"sweep {sweep.name}: point {point.index} ({point.label}): "
                               f"{type(err).__name__}: {str(err).splitlines()[0]}") from None
