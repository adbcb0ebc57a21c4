"""Uncertainty for eval metrics: standard error, bootstrap CIs and paired bootstrap tests.

Per-item scores are resampled with a fixed seed so reports are reproducible.
The percentile bootstrap (Efron & Tibshirani, 1993) is used for 95% CIs; the
paired test resamples items jointly for two runs on the same items, the usual
way to compare two models on one benchmark (Koehn, 2004; Berg-Kirkpatrick et
al., 2012).
"""

from __future__ import annotations

import math

import numpy as np

RESAMPLES = 2000


def clean(scores) -> np.ndarray:
    """Scores as floats, with unscored items (None) dropped."""
    return np.array([s for s in scores if s is not None], dtype=np.float64)


def mean(scores) -> float | None:
    values = clean(scores)
    return float(values.mean()) if len(values) else None


def stderr(scores) -> float | None:
    """Standard error of the mean (sample standard deviation / sqrt(n))."""
    values = clean(scores)
    if len(values) < 2:
        return None
    return float(values.std(ddof=1) / math.sqrt(len(values)))


def bootstrap_ci(scores, confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap interval of the mean."""
    values = clean(scores)
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return [float(low), float(high)]


def summary(scores, seed: int = 0) -> dict:
    """{value, stderr, ci95, n} for one metric's per-item scores."""
    return {"value": mean(scores), "stderr": stderr(scores), "ci95": bootstrap_ci(scores, seed=seed),
            "n": int(len(clean(scores)))}


def paired_bootstrap(a, b, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Difference of means (b - a) over items scored in both runs, its 95% CI and a two-sided p-value.

    The p-value is the share of resampled differences on the other side of zero
    (doubled), with the usual +1 correction so it is never exactly 0.
    """
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < 2:
        return {"n": len(pairs), "difference": None, "ci95": None, "p_value": None}
    x, y = (np.array(v, dtype=np.float64) for v in zip(*pairs))
    diff = y - x
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    observed = float(diff.mean())
    if np.all(diff == 0):
        p = 1.0
    else:
        tail = np.sum(means <= 0) if observed > 0 else np.sum(means >= 0)
        p = min(1.0, 2 * (tail + 1) / (resamples + 1))
    low, high = np.quantile(means, [0.025, 0.975])
    return {"n": len(diff), "difference": observed, "ci95": [float(low), float(high)], "p_value": float(p)}
