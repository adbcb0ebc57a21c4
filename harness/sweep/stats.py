"""Multi-seed statistics: a two-stage (hierarchical) bootstrap over seeds and items, and Holm's correction.

A sweep point run with several seeds has two sources of variation: the training run (seed) and the
finite set of eval items. Resampling only items understates the uncertainty of a setting; resampling
only seed means ignores that each seed's score is itself estimated. The two-stage bootstrap resamples
the top level (seeds) with replacement, then the items within each resampled seed with replacement
(Davison & Hinkley, 1997, "Bootstrap Methods and their Application", section 3.8; Field & Welsh,
2007). Each resample's statistic is the mean over seeds of the mean over items, the same estimator as
the point estimate, and the 95% CI is the percentile interval.

The paired form compares two settings run on the same seeds and items: seed s of A is paired with
seed s of B and items are matched by id, so the per-item differences are resampled in the same two
stages. Several settings tested against one baseline are corrected with Holm's step-down procedure
(Holm, 1979), which controls the family-wise error rate without assuming independence.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
METHOD = ("hierarchical bootstrap (Davison & Hinkley 1997, sec. 3.8): resample seeds with replacement, then items "
          f"with replacement within each seed; {RESAMPLES} resamples, percentile 95% CI")
PAIRED_METHOD = ("paired hierarchical bootstrap: seed s of A paired with seed s of B, items matched by id; resample "
                 "seeds, then items within each seed; two-sided p")
HOLM = "Holm (1979) step-down correction over the comparisons with the baseline, per metric"
_CHUNK = 256   # resamples per block, so memory stays bounded with many seeds and items


def _arrays(groups) -> list[np.ndarray]:
    """Per-seed score arrays with unscored items (None) dropped; seeds with no scored item left out."""
    out = [np.array([s for s in g if s is not None], dtype=np.float64) for g in groups]
    return [a for a in out if len(a)]


def two_stage_means(groups: list[np.ndarray], resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """`resamples` bootstrap replicates of mean-over-seeds(mean-over-items), resampling seeds, then items
    within each chosen seed. Seeds may have different numbers of items."""
    rng = np.random.default_rng(seed)
    count = len(groups)
    sizes = np.array([len(g) for g in groups])
    width = int(sizes.max())
    table = np.zeros((count, width))
    for i, g in enumerate(groups):
        table[i, :len(g)] = g
    out = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        block = min(_CHUNK, resamples - start)
        chosen = rng.integers(0, count, size=(block, count))            # seeds, with replacement
        n = sizes[chosen][..., None]                                      # items of each chosen seed
        items = np.floor(rng.random((block, count, width)) * n).astype(np.int64)   # items within it
        used = np.arange(width) < n
        values = np.where(used, table[chosen[..., None], items], 0.0)
        out[start:start + block] = (values.sum(axis=-1) / n[..., 0]).mean(axis=-1)
    return out


def aggregate(groups, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """One setting's result over seeds: `groups` holds each seed's per-item scores.

    mean: the mean over seeds of each seed's item mean; sd: the standard deviation of the seed means
    (ddof 1; null with one seed); ci95: the two-stage bootstrap interval (with one seed it is the
    item bootstrap)."""
    arrays = _arrays(groups)
    if not arrays:
        return {"mean": None, "sd": None, "ci95": None, "n_seeds": 0, "n_items": [], "seed_means": []}
    seed_means = [float(a.mean()) for a in arrays]
    boot = two_stage_means(arrays, resamples, seed)
    low, high = np.quantile(boot, [0.025, 0.975])
    return {"mean": float(np.mean(seed_means)),
            "sd": float(np.std(seed_means, ddof=1)) if len(arrays) > 1 else None,
            "ci95": [float(low), float(high)], "n_seeds": len(arrays), "n_items": [len(a) for a in arrays],
            "seed_means": seed_means}


def paired(a: dict, b: dict, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """B - A over the seeds both ran and the items both scored in that seed.

    `a` and `b` map seed -> (item ids, scores). Returns difference, ci95, p_value (two-sided, with the
    +1 correction so it is never 0; 1.0 when every difference is 0), n_seeds and n_items."""
    seeds = [s for s in a if s in b]
    diffs = []
    for s in seeds:
        ids_a, scores_a = a[s]
        index = {item: i for i, item in enumerate(b[s][0])}
        scores_b = b[s][1]
        pairs = [(x, scores_b[index[item]]) for item, x in zip(ids_a, scores_a) if item in index]
        d = np.array([y - x for x, y in pairs if x is not None and y is not None], dtype=np.float64)
        if len(d):
            diffs.append(d)
    if not diffs or sum(len(d) for d in diffs) < 2:
        return {"difference": None, "ci95": None, "p_value": None, "n_seeds": len(diffs),
                "n_items": sum(len(d) for d in diffs)}
    observed = float(np.mean([d.mean() for d in diffs]))
    boot = two_stage_means(diffs, resamples, seed)
    if all(np.all(d == 0) for d in diffs):
        p = 1.0
    else:
        tail = np.sum(boot <= 0) if observed > 0 else np.sum(boot >= 0)
        p = min(1.0, 2 * (tail + 1) / (resamples + 1))
    low, high = np.quantile(boot, [0.025, 0.975])
    return {"difference": observed, "ci95": [float(low), float(high)], "p_value": float(p),
            "n_seeds": len(diffs), "n_items": int(sum(len(d) for d in diffs))}


def holm(pvalues: list) -> list:
    """Holm's step-down adjusted p-values, in the input order (None stays None and is not counted).

    Sorted ascending, the k-th smallest of m p-values is multiplied by (m - k + 1); adjusted values are
    made non-decreasing in that order and capped at 1."""
    order = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    m = len(order)
    out: list = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out
