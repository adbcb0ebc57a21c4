"""The leaderboard: validated run records, a leaderboard.json that many writers can share, and its page.

Every eval run ends as one record (`leaderboard/record.schema.json`) that carries
the provenance of each number: lineage, task versions, eval data hashes,
library versions and the decontamination report. `add` keeps the full record in
`records/<run_id>.json` and a slim row (no per-item scores, no samples) in
`leaderboard.json`, grouped into boards by suite name *and* suite fingerprint:
two rows are only comparable when the suite scored them the same way.

Evals of a sweep finish at the same moment, so the read-modify-write of
leaderboard.json runs under an exclusive `flock` on a separate lock file (the
data files themselves are replaced, so they cannot carry the lock), and every
file is written to a temporary sibling and renamed.

`compare` tests two runs item by item with the paired bootstrap (Koehn, 2004;
Berg-Kirkpatrick et al., 2012), which is far more sensitive than comparing two
overlapping confidence intervals.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import json
import math
import re
from pathlib import Path

from harness import atomic
from harness.errors import HarnessError, did_you_mean
from harness.paths import leaderboard_root

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "leaderboard" / "record.schema.json"
BULKY = ("per_item", "samples")  # per-task fields kept only in the full record, not in leaderboard rows
LOCK_NAME = ".lock"


# ---------------------------------------------------------------- validation

@functools.lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise HarnessError(f"{SCHEMA_PATH}: cannot read the run record schema ({err}); restore it from the "
                           "repository") from None
    return Draft202012Validator(schema)


def _json_path(parts) -> str:
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w@+-]*", part):
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _short(message: str, limit: int = 160) -> str:
    line = " ".join(message.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _schema_problem(record) -> tuple[str, str] | None:
    """(JSON path, message) of the most relevant schema violation, or None."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(record))
    if error is None:
        return None
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next((k for k in error.validator_value if k not in error.instance), None)
        if missing is not None:
            return _json_path(path + [missing]), "required field is missing"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        got = type(error.instance).__name__ if error.instance is not None else "null"
        return _json_path(path), f"expected {expected}, got {got} {_short(repr(error.instance), 60)}"
    return _json_path(path), _short(error.message)


def _non_finite(value, path: list):
    """Path of the first NaN or infinity: JSON cannot hold them, and they would sort as garbage."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, path + [key])
        if found is not None:
            return found
    return None


def _consistency_problem(record: dict) -> tuple[str, str] | None:
    """Rules a JSON Schema cannot state: the primary metric exists, per-item scores align with their ids."""
    bad = _non_finite(record, [])
    if bad is not None:
        return _json_path(bad), "NaN or infinity is not valid JSON; write null for a value that could not be computed"
    for name, task in record["tasks"].items():
        primary = task["primary_metric"]
        if primary not in task["metrics"]:
            return (_json_path(["tasks", name, "primary_metric"]),
                    f"'{primary}' is not one of the task's metrics{did_you_mean(primary, task['metrics'])}")
        ids = task["per_item"]["ids"]
        if len(set(ids)) != len(ids):
            repeat = next(i for i in ids if ids.count(i) > 1)
            return _json_path(["tasks", name, "per_item", "ids"]), f"item id '{repeat}' appears more than once"
        for metric, scores in task["per_item"]["scores"].items():
            if len(scores) != len(ids):
                return (_json_path(["tasks", name, "per_item", "scores", metric]),
                        f"{len(scores)} scores for {len(ids)} item ids; there must be one score (or null) per id")
    return None


def validate(record, source: str | None = None) -> None:
    """Raise a one-line HarnessError naming the JSON path of the first problem in a run record."""
    problem = _schema_problem(record) or _consistency_problem(record)
    if problem is None:
        return
    path, message = problem
    if source is None:
        run_id = record.get("run_id") if isinstance(record, dict) else None
        source = f"run record '{run_id}'" if isinstance(run_id, str) else "run record"
    raise HarnessError(f"{source}: {path}: {message} (fix the record; its format is leaderboard/record.schema.json)")


# ---------------------------------------------------------------- publishing

def contamination_problem(record: dict) -> str | None:
    """Why a record may not be published, or None: contaminated and not explicitly allowed."""
    decon = record["decontamination"]
    if decon["status"] != "contaminated" or decon["allow_contaminated"]:
        return None
    threshold = decon.get("threshold", 0.0)
    rates = [(t["rate"], name) for name, t in decon["tasks"].items() if t.get("rate") is not None]
    over = sorted((r for r in rates if r[0] > threshold), reverse=True)
    detail = (f"task {over[0][1]} rate {over[0][0]:.4g} > threshold {threshold:g}" if over
              else f"marked so, though no task rate is above threshold {threshold:g}")
    return (f"run {record['run_id']} is contaminated ({detail}); rerun with --allow-contaminated to publish anyway "
            "(recorded in the row)")


def add(record: dict, root: Path | None = None, *, allow_contaminated: bool = False,
        source: str | None = None) -> Path:
    """Validate a run record, keep it in `records/`, add its row to leaderboard.json and re-render index.html.

    `allow_contaminated` sets `decontamination.allow_contaminated` before the
    contamination gate, so the choice is stored in the record and its row. A
    record whose run id is already on the board replaces that row. `source`
    names the record in error messages (its file, say). Returns the path of the
    stored record.
    """
    if allow_contaminated:
        record = copy.deepcopy(record)
        if isinstance(record, dict) and isinstance(record.get("decontamination"), dict):
            record["decontamination"]["allow_contaminated"] = True
    validate(record, source)
    refusal = contamination_problem(record)
    if refusal:
        raise HarnessError(refusal)
    root = Path(root) if root is not None else leaderboard_root()
    relative = f"records/{record['run_id']}.json"
    with _locked(root):
        atomic.write_text(root / relative, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        board = _read(root)
        _place(board, _row(record, relative))
        atomic.write_text(root / "leaderboard.json", json.dumps(board, indent=1, ensure_ascii=False) + "\n")
        _write_page(root, board)
    return root / relative


def render(root: Path | None = None) -> Path:
    """Rebuild index.html from leaderboard.json (an empty page when nothing was added yet)."""
    root = Path(root) if root is not None else leaderboard_root()
    with _locked(root):
        return _write_page(root, _read(root))


def record_sweep(sweep_id: str, entry: dict, root: Path | None = None) -> None:
    """Note a sweep's report (its folder, relative to the leaderboard, and plot files) in leaderboard.json
    under `sweeps`, so the page can group the sweep's rows and link its plots."""
    root = Path(root) if root is not None else leaderboard_root()
    with _locked(root):
        board = _read(root)
        board.setdefault("sweeps", {})[sweep_id] = entry
        atomic.write_text(root / "leaderboard.json", json.dumps(board, indent=1, ensure_ascii=False) + "\n")
        _write_page(root, board)


