"""The eval-side decontamination report: which eval items a checkpoint's training data contains.

The training data is found through the checkpoint's lineage (every stage's
`checkpoint.json` names its prepared dataset), read back as text, and scanned
with the same n-gram module the train-side `decontaminate` step uses. Two tests
run per task: any shared `ngram`-gram (GPT-3 / lm-eval style) and one document
covering more than `coverage` of an item's words with `coverage_ngram`-grams
(Tulu 3 style). Items too short for a test are counted, not called clean.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.decontaminate.ngrams import NORMALISER_VERSION, Index, normalise, scan

SNIPPET = 160


def training_documents(chain: list[dict]) -> tuple[list[str], list[str]]:
    """Every training row of every stage in the lineage as one text, and the data folders read."""
    from datasets import load_from_disk

    documents, folders = [], []
    for info in chain:
        folder = _data_folder(info.get("data_dir"))
        if folder is None or str(folder) in folders:
            continue
        folders.append(str(folder))
        for row in load_from_disk(str(folder / "dataset")):
            documents.append(row_text(row))
    return documents, folders


def _data_folder(data_dir: str | None) -> Path | None:
    if not data_dir:
        return None
    from harness import paths

    for candidate in (Path(data_dir), paths.runs_root().parent / data_dir):
        if (candidate / "dataset").is_dir():
            return candidate
    return None


def row_text(row: dict) -> str:
    """All text of a TRL-format row (messages, prompt, chosen, rejected, completion), in order."""
    parts = []
    for key in ("messages", "prompt", "chosen", "rejected", "completion", "text"):
        value = row.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts += [m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str)]
    return "\n".join(parts)


def task_report(items, fields, documents: list[str], settings) -> tuple[dict, set[str]]:
    """(report, contaminated item ids) for one task's items against the training documents."""
    if items is None:
        return {"items": 0, "indexed": 0, "contaminated": 0, "rate": None, "worst": [],
                "note": "eval items not readable offline; not checked"}, set()
    texts = [item.text(fields) for item in items]
    hits: dict[int, dict] = {}
    indexed = set()
    tests = [("coverage", settings.coverage_ngram)] + ([("any", settings.ngram)] if settings.any_overlap else [])
    for test, n in tests:
        index = Index.build(texts, n, settings.common_fraction)
        indexed |= set(range(len(texts))) - set(index.too_short.tolist())
        for m in scan(index, documents):
            if test == "any" or m.coverage > settings.coverage:
                best = hits.get(m.item)
                if best is None or m.coverage > best["coverage"]:
                    hits[m.item] = {"test": test, "coverage": round(m.coverage, 4), "shared_ngrams": m.shared,
                                    "document": m.document, "n": n}
    worst = sorted(hits.items(), key=lambda kv: -kv[1]["coverage"])[:settings.worst]
    report = {
        "items": len(items), "indexed": len(indexed), "contaminated": len(hits),
        "rate": len(hits) / len(items) if items else None,
        "worst": [{"item_id": items[i].id, "test": h["test"], "coverage": h["coverage"],
                   "shared_ngrams": h["shared_ngrams"], "item_snippet": texts[i][:SNIPPET],
                   "document_snippet": _snippet(documents[h["document"]], texts[i], h["n"])} for i, h in worst],
        "note": f"{len(items) - len(indexed)} items shorter than the n-gram size were not testable"
                if len(indexed) < len(items) else "",
    }
    return report, {items[i].id for i in hits}


def _snippet(document: str, item: str, n: int) -> str:
    """The part of the document around the first n-gram it shares with the item (normalised text)."""
    doc, words = normalise(document), normalise(item).split()
    for start in range(max(len(words) - n + 1, 1)):
        at = doc.find(" ".join(words[start:start + n]))
        if at >= 0:
            return " ".join(doc[max(at - SNIPPET // 4, 0):at + SNIPPET].split())
    return " ".join(doc[:SNIPPET].split())


def report(chain: list[dict], tasks: dict, settings) -> tuple[dict, dict[str, set[str]]]:
    """The suite-level report and, per task, the contaminated item ids.

    `tasks` maps a task name to (items or None, indexed fields, that task's settings); the
    suite's `settings` give the gate threshold and the settings shown at the top.
    """
    start = time.perf_counter()
    documents, folders = training_documents(chain)
    base = {"threshold": settings.threshold, "allow_contaminated": False,
            "ngram": settings.ngram if settings.any_overlap else 0,
            "coverage_ngram": settings.coverage_ngram, "coverage": settings.coverage,
            "normaliser_version": NORMALISER_VERSION, "training_documents": len(documents),
            "training_data": folders}
    if not folders:
        return {**base, "status": "not_checked", "runtime_s": 0.0,
                "tasks": {name: {"items": len(items or ()), "indexed": 0, "contaminated": 0, "rate": None,
                                 "worst": [], "note": "no training data in the lineage (a base model)"}
                          for name, (items, _, _) in tasks.items()}}, {name: set() for name in tasks}
    per_task, dirty = {}, {}
    contaminated = False
    for name, (items, fields, task_settings) in tasks.items():
        per_task[name], dirty[name] = task_report(items, fields, documents, task_settings)
        per_task[name]["settings"] = {"any_overlap": task_settings.any_overlap, "ngram": task_settings.ngram,
                                      "coverage_ngram": task_settings.coverage_ngram,
                                      "coverage": task_settings.coverage, "threshold": task_settings.threshold}
        contaminated |= (per_task[name]["rate"] or 0) > task_settings.threshold
    return {**base, "status": "contaminated" if contaminated else "clean",
            "runtime_s": round(time.perf_counter() - start, 3), "tasks": per_task}, dirty
