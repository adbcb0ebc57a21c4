"""Where the harness reads and writes; each root can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Step caches and converted models (`HARNESS_CACHE`, default ~/.cache/harness)."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness")


def runs_root() -> Path:
    """Prepared datasets and checkpoints (`HARNESS_RUNS`, default ./runs)."""
    return Path(os.environ.get("HARNESS_RUNS") or "runs")


def cards_root() -> Path:
    """Generated data cards (`HARNESS_CARDS`, default ./data_cards)."""
    return Path(os.environ.get("HARNESS_CARDS") or "data_cards")


def models_root() -> Path:
    """Converted embedded models (`HARNESS_MODELS`, default <cache>/models)."""
    return Path(os.environ.get("HARNESS_MODELS") or cache_root() / "models")


def leaderboard_root() -> Path:
    """leaderboard.json, index.html and the full run records (`HARNESS_LEADERBOARD`, default ./leaderboard)."""
    return Path(os.environ.get("HARNESS_LEADERBOARD") or "leaderboard")
