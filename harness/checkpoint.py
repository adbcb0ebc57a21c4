"""The checkpoint hand-off record: `checkpoint.json` beside the weights, plus a model card.

Every checkpoint says where it came from (recipe and its fingerprint, stage,
parent checkpoint, data fingerprint, base model, seed), what it was built with
(library versions, harness git commit) and how training ended (final metrics),
so an eval row can carry its whole lineage.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import subprocess
from pathlib import Path

SIDECAR = "checkpoint.json"
LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")


def library_versions() -> dict:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def harness_commit() -> str:
    """The harness git commit (with `-dirty` for uncommitted changes), or 'unknown' outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("-dirty" if dirty else "")) if commit else "unknown"


def record(**fields) -> dict:
    return {**fields, "libraries": library_versions(), "harness_commit": harness_commit(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def write(folder: Path, info: dict) -> None:
    (folder / SIDECAR).write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
    (folder / "README.md").write_text(model_card(info), encoding="utf-8")


def read(folder: Path) -> dict | None:
    path = Path(folder) / SIDECAR
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def model_card(info: dict) -> str:
    metrics = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                        for k, v in sorted(info.get("metrics", {}).items()))
    return f"""---
base_model: {info['base_model']}
library_name: transformers
tags: [harness, {info['backend']}, {info['stage']}]
---

# {info['recipe']} / {info['stage']}

A {info['backend']} checkpoint from recipe `{info['recipe']}` (fingerprint `{info['recipe_fingerprint']}`),
stage `{info['stage']}` (fingerprint `{info['fingerprint']}`), started from `{info['parent']}`.

## Training data

Prepared by the harness data pipeline: fingerprint `{info['data_fingerprint']}`, {info.get('data_rows', '?')}
rows from {', '.join(info.get('data_sources', [])) or 'see the manifest'}. The data card and manifest are in
`{info.get('data_dir', '')}`.

## Training

Base model `{info['base_model']}`, seed {info['seed']}, LoRA: {info.get('lora') or 'no (full fine-tuning)'}.
Arguments passed to TRL: `{json.dumps(info.get('args', {}))}`.

| metric | value |
|---|---|
{metrics}

## Intended use and limitations

A research checkpoint for studying post-training recipes. It has not been evaluated for safety or
deployment; small models trained for a few steps on synthetic or narrow data will be unreliable outside
that data. Evaluate it (and check the decontamination report) before drawing conclusions.
"""


def lineage(folder: Path) -> list[dict]:
    """The checkpoints a model descends from, root first, ending with `folder` itself.

    Each stage's `start` is its parent's final folder (or the base model id), so
    the chain is walked through the sidecars; a base model has no lineage.
    """
    chain, seen = [], set()
    current = Path(folder)
    while (info := read(current)) and current.resolve() not in seen:
        seen.add(current.resolve())
        chain.append({**info, "checkpoint": str(current)})
        current = Path(str(info.get("start") or ""))
    return chain[::-1]


def weight_hash(folder: Path) -> str | None:
    """sha256 over the weight files (safetensors or bin) of a checkpoint folder, or None if it has none."""
    import hashlib

    files = sorted(p for p in Path(folder).glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()
