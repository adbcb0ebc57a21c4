"""The `harness` command line. Thin: it parses, loads the recipe and calls one function.

Heavy libraries (torch, trl, datasets) are imported only by the commands that
need them, so `--help`, `validate` and `plan` stay fast. User errors print one
line and exit with 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

EXIT_USER_ERROR = 2


def _recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe name (recipes/**/<name>.yaml) or path")
    p.add_argument("overrides", nargs="*", metavar="key.path=value",
                   help="dotted overrides applied before validation, e.g. data.steps.2.flip_rate=0.2 seed=3")
    p.add_argument("--recipes-dir", default="recipes", help="where recipe names are looked up")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="harness", description="Declarative post-training: recipe -> data -> "
                                  "train -> eval, on Hugging Face TRL.")
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")

    p = sub.add_parser("run", parents=[common], help="run a recipe: data, then its training stages")
    _recipe_args(p)
    p.add_argument("--fresh-eval", action="store_true", help="evaluate again even when the leaderboard has a "
                   "record of the same weights on the same suite")
    p.add_argument("--over-budget", action="store_true", help="start a Tinker run even when its estimate "
                   "exceeds the recipe's budget_usd (it still stops before spending past it)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("data", parents=[common], help="run only the data stage of a recipe")
    _recipe_args(p)
    p.set_defaults(func=cmd_data)
    p = sub.add_parser("plan", parents=[common], help="show the resolved recipe, stage graph, fingerprints and cache hits")
    _recipe_args(p)
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("validate", parents=[common], help="validate every recipe and eval suite under the given paths")
    p.add_argument("paths", nargs="*", default=["recipes", "evals"])
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("schema", parents=[common], help="print the JSON Schema of recipes (for editor autocompletion)")
    p.set_defaults(func=cmd_schema)
    _eval_parser(sub, common)
    _completions_parser(sub, common)
    _export_parser(sub, common)
    _leaderboard_parsers(sub, common)
    _sandbox_parsers(sub, common)
    _sweep_parsers(sub, common)
    return top


def _load(args):
    from harness.recipe import load

    return load(args.recipe, tuple(args.overrides), args.recipes_dir)


def cmd_run(args) -> int:
    from harness.run import run

    run(_load(args), fresh_eval=args.fresh_eval, over_budget=args.over_budget)
    return 0


def cmd_data(args) -> int:
    from harness.run import prepare_data

    prepare_data(_load(args))
    return 0


def cmd_plan(args) -> int:
    from harness.plan import show

    show(_load(args))
    return 0


def cmd_validate(args) -> int:
    import time

    from harness.errors import ConfigError, HarnessError
    from harness.recipe import discover, validate_file

    start = time.perf_counter()
    found = discover(args.paths)
    failed = 0
    for kind, path in found:
        try:
            validate_file(kind, path)
        except HarnessError as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
        except Exception as err:  # a validator bug must still name the file, not dump a traceback
            if args.debug:
                raise
            failed += 1
            print(f"error: {ConfigError(f'could not validate ({type(err).__name__}: {err})', file=str(path))}",
                  file=sys.stderr)
    if not found:
        print(f"error: no recipes or suites found under {' '.join(args.paths)}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"validated {len(found) - failed}/{len(found)} files in {time.perf_counter() - start:.2f}s")
    return EXIT_USER_ERROR if failed else 0


def cmd_schema(args) -> int:
    import json

    from harness.recipe import recipe_json_schema

    print(json.dumps(recipe_json_schema(), indent=1))
    return 0


# ---- eval: score a checkpoint on a suite and publish the run record

def _eval_parser(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="evaluate a checkpoint on an eval suite and add it to the "
                       "leaderboard")
    p.add_argument("checkpoint", help="a run folder (runs/<recipe>/<stage>-<fp>/final), a hub id, 'base' "
                   "for the embedded model, or a Tinker checkpoint (tinker://... ; tinker://local/... offline)")
    p.add_argument("--suite", default="embedded", help="suite name (evals/<name>.yaml) or path")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N items of every task")
    p.add_argument("--allow-contaminated", action="store_true",
                   help="publish even if the training data overlaps the eval items; recorded in the row")
    p.add_argument("--no-publish", action="store_true", help="print the results without adding a leaderboard row")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from harness.errors import HarnessError
    from harness.evaluate.run import evaluate

    if args.limit is not None and args.limit < 1:
        raise HarnessError(f"--limit {args.limit}: must be at least 1")
    evaluate(args.checkpoint, args.suite, limit=args.limit, allow_contaminated=args.allow_contaminated,
             publish=not args.no_publish)
    return 0


# ---- completions: several models' greedy answers to the same prompts, side by side

def _completions_parser(sub, common) -> None:
    p = sub.add_parser("completions", parents=[common], help="greedy answers of several models to the same prompts: "
                       "a side-by-side table and a CSV (one row per prompt, one column per model)")
    p.add_argument("--models", required=True, help="comma-separated: base, run folders, hub ids, or stage names "
                   "of --recipe (e.g. base,sft,dpo_1,dpo_2)")
    p.add_argument("--prompts", required=True, help="a .jsonl file (`prompt`, `messages` or `instruction` per line) "
                   "or a source spec, e.g. '{source: countdown, kind: prompt, split: test}'")
    p.add_argument("--n", type=int, default=10, help="how many prompts (the first N)")
    p.add_argument("--recipe", default=None, help="resolve stage names (and base) through this recipe")
    p.add_argument("--recipes-dir", default="recipes", help="where recipe names are looked up")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--stop", action="append", default=[], help="end an answer after this string (repeatable), "
                   "e.g. --stop '</answer>'")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch on a CPU")
    p.add_argument("--out", default=None, help="the CSV to write (default: runs/completions/completions-<time>.csv)")
    p.set_defaults(func=cmd_completions)


def cmd_completions(args) -> int:
    from pathlib import Path

    from harness.completions import completions
    from harness.errors import HarnessError

    if args.max_new_tokens < 1 or args.batch_size < 1:
        raise HarnessError("--max-new-tokens and --batch-size must be at least 1")
    recipe = None
    if args.recipe:
        from harness.recipe import load

        recipe = load(args.recipe, (), args.recipes_dir)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    completions(models, args.prompts, args.n, recipe=recipe, out=Path(args.out) if args.out else None,
                max_new_tokens=args.max_new_tokens, stop=tuple(args.stop), batch_size=args.batch_size)
    return 0


# ---- export: bring a Tinker checkpoint home as a PEFT adapter, or merged into its base model

def _export_parser(sub, common) -> None:
    p = sub.add_parser("export", parents=[common], help="download a Tinker checkpoint as a PEFT adapter folder "
                       "(--merge: a full model folder)")
    p.add_argument("checkpoint", help="tinker://<run>/weights/<name>, tinker://<run>/external_weights/<name>, "
                   "or tinker://local/<id>/<kind>/<name>")
    p.add_argument("--out", required=True, help="folder to write (replaced only if it holds an earlier export)")
    p.add_argument("--merge", action="store_true", help="merge the adapter into the base model's weights and "
                   "write a standard save_pretrained folder")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from harness.tinker_export import export

    export(args.checkpoint, args.out, merge=args.merge)
    return 0


# ---- leaderboard and compare: publish run records, render the page, test two runs against each other

def _leaderboard_parsers(sub, common) -> None:
    p = sub.add_parser("leaderboard", parents=[common], help="add run records to the leaderboard, or re-render it")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("add", parents=[common], help="validate a run record and add its row (leaderboard.json, "
                           "index.html)")
    q.add_argument("record", help="a run record JSON file (see leaderboard/record.schema.json)")
    q.add_argument("--allow-contaminated", action="store_true",
                   help="publish a contaminated run anyway; the choice is recorded in its row")
    q.set_defaults(func=cmd_leaderboard_add)
    q = actions.add_parser("render", parents=[common], help="rebuild index.html from leaderboard.json")
    q.set_defaults(func=cmd_leaderboard_render)
    p = sub.add_parser("compare", parents=[common], help="paired bootstrap of two runs of one suite, per task")
    p.add_argument("run_a", metavar="RUN_A", help="run id (in the leaderboard's records/) or record path")
    p.add_argument("run_b", metavar="RUN_B", help="run id or record path; differences are B - A")
    p.set_defaults(func=cmd_compare)


def cmd_leaderboard_add(args) -> int:
    import json

    from harness import leaderboard
    from harness.errors import HarnessError

    try:
        with open(args.record, encoding="utf-8") as handle:
            record = json.load(handle)
    except OSError as err:
        raise HarnessError(f"{args.record}: cannot read the run record ({err.strerror}); pass the path of a record "
                           "written by the eval command") from None
    except ValueError as err:
        raise HarnessError(f"{args.record}: not valid JSON ({err}); fix or regenerate the record") from None
    path = leaderboard.add(record, allow_contaminated=args.allow_contaminated, source=args.record)
    print(f"added {path.stem} to {path.parent.parent / 'leaderboard.json'} (suite {record['suite']['name']}, "
          f"fingerprint {record['suite']['fingerprint'][:12]}); page {path.parent.parent / 'index.html'}")
    return 0


def cmd_leaderboard_render(args) -> int:
    from harness import leaderboard

    print(f"rendered {leaderboard.render()}")
    return 0


def cmd_compare(args) -> int:
    from harness import leaderboard

    print(leaderboard.format_comparison(leaderboard.compare(args.run_a, args.run_b)))
    return 0


# ---- sandbox: run one program exactly as the code runner does, print the verdict

def _sandbox_parsers(sub, common) -> None:
    p = sub.add_parser("sandbox", parents=[common], help="run untrusted Python in the code runner's sandbox")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("run", parents=[common], help="run PROGRAM.py and print its JSON verdict "
                           "(status, reason, output, isolation)")
    q.add_argument("program", metavar="PROGRAM.py", help="the Python file to run")
    q.add_argument("--timeout", type=float, default=None, help="wall-clock seconds (default: the code runner's)")
    q.set_defaults(func=cmd_sandbox_run)


def cmd_sandbox_run(args) -> int:
    from harness import sandbox
    from harness.errors import HarnessError

    if args.timeout is not None and not args.timeout > 0:
        raise HarnessError(f"--timeout {args.timeout:g}: must be a positive number of seconds")
    limits = sandbox.Limits.for_timeout(args.timeout) if args.timeout else sandbox.Limits()
    print(sandbox.run_file(args.program, limits).to_json())
    return 0


# ---- sweep: a recipe over a grid of overrides, several seeds, one report

def _sweep_parsers(sub, common) -> None:
    p = sub.add_parser("sweep", parents=[common], help="run a recipe over a grid of overrides (and seeds), resumable, "
                       "and report it with multi-seed CIs, tests against a baseline and plots")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("sweep", metavar="SWEEP", help="a sweep file (recipes/studies/<name>.yaml, by name or path), "
                        "or a recipe name when --grid is given")
    shared.add_argument("overrides", nargs="*", metavar="key.path=value",
                        help="with --grid: overrides fixed for every point")
    shared.add_argument("--grid", default=None, help="sweep a recipe: \"key.path=v1,v2 seed=0,1\" (every combination "
                        "is a point)")
    shared.add_argument("--recipes-dir", default=None, help="where recipe names are looked up (default: the "
                        "recipes/ folder the sweep file is in, else ./recipes)")
    q = actions.add_parser("plan", parents=[common, shared], help="every point, the data steps and stages points "
                           "share (by fingerprint), and what is done")
    q.set_defaults(func=cmd_sweep_plan)
    q = actions.add_parser("run", parents=[common, shared], help="run the points one after another; finished "
                           "points are skipped")
    q.add_argument("--point", type=int, default=None, help="run only this point (a SLURM array task id)")
    q.add_argument("--fresh-eval", action="store_true", help="evaluate again even when a record of the same weights "
                   "exists (finished points are rerun)")
    q.set_defaults(func=cmd_sweep_run)
    q = actions.add_parser("report", parents=[common, shared], help="table (mean, CI and sd over seeds), tests "
                           "against the baseline with Holm's correction, and PNG plots with their data")
    q.add_argument("--out", default=None, help="folder to write (default: <leaderboard>/sweeps/<sweep id>/)")
    q.set_defaults(func=cmd_sweep_report)
    q = actions.add_parser("slurm", parents=[common, shared], help="write a SLURM job-array script, one task per "
                           "point (the cache must be on a shared filesystem)")
    q.add_argument("--out", required=True, help="folder for the script and its logs/")
    q.add_argument("--partition", default=None)
    q.add_argument("--gres", default=None, help="e.g. gpu:1")
    q.add_argument("--time", default=None, help="per task, e.g. 04:00:00")
    q.add_argument("--cpus", type=int, default=None, help="cpus per task")
    q.add_argument("--mem", default=None, help="memory per task, e.g. 64G")
    q.set_defaults(func=cmd_sweep_slurm)


def _sweep(args):
    """(sweep config, its file or None, the recipes folder its recipe name is looked up in)."""
    from harness.recipe import recipes_root
    from harness.sweep.config import resolve

    sweep, path = resolve(args.sweep, args.grid, tuple(args.overrides), args.recipes_dir or "recipes")
    recipes_dir = args.recipes_dir or (recipes_root(path) if path is not None else "recipes")
    return sweep, path, recipes_dir


def cmd_sweep_plan(args) -> int:
    from harness.sweep.plan import build_plan, format_plan

    sweep, _, recipes_dir = _sweep(args)
    print(format_plan(build_plan(sweep, recipes_dir)))
    return 0


def cmd_sweep_run(args) -> int:
    from harness.sweep.run import run_sweep

    sweep, _, recipes_dir = _sweep(args)
    run_sweep(sweep, recipes_dir, only=args.point, fresh_eval=args.fresh_eval)
    return 0


def cmd_sweep_report(args) -> int:
    from pathlib import Path

    from harness.sweep.report import report

    sweep, _, recipes_dir = _sweep(args)
    report(sweep, recipes_dir, out=Path(args.out) if args.out else None)
    return 0


def cmd_sweep_slurm(args) -> int:
    from harness.sweep import slurm
    from harness.sweep.grid import points

    sweep, path, recipes_dir = _sweep(args)
    count = len(points(sweep, recipes_dir))   # every point validated before a script is written
    script = slurm.write(sweep, count, path, args.out, grid=args.grid, overrides=tuple(args.overrides),
                         recipes_dir=args.recipes_dir, partition=args.partition, gres=args.gres, time=args.time, cpus=args.cpus,
                         memory=args.mem)
    print(f"wrote {script} ({count} array tasks); submit with: sbatch {script}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from harness.errors import HarnessError

    try:
        return args.func(args)
    except HarnessError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
