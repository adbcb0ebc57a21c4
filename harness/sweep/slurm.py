"""`harness sweep slurm`: a SLURM job-array script that runs one sweep point per array task.

Array task i runs `harness sweep run SWEEP --point i`, so the array covers the same numbered points as
`harness sweep plan`. Every task reads and writes the same cache, runs and leaderboard folders
(HARNESS_CACHE, HARNESS_RUNS, HARNESS_LEADERBOARD, HARNESS_CARDS), which is what lets points share
data steps and stages; they must therefore be on a filesystem every node mounts. The script is
written by hand (no submitit): it is short and reviewable before `sbatch`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from harness import atomic, paths
from harness.sweep.config import SweepConfig


def script(sweep: SweepConfig, count: int, command: list[str], *, workdir: Path, logs: Path,
           partition: str | None = None, gres: str | None = None, time: str | None = None,
           cpus: int | None = None, memory: str | None = None) -> str:
    """The text of the job-array script. `command` is the `harness sweep run ...` invocation without
    `--point`; each array task appends `--point $SLURM_ARRAY_TASK_ID`."""
    roots = {"HARNESS_CACHE": paths.cache_root(), "HARNESS_RUNS": paths.runs_root(),
             "HARNESS_LEADERBOARD": paths.leaderboard_root(), "HARNESS_CARDS": paths.cards_root(),
             "HARNESS_MODELS": paths.models_root()}
    options = [f"--job-name=sweep-{sweep.name}", f"--array=0-{count - 1}", f"--output={logs}/%x-%A_%a.out"]
    options += [f"--{flag}={value}" for flag, value in (("partition", partition), ("gres", gres), ("time", time),
                                                        ("cpus-per-task", cpus), ("mem", memory)) if value]
    lines = [
        "#!/bin/bash",
        f"# Sweep {sweep.name} ({sweep.sweep_id}): recipe {sweep.recipe}, {count} points, one per array task.",
        "# Array task i runs point i of `harness sweep plan` (grid order, last key fastest).",
        "#",
        "# The cache must be on a shared filesystem: every task reads and writes the folders below, which is",
        "# how points share prepared data and trained stages (a shared SFT stage is trained once) and how a",
        "# resubmitted array skips finished points. Node-local paths would retrain everything in every task.",
        "# Points that share a stage not yet trained may train it at the same time; to train shared stages",
        "# once, run the first point alone (`sbatch --array=0`) and then the rest (`--array=1-" + str(count - 1)
        + "`).",
        "# When every task has finished: harness sweep report " + " ".join(shlex.quote(c) for c in command[5:]),
        *[f"#SBATCH {o}" for o in options],
        "",
        "set -euo pipefail",
        *[f"export {name}=\"${{{name}:-{shlex.quote(str(Path(value).resolve()))}}}\"" for name, value in roots.items()],
        f"cd {shlex.quote(str(workdir.resolve()))}",
        " ".join(shlex.quote(c) for c in command) + " --point \"$SLURM_ARRAY_TASK_ID\"",
        "",
    ]
    return "\n".join(lines)


def write(sweep: SweepConfig, count: int, source: Path | None, out: Path, grid: str | None = None,
          overrides: tuple[str, ...] = (), recipes_dir: str | Path | None = None, **options) -> Path:
    """Write `<out>/sweep-<name>.sbatch` (and create `<out>/logs/`); returns the script's path. A
    `recipes_dir` given on the command line is passed on to every task, as an absolute path."""
    out = Path(out)
    command = [sys.executable, "-m", "harness", "sweep", "run"]
    if source is not None:
        command.append(str(Path(source).resolve()))
    else:
        command += [sweep.recipe, *overrides, "--grid", grid or ""]
    if recipes_dir is not None:
        command += ["--recipes-dir", str(Path(recipes_dir).resolve())]
    text = script(sweep, count, command, workdir=Path.cwd(), logs=(out / "logs").resolve(), **options)
    path = out / f"sweep-{sweep.name}.sbatch"
    (out / "logs").mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)
    path.chmod(0o755)
    return path
