"""Run records, the leaderboard files, the paired comparison, the CLI and the rendered page in a real browser."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from headless_chromium import Browser, find

from harness import leaderboard
from harness.cli import main
from harness.errors import HarnessError
from harness.evaluate.stats import summary

SUITE_FP = "5d0c2e9a41f7b3c8"


def countdown_scores(n: int = 60, every: int = 3) -> list[float]:
    """1.0 for every `every`-th item, else 0.0."""
    return [1.0 if i % every == 0 else 0.0 for i in range(n)]


def make_record(run_id: str = "countdown-3f9a1c2e-20250301T101500Z", name: str = "smollm2-135m-filtered-dpo",
                countdown=None, gsm8k=None, suite_fp: str = SUITE_FP, status: str = "clean",
                gsm8k_rate: float = 0.0, lineage: bool = True, finished: str = "2025-03-01T10:21:07Z") -> dict:
    """A realistic record: a DPO checkpoint scored on Countdown and GSM8K, with per-item scores."""
    countdown = countdown_scores() if countdown is None else countdown
    gsm8k = [float(i % 4 == 0) for i in range(40)] if gsm8k is None else gsm8k

    def task(runner, metric, version, data_hash, prefix, scores, extra):
        ids = [f"{prefix}/{i:04d}" for i in range(len(scores))]
        return {"runner": runner, "primary_metric": metric, "version": version, "data_hash": data_hash,
                "n": len(scores), "metrics": {metric: summary(scores), **{k: summary(v) for k, v in extra.items()}},
                "clean_metrics": {metric: summary(scores[5:])} if status != "not_checked" else None,
                "counts": {"scored": sum(s is not None for s in scores)},
                "throughput": {"examples_per_s": 12.5, "tokens_per_s": 1830.0, "seconds": len(scores) / 12.5},
                "info": {"max_new_tokens": 256, "temperature": 0.0}, "warnings": [],
                "samples": [{"id": ids[0], "prompt": "Use 3 5 7 to make 22", "output": "3*5+7", "score": 1.0}],
                "per_item": {"ids": ids, "scores": {metric: scores, **extra}}}

    stages = [
        {"stage": "sft", "backend": "trl_sft", "fingerprint": "a1b2c3d4e5f60718",
         "checkpoint": "runs/flag/sft-a1b2/final",
         "parent": "embedded:smollm2-135m-instruct", "data_fingerprint": "d00dfeed12345678", "data_rows": 4000,
         "data_dir": "runs/flag/data/sft-d00d", "recipe": "filtered_dpo"},
        {"stage": "dpo", "backend": "trl_dpo", "fingerprint": "9f8e7d6c5b4a3921",
         "checkpoint": "runs/flag/dpo-9f8e/final",
         "parent": "runs/flag/sft-a1b2/final", "data_fingerprint": "beefcafe87654321", "data_rows": 2000,
         "data_dir": "runs/flag/data/dpo-beef", "recipe": "filtered_dpo"},
    ] if lineage else []
    contaminated = int(round(gsm8k_rate * len(gsm8k)))
    return {
        "schema_version": 1,
        "run_id": run_id,
        "suite": {"name": "countdown_gsm8k", "fingerprint": suite_fp, "path": "evals/countdown_gsm8k.yaml"},
        "model": {"name": name, "checkpoint": stages[-1]["checkpoint"] if lineage else "embedded:smollm2-135m-instruct",
                  "weight_hash": "3f9a1c2e77aa0b91" if lineage else None,
                  "base_model": "embedded:smollm2-135m-instruct", "stage": "dpo" if lineage else None,
                  "backend": "trl_dpo" if lineage else None, "recipe": "filtered_dpo" if lineage else None,
                  "recipe_fingerprint": "0a1b2c3d4e5f6071" if lineage else None,
                  "fingerprint": "9f8e7d6c5b4a3921" if lineage else None},
        "lineage": stages,
        "data_fingerprints": [s["data_fingerprint"] for s in stages],
        "tasks": {"countdown": task("countdown", "accuracy", "2", "c0ffee0011223344", "countdown", countdown,
                                    {"format_ok": [1.0] * len(countdown)}),
                  "gsm8k": task("gsm8k", "exact_match", "1", "ab12cd34ef56ab78", "gsm8k", gsm8k, {})},
        "decontamination": {
            "status": status, "threshold": 0.0, "allow_contaminated": False, "ngram": 13, "coverage_ngram": 8,
            "coverage": 0.5, "normaliser_version": 1, "training_documents": 6000,
            "training_data": [s["data_dir"] for s in stages], "runtime_s": 1.7,
            "tasks": {"countdown": {"items": len(countdown), "indexed": len(countdown), "contaminated": 0, "rate": 0.0,
                                    "worst": [], "note": ""},
                      "gsm8k": {"items": len(gsm8k), "indexed": len(gsm8k), "contaminated": contaminated,
                                "rate": gsm8k_rate, "note": "",
                                "worst": [{"item_id": "gsm8k/0003", "test": "any", "coverage": 0.81,
                                           "shared_ngrams": 14, "item_snippet": "Natalia sold clips to 48 friends",
                                           "document_snippet": "natalia sold clips to 48 of her friends"}]
                                if contaminated else []}}},
        "environment": {"libraries": {"torch": "2.13.0", "trl": "1.16.0", "transformers": "5.23.1", "vllm": None},
                        "python": "3.11.7", "platform": "Linux-6.1-x86_64", "device": "cpu",
                        "harness_commit": "8254951", "dirty": False, "generation_backend": "transformers"},
        "started": "2025-03-01T10:15:00Z", "finished": finished, "wall_time_s": 367.2,
    }


def board_file(root: Path) -> dict:
    return json.loads((root / "leaderboard.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- validation

def test_schema_is_valid_draft_2020_12_and_a_realistic_record_validates():
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "leaderboard" / "record.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert all(p.get("description") for p in schema["properties"].values() if "$ref" not in p)
    leaderboard.validate(make_record())
    leaderboard.validate(make_record(status="not_checked", lineage=False))


def _delete(path):
    def apply(record):
        *parents, last = path
        target = record
        for key in parents:
            target = target[key]
        del target[last]
    return apply


def _set(path, value):
    def apply(record):
        *parents, last = path
        target = record
        for key in parents:
            target = target[key]
        target[last] = value
    return apply


BROKEN = [
    ("missing field", _delete(("tasks", "countdown", "data_hash")),
     "$.tasks.countdown.data_hash: required field is missing"),
    ("wrong type", _set(("tasks", "gsm8k", "n"), "40"), "$.tasks.gsm8k.n: expected integer, got str"),
    ("bad status", _set(("decontamination", "status"), "dirty"), "$.decontamination.status: 'dirty' is not one of"),
    ("nested wrong type", _set(("lineage", 1, "data_rows"), 2.5), "$.lineage[1].data_rows: expected integer or null"),
    ("bad interval", _set(("tasks", "countdown", "metrics", "accuracy", "ci95"), [0.1, 0.2, 0.3]),
     "$.tasks.countdown.metrics.accuracy.ci95:"),
    ("file-unsafe run id", _set(("run_id",), "../../etc/passwd"), "$.run_id: '../../etc/passwd' does not match"),
    ("not a number", _set(("tasks", "countdown", "metrics", "accuracy", "value"), float("nan")),
     "$.tasks.countdown.metrics.accuracy.value: NaN or infinity is not valid JSON"),
    ("unknown primary metric", _set(("tasks", "gsm8k", "primary_metric"), "exact_mach"),
     "$.tasks.gsm8k.primary_metric: 'exact_mach' is not one of the task's metrics (did you mean 'exact_match'?)"),
    ("misaligned scores", _set(("tasks", "countdown", "per_item", "scores", "format_ok"), [1.0] * 59),
     "$.tasks.countdown.per_item.scores.format_ok: 59 scores for 60 item ids"),
    ("repeated id", _set(("tasks", "gsm8k", "per_item", "ids", 1), "gsm8k/0000"),
     "$.tasks.gsm8k.per_item.ids: item id 'gsm8k/0000' appears more than once"),
]


@pytest.mark.parametrize("label,break_it,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_record_fails_with_the_json_path(label, break_it, expected):
    record = make_record()
    break_it(record)
    with pytest.raises(HarnessError) as err:
        leaderboard.validate(record)
    message = str(err.value)
    assert expected in message
    assert message.startswith("run record ") and "leaderboard/record.schema.json" in message
    assert "\n" not in message and len(message) < 400


def test_not_checked_needs_no_settings_but_checked_needs_all_of_them():
    record = make_record(status="not_checked")
    record["decontamination"] = {"status": "not_checked", "allow_contaminated": False, "tasks": {}}
    leaderboard.validate(record)
    record["decontamination"]["status"] = "clean"
    with pytest.raises(HarnessError, match=r"\$\.decontamination\.threshold: required field is missing"):
        leaderboard.validate(record)


# ---------------------------------------------------------------- publishing

def test_contaminated_record_is_refused_without_the_flag_and_recorded_with_it(workspace):
    root = workspace / "leaderboard"
    record = make_record(status="contaminated", gsm8k_rate=0.125)
    with pytest.raises(HarnessError) as err:
        leaderboard.add(record)
    assert str(err.value) == (
        "run countdown-3f9a1c2e-20250301T101500Z is contaminated (task gsm8k rate 0.125 > threshold 0); rerun with "
        "--allow-contaminated to publish anyway (recorded in the row)")
    assert not (root / "leaderboard.json").exists() and not (root / "records").exists()

    path = leaderboard.add(record, allow_contaminated=True)
    assert record["decontamination"]["allow_contaminated"] is False  # the caller's dict is left alone
    assert json.loads(path.read_text(encoding="utf-8"))["decontamination"]["allow_contaminated"] is True
    [row] = board_file(root)["boards"][0]["rows"]
    assert row["decontamination"]["status"] == "contaminated" and row["decontamination"]["allow_contaminated"] is True


def test_rows_are_grouped_by_suite_fingerprint_and_keep_only_the_slim_fields(workspace):
    root = workspace / "leaderboard"
    first = make_record("countdown-aaaa-20250301T101500Z")
    leaderboard.add(first)
    leaderboard.add(make_record("countdown-bbbb-20250302T101500Z", countdown=countdown_scores(every=2)))
    leaderboard.add(make_record("countdown-cccc-20250303T101500Z", suite_fp="77e1aa0d3c9b2f10"))
    leaderboard.add(first)  # the same run again replaces its row

    board = board_file(root)
    assert board["schema_version"] == 1
    assert [(b["suite"], b["fingerprint"], [r["run_id"] for r in b["rows"]]) for b in board["boards"]] == [
        ("countdown_gsm8k", SUITE_FP, ["countdown-bbbb-20250302T101500Z", "countdown-aaaa-20250301T101500Z"]),
        ("countdown_gsm8k", "77e1aa0d3c9b2f10", ["countdown-cccc-20250303T101500Z"])]
    assert board["boards"][0]["tasks"] == [{"name": "countdown", "primary_metric": "accuracy"},
                                           {"name": "gsm8k", "primary_metric": "exact_match"}]
    row = board["boards"][0]["rows"][1]
    assert row["record"] == "records/countdown-aaaa-20250301T101500Z.json"
    assert all("per_item" not in t and "samples" not in t for t in row["tasks"].values())
    assert row["tasks"]["countdown"]["metrics"]["accuracy"]["value"] == pytest.approx(20 / 60)
    assert json.loads((root / row["record"]).read_text(encoding="utf-8")) == first
    assert sorted(p.name for p in (root / "records").iterdir()) == [
        "countdown-aaaa-20250301T101500Z.json", "countdown-bbbb-20250302T101500Z.json",
        "countdown-cccc-20250303T101500Z.json"]
    assert not [p for p in root.iterdir() if ".tmp-" in p.name]
    assert leaderboard.load("countdown-bbbb-20250302T101500Z")["run_id"] == "countdown-bbbb-20250302T101500Z"
    assert leaderboard.load(root / row["record"]) == first


def _add_after_barrier(barrier, record, root):
    barrier.wait()
    leaderboard.add(record, root)


def test_fifty_concurrent_processes_lose_no_row(workspace):
    root = workspace / "leaderboard"
    leaderboard.validate(make_record())  # load the schema once; the forked writers inherit it
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(50)
    records = [make_record(f"countdown-w{i:02d}-20250301T1015{i % 60:02d}Z", name=f"writer {i}",
                           countdown=countdown_scores(every=2 + i % 5)) for i in range(50)]
    writers = [context.Process(target=_add_after_barrier, args=(barrier, r, root)) for r in records]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    assert [w.exitcode for w in writers] == [0] * 50

    board = board_file(root)  # valid JSON, or this raises
    [only] = board["boards"]
    assert len(only["rows"]) == 50
    assert {r["run_id"] for r in only["rows"]} == {r["run_id"] for r in records}
    files = sorted((root / "records").glob("*.json"))
    assert len(files) == 50 and all(json.loads(f.read_text(encoding="utf-8"))["schema_version"] == 1 for f in files)
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    html = (root / "index.html").read_text(encoding="utf-8")
    assert json.loads(_embedded(html)) == board  # the last writer rendered the final board


# ---------------------------------------------------------------- comparing

def test_compare_aligns_items_by_id_and_finds_a_real_improvement():
    a = make_record("countdown-aaaa-20250301T101500Z")
    # b solves every item a solves and 20 more (i % 3 == 1); its items are stored in reverse order
    better = [1.0 if i % 3 in (0, 1) else 0.0 for i in range(60)]
    b = make_record("countdown-bbbb-20250302T101500Z", countdown=better)
    for task in b["tasks"].values():
        task["per_item"]["ids"].reverse()
        for scores in task["per_item"]["scores"].values():
            scores.reverse()

    result = leaderboard.compare(a, b)
    countdown = result["tasks"]["countdown"]["metrics"]["accuracy"]
    assert countdown["n"] == 60
    assert countdown["difference"] == pytest.approx(20 / 60, abs=1e-12)
    assert countdown["a"] == pytest.approx(20 / 60) and countdown["b"] == pytest.approx(40 / 60)
    assert countdown["p_value"] < 0.05 and countdown["ci95"][0] > 0
    same = result["tasks"]["gsm8k"]["metrics"]["exact_match"]
    assert same["difference"] == 0 and same["p_value"] == 1.0
    assert list(result["tasks"]["countdown"]["metrics"]) == ["accuracy", "format_ok"]

    table = leaderboard.format_comparison(result)
    assert "countdown  accuracy*" in table and "+0.3333" in table
    gsm8k_line = next(line for line in table.splitlines() if line.startswith("gsm8k"))
    assert gsm8k_line.split()[-4:] == ["+0.0000", "[+0.0000,", "+0.0000]", "1.0000"]


def test_compare_refuses_runs_of_different_suite_fingerprints():
    a = make_record("countdown-aaaa-20250301T101500Z")
    b = make_record("countdown-bbbb-20250302T101500Z", suite_fp="77e1aa0d3c9b2f10")
    with pytest.raises(HarnessError, match="different suites .*compare runs of the same suite fingerprint"):
        leaderboard.compare(a, b)


def test_compare_reports_items_missing_from_one_run():
    a = make_record("countdown-aaaa-20250301T101500Z")
    b = make_record("countdown-bbbb-20250302T101500Z", countdown=countdown_scores(n=50))
    result = leaderboard.compare(a, b)
    assert result["tasks"]["countdown"]["metrics"]["accuracy"]["n"] == 50
    assert result["tasks"]["countdown"]["warnings"] == ["50 items in common (60 in a, 50 in b)"]


# ---------------------------------------------------------------- the page

HOSTILE = '</script><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><!--'


def _embedded(html: str) -> str:
    start = html.index('<script type="application/json" id="leaderboard-data">')
    start = html.index(">", start) + 1
    return html[start:html.index("</script>", start)]


def test_page_embeds_the_board_without_a_way_out_of_the_script_element(workspace):
    root = workspace / "leaderboard"
    leaderboard.add(make_record(name=HOSTILE))
    html = (root / "index.html").read_text(encoding="utf-8")
    assert html.count("</script>") == 2 and html.count("<script") == 2
    assert "pwned" not in html.split("</script>")[1] and "<img" not in html and "<!--" not in html
    assert json.loads(_embedded(html)) == board_file(root)  # escaping round-trips: the name arrives intact
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html and "document.write" not in html
    assert leaderboard.render() == root / "index.html" and (root / "index.html").read_text(encoding="utf-8") == html


def test_render_without_rows_writes_an_empty_page(workspace):
    path = leaderboard.render()
    assert path == workspace / "leaderboard" / "index.html"
    assert json.loads(_embedded(path.read_text(encoding="utf-8"))) == {"schema_version": 1, "boards": []}


CHROMIUM = find()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: `make test` installs it with apt-get when run as "
                                              "root; or install it (apt-get install chromium) or set CHROMIUM=path")
def test_page_sorts_rows_draws_whiskers_and_badges_in_headless_chromium(workspace):
    root = workspace / "leaderboard"
    rows = [  # (run id, name, countdown every-th correct, gsm8k scores, status)
        ("countdown-low-20250301T101500Z", "low", 6, [float(i % 2 == 0) for i in range(40)], "clean"),
        ("countdown-best-20250302T101500Z", HOSTILE, 2, [float(i % 5 == 0) for i in range(40)], "contaminated"),
        ("countdown-mid-20250303T101500Z", "mid", 3, [None] * 40, "not_checked"),
    ]
    for day, (run_id, name, every, gsm8k, status) in enumerate(rows, start=1):
        record = make_record(run_id, name=name, countdown=countdown_scores(every=every), gsm8k=gsm8k, status=status,
                             gsm8k_rate=0.05 if status == "contaminated" else 0.0, finished=f"2025-03-0{day}T10:21:07Z")
        leaderboard.add(record, allow_contaminated=status == "contaminated")

    def order():
        return browser.evaluate("Array.from(document.querySelectorAll('tbody.entry'))"
                                ".map(function (b) { return b.getAttribute('data-run-id').split('-')[1]; })")

    def sort_state(task):
        return browser.evaluate(f"document.querySelector('th[data-task=\"{task}\"]').getAttribute('aria-sort')")

    with Browser(CHROMIUM) as browser:
        browser.open((root / "index.html").as_uri())
        assert browser.evaluate("document.body.getAttribute('data-ready')") == "true"
        assert order() == ["low", "best", "mid"]
        browser.click('th[data-task="countdown"] button')
        assert order() == ["best", "mid", "low"] and sort_state("countdown") == "descending"
        browser.click('th[data-task="countdown"] button')
        assert order() == ["low", "mid", "best"] and sort_state("countdown") == "ascending"
        browser.click('th[data-task="gsm8k"] button')  # unscored (null) values sink in either direction
        assert order() == ["low", "best", "mid"] and sort_state("countdown") == "none"
        browser.click('th[data-task="gsm8k"] button')
        assert order() == ["best", "low", "mid"] and sort_state("gsm8k") == "ascending"

        # whiskers where there is an interval: 3 countdown cells and 2 scored gsm8k cells
        assert browser.evaluate("document.querySelectorAll('td.score svg.whisker line.range').length") == 5
        assert browser.evaluate("document.querySelector('tbody[data-run-id^=\"countdown-mid\"] "
                                "td[data-task=\"gsm8k\"] svg')") is None
        badges = browser.evaluate("Array.from(document.querySelectorAll('tbody.entry .badge'))"
                                  ".map(function (b) { return b.className + '|' + b.textContent; })")
        assert sorted(badges) == ["badge badge-allowed|contaminated (allowed)", "badge badge-clean|clean",
                                  "badge badge-unchecked|not checked"]

        # the hostile name is shown as text and ran nothing
        assert browser.evaluate("document.querySelector('tbody[data-run-id^=\"countdown-best\"] .name').textContent") \
            == HOSTILE
        assert browser.evaluate("typeof window.pwned") == "undefined"
        assert browser.evaluate("document.scripts.length") == 2 and browser.evaluate(
            "document.querySelectorAll('img').length") == 0

        # the drill-down opens and lists the lineage, root first
        browser.click('tbody[data-run-id^="countdown-low"] details > summary')
        assert browser.evaluate("document.querySelector('tbody[data-run-id^=\"countdown-low\"] details').open")
        stages = browser.evaluate("Array.from(document.querySelectorAll('tbody[data-run-id^=\"countdown-low\"] "
                                  "ol.lineage-stages > li')).map(function (li) { return li.textContent; })")
        assert [s.split(" ")[0] for s in stages] == ["sft", "dpo"] and "data d00dfeed12345678 (4000 rows" in stages[0]
        assert browser.page_errors() == []


# ---------------------------------------------------------------- the command line

def test_cli_leaderboard_and_compare_exit_codes(workspace, capsys):
    root = workspace / "leaderboard"
    clean = workspace / "clean.json"
    clean.write_text(json.dumps(make_record("countdown-aaaa-20250301T101500Z")), encoding="utf-8")
    better = workspace / "better.json"
    better.write_text(json.dumps(make_record("countdown-bbbb-20250302T101500Z", countdown=countdown_scores(every=2))),
                      encoding="utf-8")
    dirty = workspace / "dirty.json"
    dirty.write_text(json.dumps(make_record("countdown-dddd-20250303T101500Z", status="contaminated", gsm8k_rate=0.1)),
                     encoding="utf-8")
    broken = workspace / "broken.json"
    broken.write_text('{"schema_version": 1,', encoding="utf-8")
    invalid = make_record("countdown-eeee-20250304T101500Z")
    del invalid["environment"]["device"]
    (workspace / "invalid.json").write_text(json.dumps(invalid), encoding="utf-8")

    assert main(["leaderboard", "add", str(clean)]) == 0
    assert "added countdown-aaaa-20250301T101500Z" in capsys.readouterr().out
    assert main(["leaderboard", "add", str(better)]) == 0
    capsys.readouterr()

    assert main(["leaderboard", "add", str(dirty)]) == 2
    assert "is contaminated (task gsm8k rate 0.1 > threshold 0)" in capsys.readouterr().err
    assert main(["leaderboard", "add", str(dirty), "--allow-contaminated"]) == 0
    rows = board_file(root)["boards"][0]["rows"]
    assert [r["decontamination"]["allow_contaminated"] for r in rows] == [False, False, True]
    capsys.readouterr()

    assert main(["leaderboard", "add", str(broken)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {broken}: not valid JSON")
    assert main(["leaderboard", "add", str(workspace / "invalid.json")]) == 2
    assert f"{workspace / 'invalid.json'}: $.environment.device: required field is missing" in capsys.readouterr().err
    assert main(["leaderboard", "add", str(workspace / "missing.json")]) == 2
    assert "cannot read the run record" in capsys.readouterr().err

    (root / "index.html").unlink()
    assert main(["leaderboard", "render"]) == 0 and (root / "index.html").exists()
    capsys.readouterr()

    assert main(["compare", "countdown-aaaa-20250301T101500Z", str(root / "records" / "countdown-bbbb-"
                                                                  "20250302T101500Z.json")]) == 0
    out = capsys.readouterr().out
    assert "countdown  accuracy*" in out and "+0.1667" in out  # 1/2 - 1/3
    assert main(["compare", "countdown-aaaa-20250301T101500Z", "countdown-bbbb-20250302T1015"]) == 2
    assert "did you mean 'countdown-bbbb-20250302T101500Z'" in capsys.readouterr().err


def test_cli_refusal_is_one_line_and_exit_code_2_in_a_real_process(workspace):
    dirty = workspace / "dirty.json"
    dirty.write_text(json.dumps(make_record(status="contaminated", gsm8k_rate=0.1)), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "harness", "leaderboard", "add", str(dirty)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--allow-contaminated" in done.stderr and "Traceback" not in done.stderr
    assert not (workspace / "leaderboard" / "leaderboard.json").exists()



def test_files_written_as_utf8_are_read_back_as_utf8_whatever_the_locale(workspace):
    """Under an ASCII locale (LC_ALL=C without UTF-8 mode) every leaderboard file is still read as UTF-8:
    adding a second row reads leaderboard.json, compare reads both records, render rebuilds the page."""
    first = make_record("countdown-aaaa-20250301T101500Z", name="smollm2-135m-dpo-für-Zoë")
    first["tasks"]["countdown"]["samples"][0]["output"] = "3×5+7 = 22 ✓"
    second = make_record("countdown-bbbb-20250302T101500Z", name="smollm2-135m-dpo-naïve",
                         countdown=countdown_scores(every=2))
    paths = []
    for record in (first, second):
        paths.append(workspace / f"{record['run_id']}.json")
        paths[-1].write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": "utf-8"}  # the console stays UTF-8: only files are under test
    probe = subprocess.run([sys.executable, "-c", "import locale; print(locale.getpreferredencoding(False))"],
                           env=env, capture_output=True, text=True)
    assert probe.stdout.strip().lower() in ("ansi_x3.4-1968", "ascii", "us-ascii"), probe.stdout
    harness = lambda *args: subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env,
                                           capture_output=True, text=True, encoding="utf-8")
    for path in paths:
        done = harness("leaderboard", "add", str(path))
        assert done.returncode == 0, done.stderr
    done = harness("compare", first["run_id"], second["run_id"])
    assert done.returncode == 0 and "countdown" in done.stdout, done.stderr
    assert harness("leaderboard", "render").returncode == 0
    root = workspace / "leaderboard"
    names = {row["model"]["name"] for row in board_file(root)["boards"][0]["rows"]}
    assert names == {"smollm2-135m-dpo-für-Zoë", "smollm2-135m-dpo-naïve"}
    assert "für-Zoë" in (root / "index.html").read_text(encoding="utf-8")
    stored = json.loads((root / "records" / f"{first['run_id']}.json").read_text(encoding="utf-8"))
    assert stored["tasks"]["countdown"]["samples"][0]["output"] == "3×5+7 = 22 ✓"