@contextlib.contextmanager
def _locked(root: Path):
    """Hold an exclusive lock on `<root>/.lock` for one read-modify-write of the leaderboard."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / LOCK_NAME, "a", encoding="utf-8")
    except OSError as err:
        raise HarnessError(f"{root}: cannot open the leaderboard folder ({err.strerror}); check the path and its "
                           "permissions, or set HARNESS_LEADERBOARD") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(root: Path) -> dict:
    path = root / "leaderboard.json"
    if not path.exists():
        return {"schema_version": SCHEMA_VERSION, "boards": []}
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise HarnessError(f"{path}: not valid JSON ({err}); restore it from version control, or delete it and "
                           f"re-add the records in {root / 'records'}") from None
    if not isinstance(board, dict) or board.get("schema_version") != SCHEMA_VERSION:
        raise HarnessError(f"{path}: not a version-{SCHEMA_VERSION} leaderboard; move it aside and re-add the "
                           f"records in {root / 'records'}")
    return board


def _row(record: dict, relative: str) -> dict:
    """The record without per-item scores and samples, pointing at its full file."""
    row = {key: value for key, value in record.items() if key != "tasks"}
    row["tasks"] = {name: {k: v for k, v in task.items() if k not in BULKY} for name, task in record["tasks"].items()}
    row["record"] = relative
    return row


def _place(board: dict, row: dict) -> None:
    suite = row["suite"]
    target = next((b for b in board["boards"]
                   if b["suite"] == suite["name"] and b["fingerprint"] == suite["fingerprint"]), None)
    if target is None:
        target = {"suite": suite["name"], "fingerprint": suite["fingerprint"], "tasks": [], "rows": []}
        board["boards"].append(target)
    known = {t["name"] for t in target["tasks"]}
    target["tasks"] += [{"name": name, "primary_metric": task["primary_metric"]}
                        for name, task in row["tasks"].items() if name not in known]
    target["rows"] = [r for r in target["rows"] if r["run_id"] != row["run_id"]] + [row]


def _write_page(root: Path, board: dict) -> Path:
    from harness.leaderboard_page import page

    path = root / "index.html"
    atomic.write_text(path, page(board))
    return path


# ---------------------------------------------------------------- reading and comparing

def load(ref, root: Path | None = None) -> dict:
    """A validated run record, from a file path or a run id stored under `<root>/records/`."""
    root = Path(root) if root is not None else leaderboard_root()
    path = Path(ref)
    if not path.is_file():
        records = root / "records"
        path = records / f"{ref}.json"
        if "/" in str(ref) or not path.is_file():
            known = [p.stem for p in records.glob("*.json")] if records.is_dir() else []
            raise HarnessError(f"no run record '{ref}': not a file and not a run id in {records}"
                               f"{did_you_mean(str(ref), known)}; pass a record path or a run id")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise HarnessError(f"{path}: not valid JSON ({err}); fix or regenerate the record") from None
    validate(record, source=str(path))
    return record


def _means(pairs_a, pairs_b):
    kept = [(x, y) for x, y in zip(pairs_a, pairs_b) if x is not None and y is not None]
    if not kept:
        return None, None
    return sum(x for x, _ in kept) / len(kept), sum(y for _, y in kept) / len(kept)


def compare(a, b, root: Path | None = None) -> dict:
    """Paired bootstrap of run b against run a on every task both ran (b - a, so positive means b is better).

    Items are aligned by id; every metric with per-item scores in both runs is
    tested, the primary metric first. `a` and `b` are records, run ids or paths.
    """
    from harness.evaluate.stats import paired_bootstrap

    a = a if isinstance(a, dict) else load(a, root)
    b = b if isinstance(b, dict) else load(b, root)
    if a["suite"]["fingerprint"] != b["suite"]["fingerprint"]:
        raise HarnessError(
            f"runs {a['run_id']} and {b['run_id']} were scored by different suites "
            f"({a['suite']['name']} {a['suite']['fingerprint'][:12]} vs {b['suite']['name']} "
            f"{b['suite']['fingerprint'][:12]}); compare runs of the same suite fingerprint, re-evaluating one if "
            "needed")
    tasks = {}
    for name, task_a in a["tasks"].items():
        task_b = b["tasks"].get(name)
        if task_b is None:
            continue
        index_b = {item: i for i, item in enumerate(task_b["per_item"]["ids"])}
        common = [(i, index_b[item]) for i, item in enumerate(task_a["per_item"]["ids"]) if item in index_b]
        scores_a, scores_b = task_a["per_item"]["scores"], task_b["per_item"]["scores"]
        primary = task_a["primary_metric"]
        names = [primary] + [m for m in task_a["metrics"] if m != primary]
        names += [m for m in scores_a if m not in names]
        warnings = []
        for field in ("version", "data_hash"):
            if task_a[field] != task_b[field]:
                warnings.append(f"{field} differs ({task_a[field]} vs {task_b[field]})")
        if len(common) < max(len(task_a["per_item"]["ids"]), len(task_b["per_item"]["ids"])):
            warnings.append(f"{len(common)} items in common ({len(task_a['per_item']['ids'])} in a, "
                            f"{len(task_b['per_item']['ids'])} in b)")
        metrics = {}
        for metric in names:
            if metric not in scores_a or metric not in scores_b:
                if metric == primary:
                    warnings.append(f"no per-item scores for {metric}")
                continue
            xs = [scores_a[metric][i] for i, _ in common]
            ys = [scores_b[metric][j] for _, j in common]
            mean_a, mean_b = _means(xs, ys)
            metrics[metric] = {"a": mean_a, "b": mean_b, **paired_bootstrap(xs, ys)}
        tasks[name] = {"primary_metric": primary, "metrics": metrics, "warnings": warnings}
    if not tasks:
        raise HarnessError(f"runs {a['run_id']} and {b['run_id']} share no task; compare two runs of the same suite")
    return {"a": a["run_id"], "b": b["run_id"], "suite": a["suite"]["name"], "fingerprint": a["suite"]["fingerprint"],
            "tasks": tasks, "only_in_a": [t for t in a["tasks"] if t not in b["tasks"]],
            "only_in_b": [t for t in b["tasks"] if t not in a["tasks"]]}


def format_comparison(result: dict) -> str:
    """A plain-text table of `compare`'s result; `*` marks each task's primary metric."""

    def num(value, signed=False):
        return "-" if value is None else f"{value:+.4f}" if signed else f"{value:.4f}"

    header = ["task", "metric", "n", "A", "B", "B-A", "95% CI", "p"]
    lines = []
    for name, task in result["tasks"].items():
        for metric, m in task["metrics"].items():
            ci = "-" if m["ci95"] is None else f"[{m['ci95'][0]:+.4f}, {m['ci95'][1]:+.4f}]"
            label = metric + ("*" if metric == task["primary_metric"] else "")
            lines.append([name, label, str(m["n"]), num(m["a"]), num(m["b"]), num(m["difference"], True), ci,
                          "-" if m["p_value"] is None else f"{m['p_value']:.4f}"])
    widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header))]
    table = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [header] + lines]
    out = [f"A = {result['a']}", f"B = {result['b']}",
           f"suite {result['suite']} (fingerprint {result['fingerprint'][:12]}); paired bootstrap over shared items, "
           "* = primary metric", ""] + [t.rstrip() for t in table]
    for name, task in result["tasks"].items():
        out += [f"warning: {name}: {w}" for w in task["warnings"]]
    for side in ("a", "b"):
        if result[f"only_in_{side}"]:
            out.append(f"only in {side.upper()}: {', '.join(result[f'only_in_{side}'])}")
    return "\n".join(out)


def find(suite_fingerprint: str, weight_hash: str, root: Path | None = None) -> dict | None:
    """The newest full record of these exact weights on this exact suite, or None (used to reuse a
    baseline evaluation instead of recomputing it)."""
    root = Path(root) if root is not None else leaderboard_root()
    if not (root / "leaderboard.json").exists():
        return None
    rows = [r for b in _read(root)["boards"] if b["fingerprint"] == suite_fingerprint for r in b["rows"]
            if r["model"].get("weight_hash") == weight_hash]
    for row in sorted(rows, key=lambda r: r["finished"], reverse=True):
        if (root / row["record"]).is_file():
            return load(root / row["record"], root)
    return None
