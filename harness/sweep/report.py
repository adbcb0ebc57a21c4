"""`harness sweep report`: a sweep's results, aggregated over seeds, tested against its baseline, plotted.

For each reported metric and each setting (the points that differ only by seed): the mean over seeds,
the sd across seeds and a hierarchical-bootstrap 95% CI (harness/sweep/stats.py), from the per-item
scores in the full run records. Every setting is compared with the baseline setting by a paired
hierarchical bootstrap, and the p-values of one metric are adjusted with Holm's step-down procedure.

Everything goes to `<leaderboard>/sweeps/<sweep id>/`, written into a temporary folder and renamed:
`report.txt` (the printed table), `report.json` (every number), and for each metric a PNG of the
metric against the swept value with its CI band plus a JSON of the numbers behind it; with
`tradeoff: [x, y]`, `tradeoff.png` and `tradeoff.json` (one point per setting, CIs in both directions).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness import atomic, checkpoint
from harness.errors import HarnessError
from harness.paths import leaderboard_root
from harness.sweep import stats
from harness.sweep.config import SweepConfig
from harness.sweep.grid import Point, points, setting_label


# ----------------------------------------------------------------- inputs

def sweep_records(sweep: SweepConfig, loaded: list[Point], root: Path | None = None) -> dict[int, dict]:
    """point index -> the newest full record tagged with this sweep and point whose checkpoint is the
    point's planned final stage, or has that stage's weights (an evaluation reused from another recipe
    that trained the same weights, as `run` reuses it); a record of an older version of the recipe is
    ignored."""
    from harness import leaderboard
    from harness.stages import plan_stages

    root = Path(root) if root is not None else leaderboard_root()
    folder = root / "records"
    final = {p.index: plan_stages(p.recipe)[-1] for p in loaded}
    weights: dict[int, str | None] = {}

    def same_weights(index: int, record: dict) -> bool:
        if index not in weights:   # hashed only when a fingerprint does not match
            weights_dir = final[index].final_dir
            weights[index] = checkpoint.weight_hash(weights_dir) if checkpoint.read(weights_dir) else None
        return weights[index] is not None and record["model"].get("weight_hash") == weights[index]

    found: dict[int, dict] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        for entry in record.get("sweeps") or []:
            index = entry.get("point")
            if entry.get("id") != sweep.sweep_id or index not in final:
                continue
            if record["model"].get("fingerprint") != final[index].fingerprint and not same_weights(index, record):
                continue
            if index not in found or record["finished"] > found[index]["finished"]:
                leaderboard.validate(record, source=str(path))
                found[index] = record
    return found


def metric_names(sweep: SweepConfig, records: dict[int, dict]) -> list[tuple[str, str]]:
    """(task, metric) for each metric the sweep reports: `task` means its primary metric."""
    first = next(iter(records.values()))
    tasks = first["tasks"]
    wanted = list(sweep.metrics) or list(tasks)
    out = []
    for name in wanted:
        task, _, metric = name.partition(".")
        if task not in tasks:
            from harness.errors import did_you_mean

            raise HarnessError(f"sweep {sweep.name}: metrics: no task '{task}' in the records of suite "
                               f"{first['suite']['name']}{did_you_mean(task, tasks)}")
        metric = metric or tasks[task]["primary_metric"]
        if metric not in tasks[task]["per_item"]["scores"]:
            from harness.errors import did_you_mean

            raise HarnessError(f"sweep {sweep.name}: metrics: task '{task}' has no per-item scores for "
                               f"'{metric}'{did_you_mean(metric, tasks[task]['per_item']['scores'])}")
        out.append((task, metric))
    return out


def _tradeoff(sweep: SweepConfig, records) -> list[tuple[str, str]] | None:
    if not sweep.tradeoff:
        return None
    return metric_names(SweepConfig(name=sweep.name, recipe=sweep.recipe, grid=sweep.grid,
                                    metrics=sweep.tradeoff), records)


# ----------------------------------------------------------------- numbers

def build_report(sweep: SweepConfig, loaded: list[Point], records: dict[int, dict]) -> dict:
    if not records:
        raise HarnessError(f"sweep {sweep.name}: no point has a leaderboard record yet; run `harness sweep run` "
                           "first (records are tagged with the sweep id " + sweep.sweep_id + ")")
    wanted = metric_names(sweep, records)
    extra = [m for m in (_tradeoff(sweep, records) or []) if m not in wanted]
    settings: dict[tuple, list[Point]] = {}
    for point in loaded:
        settings.setdefault(point.setting, []).append(point)
    baseline = tuple(sweep.baseline_setting.items())
    report = {"sweep": sweep.name, "id": sweep.sweep_id, "recipe": sweep.recipe, "factors": sweep.factors,
              "points": len(loaded), "points_with_records": len(records),
              "missing_points": [p.index for p in loaded if p.index not in records],
              "baseline": dict(baseline), "method": stats.METHOD, "paired_method": stats.PAIRED_METHOD,
              "correction": stats.HOLM, "metrics": {}}
    for task, metric in wanted + extra:
        rows = []
        per_setting = {}
        for setting, members in settings.items():
            by_seed = {}
            for p in members:
                if p.index in records:
                    item = records[p.index]["tasks"][task]["per_item"]
                    by_seed[p.seed] = (item["ids"], item["scores"][metric])
            per_setting[setting] = by_seed
            summary = stats.aggregate([scores for _, scores in by_seed.values()])
            rows.append({"setting": dict(setting), "label": setting_label(setting), **summary,
                         "seeds": sorted(by_seed, key=lambda s: (s is None, s)),
                         "points": [p.index for p in members], "baseline": setting == baseline})
        base = per_setting.get(baseline, {})
        comparisons = [stats.paired(base, per_setting[tuple(r["setting"].items())]) if not r["baseline"] and base
                       else None for r in rows]
        adjusted = stats.holm([c["p_value"] if c else None for c in comparisons])
        for row, comparison, p_holm in zip(rows, comparisons, adjusted):
            row["vs_baseline"] = None if comparison is None else {**comparison, "p_holm": p_holm}
        report["metrics"][f"{task}.{metric}"] = {"task": task, "metric": metric, "settings": rows,
                                                  "reported": (task, metric) in wanted}
    if sweep.tradeoff:
        report["tradeoff"] = [f"{t}.{m}" for t, m in _tradeoff(sweep, records)]
    return report


def format_report(report: dict) -> str:
    def num(v, signed=False):
        return "-" if v is None else (f"{v:+.3f}" if signed else f"{v:.3f}")

    def ci(v, signed=False):
        return "-" if v is None else f"[{num(v[0], signed)}, {num(v[1], signed)}]"

    out = [f"sweep {report['sweep']} ({report['id']}): recipe {report['recipe']}, {report['points']} points, "
           f"{report['points_with_records']} with records"
           + (f"; not run yet: points {', '.join(map(str, report['missing_points']))}"
              if report["missing_points"] else ""),
           f"baseline: {setting_label(tuple(report['baseline'].items()))}", ""]
    for name, block in report["metrics"].items():
        if not block["reported"]:
            continue
        header = ["setting", "mean", "95% CI", "sd", "seeds", "vs baseline", "95% CI", "p", "p (Holm)"]
        lines = []
        for r in block["settings"]:
            vs = r["vs_baseline"]
            mark = " *" if vs and vs["p_holm"] is not None and vs["p_holm"] < 0.05 else ""
            lines.append([r["label"] + (" (baseline)" if r["baseline"] else ""), num(r["mean"]), ci(r["ci95"]),
                          num(r["sd"]), str(r["n_seeds"]),
                          num(vs["difference"], True) if vs else "-", ci(vs["ci95"], True) if vs else "-",
                          num(vs["p_value"]) if vs else "-", (num(vs["p_holm"]) + mark) if vs else "-"])
        widths = [max(len(row[i]) for row in [header] + lines) for i in range(len(header))]
        out.append(f"{name}: mean over seeds, 95% CI, sd across seeds")
        out += ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                .rstrip() for row in [header] + lines]
        out.append("")
    out += [f"CI: {report['method']}", f"vs baseline: {report['paired_method']}; p (Holm): {report['correction']}; "
            "* = p (Holm) < 0.05"]
    return "\n".join(out)


# ----------------------------------------------------------------- plots

def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def metric_series(report: dict, name: str) -> dict:
    """The numbers behind a metric's plot: x is the first swept key; one series per value of the
    other swept keys."""
    block = report["metrics"][name]
    factors = report["factors"]
    x_key = factors[0] if factors else None
    series: dict[str, list] = {}
    for r in block["settings"]:
        rest = tuple((k, v) for k, v in r["setting"].items() if k != x_key)
        series.setdefault(setting_label(rest) if rest else "", []).append(
            {"x": r["setting"].get(x_key) if x_key else None, "mean": r["mean"],
             "low": r["ci95"][0] if r["ci95"] else None, "high": r["ci95"][1] if r["ci95"] else None,
             "sd": r["sd"], "n_seeds": r["n_seeds"]})
    return {"metric": name, "x": x_key, "method": report["method"],
            "series": [{"label": k, "points": v} for k, v in series.items()]}


def tradeoff_points(report: dict) -> dict:
    x_name, y_name = report["tradeoff"]
    xs, ys = report["metrics"][x_name]["settings"], report["metrics"][y_name]["settings"]
    points_ = []
    for a, b in zip(xs, ys):
        points_.append({"setting": a["setting"], "label": a["label"], "x": a["mean"], "y": b["mean"],
                        "x_ci95": a["ci95"], "y_ci95": b["ci95"], "n_seeds": a["n_seeds"]})
    return {"x": x_name, "y": y_name, "method": report["method"], "points": points_}


def _png(fig) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def plot_metric(data: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    xs_all = [p["x"] for s in data["series"] for p in s["points"]]
    numeric = all(_is_number(x) for x in xs_all)
    ticks = list(dict.fromkeys(json.dumps(x) for x in xs_all))
    for s in data["series"]:
        pts = [p for p in s["points"] if p["mean"] is not None]
        xs = [p["x"] if numeric else ticks.index(json.dumps(p["x"])) for p in pts]
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        xs = [xs[i] for i in order]
        means = [pts[i]["mean"] for i in order]
        lows = [pts[i]["low"] if pts[i]["low"] is not None else pts[i]["mean"] for i in order]
        highs = [pts[i]["high"] if pts[i]["high"] is not None else pts[i]["mean"] for i in order]
        line, = ax.plot(xs, means, marker="o", label=s["label"] or None)
        if numeric:
            ax.fill_between(xs, lows, highs, alpha=0.2, color=line.get_color())
        else:
            ax.errorbar(xs, means, yerr=[[m - lo for m, lo in zip(means, lows)], [h - m for m, h in zip(means, highs)]],
                        fmt="none", color=line.get_color(), capsize=3)
    if not numeric:
        ax.set_xticks(range(len(ticks)), [json.loads(t) if isinstance(json.loads(t), str) else t for t in ticks])
    ax.set_xlabel(data["x"] or "")
    ax.set_ylabel(data["metric"])
    ax.set_title(f"{data['metric']}: mean over seeds, 95% CI", fontsize=9)
    if any(s["label"] for s in data["series"]):
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_tradeoff(data: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    for p in data["points"]:
        if p["x"] is None or p["y"] is None:
            continue
        xerr = [[p["x"] - p["x_ci95"][0]], [p["x_ci95"][1] - p["x"]]] if p["x_ci95"] else None
        yerr = [[p["y"] - p["y_ci95"][0]], [p["y_ci95"][1] - p["y"]]] if p["y_ci95"] else None
        ax.errorbar([p["x"]], [p["y"]], xerr=xerr, yerr=yerr, fmt="o", capsize=3)
        ax.annotate(p["label"], (p["x"], p["y"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(data["x"])
    ax.set_ylabel(data["y"])
    ax.set_title("trade-off: one point per setting, 95% CIs both ways", fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


# ----------------------------------------------------------------- the command

def report(sweep: SweepConfig, recipes_dir="recipes", out: Path | None = None, log=print) -> Path:
    """Build, print and write the sweep's report; returns its folder. Registers the report with the
    leaderboard page (plots linked beside the sweep's rows)."""
    from harness import leaderboard

    loaded = points(sweep, recipes_dir)
    result = build_report(sweep, loaded, sweep_records(sweep, loaded))
    text = format_report(result)
    root = leaderboard_root()
    folder = Path(out) if out is not None else root / "sweeps" / sweep.sweep_id
    files = []
    with atomic.atomic_dir(folder) as tmp:
        for name, block in result["metrics"].items():
            if not block["reported"]:
                continue
            data = metric_series(result, name)
            stem = _file_stem(name)
            (tmp / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            (tmp / f"{stem}.png").write_bytes(plot_metric(data))
            files.append(f"{stem}.png")
        if result.get("tradeoff"):
            data = tradeoff_points(result)
            (tmp / "tradeoff.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            (tmp / "tradeoff.png").write_bytes(plot_tradeoff(data))
            files.append("tradeoff.png")
        (tmp / "report.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        (tmp / "report.txt").write_text(text + "\n", encoding="utf-8")
    log(text)
    log(f"wrote {folder}/: report.txt, report.json, {', '.join(files)} (and the JSON behind each plot)")
    try:
        relative = folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        relative = folder.resolve().as_posix()
    leaderboard.record_sweep(sweep.sweep_id, {"name": sweep.name, "recipe": sweep.recipe, "folder": relative,
                                              "plots": files, "points": len(loaded),
                                              "factors": sweep.factors})
    return folder
