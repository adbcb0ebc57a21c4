"""Multi-seed statistics of sweeps: the hierarchical bootstrap, its paired form, and Holm's correction."""

from __future__ import annotations

import pytest

from harness.sweep.stats import aggregate, holm, paired


def test_mean_and_sd_over_seeds_are_exact():
    seeds = [[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]]      # seed means 0.5, 0.75, 0.25
    result = aggregate(seeds)
    assert result["seed_means"] == [0.5, 0.75, 0.25]
    assert result["mean"] == pytest.approx(0.5)
    assert result["sd"] == pytest.approx(0.25)               # sd of (0.5, 0.75, 0.25), ddof 1
    assert result["n_seeds"] == 3 and result["n_items"] == [4, 4, 4]
    low, high = result["ci95"]
    assert 0.0 <= low < 0.5 < high <= 1.0


def test_unscored_items_are_dropped_and_constant_scores_give_a_point_interval():
    result = aggregate([[1.0, None, 1.0], [1.0, 1.0]])
    assert result["mean"] == 1.0 and result["sd"] == 0.0 and result["n_items"] == [2, 2]
    assert result["ci95"] == [1.0, 1.0]
    one = aggregate([[0, 1, 1, 1]])
    assert one["sd"] is None and one["n_seeds"] == 1 and one["mean"] == 0.75
    assert aggregate([[None], []])["mean"] is None


def test_the_interval_widens_when_seeds_disagree():
    def seed(ones):   # 20 items, `ones` of them correct
        return [1.0] * ones + [0.0] * (20 - ones)

    agree = aggregate([seed(10), seed(10), seed(10)])
    disagree = aggregate([seed(4), seed(10), seed(16)])     # same overall mean, seeds far apart
    assert agree["mean"] == pytest.approx(0.5) and disagree["mean"] == pytest.approx(0.5)
    width = lambda r: r["ci95"][1] - r["ci95"][0]
    assert width(disagree) > 1.5 * width(agree)
    # resampling only items would miss this: within each seed the item spread is the same or smaller
    assert disagree["sd"] == pytest.approx(0.3)


def test_paired_comparison_matches_seeds_and_items_by_id():
    ids = ["a", "b", "c", "d"]
    a = {0: (ids, [0, 0, 0, 0]), 1: (ids, [1, 0, 0, 0]), 2: (ids, [1, 1, 1, 1])}
    b = {0: (ids[::-1], [0, 0, 1, 1]),       # same items listed in reverse: a and b improve
         1: (ids, [1, 1, 1, 0])}             # seed 2 ran only in A: not paired
    result = paired(a, b)
    assert result["n_seeds"] == 2 and result["n_items"] == 8
    assert result["difference"] == pytest.approx(0.5)
    assert result["ci95"][0] > 0 and result["p_value"] < 0.01
    same = paired(a, a)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    worse = paired(b, a)
    assert worse["difference"] == pytest.approx(-0.5) and worse["ci95"][1] < 0


def test_holm_against_hand_computed_adjusted_p_values():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([None, 0.2, 0.6]) == [None, pytest.approx(0.4), pytest.approx(0.6)]
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []
