"""Unit tests for each data step on hand-made examples: counts, reasons, determinism."""

from __future__ import annotations

import pytest
from helpers import apply, chat, pair

from harness.data import example as ex
from harness.data.steps.dedup import Dedup
from harness.data.steps.label_noise import LabelNoise
from harness.data.steps.length_curriculum import LengthCurriculum
from harness.data.steps.length_filter import LengthFilter
from harness.data.steps.mixture import Mixture, counts_from_weights
from harness.data.steps.pair_filter import PairFilter
from harness.data.steps.sample import Sample
from harness.errors import HarnessError


def test_dedup_prompt_normalises_case_and_whitespace():
    rows = [pair("What is 2+2?", "4", "5"), pair("  what is   2+2? ", "four", "5"), pair("Other", "a", "b")]
    kept, ctx = apply(Dedup(key="prompt"), rows)
    assert [r["id"] for r in kept] == [rows[0]["id"], rows[2]["id"]]
    assert ctx.drops == {"duplicate_prompt": 1}
    assert ctx.rejects[0]["duplicate_of"] == rows[0]["id"]


def test_dedup_triple_keeps_same_prompt_with_other_answers():
    rows = [pair("Q", "a", "b"), pair("q", "A", "B"), pair("Q", "a", "c")]
    kept, ctx = apply(Dedup(key="triple"), rows)
    assert len(kept) == 2 and ctx.drops == {"duplicate_triple": 1}
    kept, ctx = apply(Dedup(key="prompt"), rows)
    assert len(kept) == 1 and ctx.drops == {"duplicate_prompt": 2}


def test_dedup_example_on_sft():
    rows = [chat("hi", "hello"), chat("HI", "Hello"), chat("hi", "hey")]
    kept, ctx = apply(Dedup(key="example"), rows)
    assert len(kept) == 2 and ctx.drops == {"duplicate_example": 1}


def test_pair_filter_reasons():
    rows = [
        pair("p1", "Same answer", "same   answer"),                       # identical after normalising
        pair("p2", "x", "y", score_chosen=3.0, score_rejected=3.0),       # tie
        pair("p3", "x", "y"),                                             # chosen x is rejected below
        pair("p3", "z", "x"),
        pair("p4", "good", "bad", score_chosen=5.0, score_rejected=1.0),  # clean
    ]
    kept, ctx = apply(PairFilter(), rows)
    assert ctx.drops == {"identical_pair": 1, "tie": 1, "contradicted": 1}
    assert [r["id"] for r in kept] == [rows[3]["id"], rows[4]["id"]]


def test_pair_filter_mutual_contradiction_drops_both_and_can_be_disabled():
    rows = [pair("p", "x", "y"), pair("p", "y", "x")]
    kept, ctx = apply(PairFilter(), rows)
    assert kept == [] and ctx.drops == {"contradicted": 2}
    kept, _ = apply(PairFilter(contradictions=False), rows)
    assert len(kept) == 2


def test_pair_filter_rejects_sft_examples_with_a_clear_error():
    with pytest.raises(HarnessError, match="needs preference examples"):
        apply(PairFilter(), [chat("a", "b")])


def test_label_noise_flips_by_seed_and_id_only():
    rows = [pair(f"prompt {i}", f"good {i}", f"bad {i}", score_chosen=2.0, score_rejected=1.0) for i in range(2000)]
    kept, ctx = apply(LabelNoise(flip_rate=0.25), rows, seed=7)
    flipped = [r for r in kept if r["metadata"].get("label_flipped")]
    assert ctx.counters["flipped"] == len(flipped)
    assert 0.22 < len(flipped) / len(rows) < 0.28
    f = flipped[0]
    original = next(r for r in rows if r["id"] == f["id"])
    assert f["chosen"] == original["rejected"] and f["rejected"] == original["chosen"]
    assert (f["score_chosen"], f["score_rejected"]) == (1.0, 2.0)
    assert "label_flipped" not in original["metadata"]  # input rows are never mutated
    # removing other rows upstream does not change any decision
    subset, _ = apply(LabelNoise(flip_rate=0.25), rows[::3], seed=7)
    flipped_ids = {r["id"] for r in flipped}
    assert {r["id"] for r in subset if r["metadata"].get("label_flipped")} == {r["id"] for r in rows[::3]} & flipped_ids
    other, _ = apply(LabelNoise(flip_rate=0.25), rows, seed=8)
    assert {r["id"] for r in other if r["metadata"].get("label_flipped")} != flipped_ids


def test_label_noise_extremes():
    rows = [pair(f"p{i}", "a", "b") for i in range(50)]
    assert apply(LabelNoise(flip_rate=0.0), rows)[1].counters["flipped"] == 0
    assert apply(LabelNoise(flip_rate=1.0), rows)[1].counters["flipped"] == 50


def test_sample_count_fraction_and_stability():
    rows = [chat(f"q{i}", "a") for i in range(100)]
    kept, ctx = apply(Sample(n=10), rows, seed=1)
    assert len(kept) == 10 and ctx.drops == {"not_sampled": 90}
    assert [r["id"] for r in kept] == [r["id"] for r in rows if r in kept]  # order preserved
    again, _ = apply(Sample(n=10), rows, seed=1)
    assert again == kept
    assert apply(Sample(n=10), rows, seed=2)[0] != kept
    assert len(apply(Sample(fraction=0.25), rows)[0]) == 25
    assert len(apply(Sample(n=500), rows)[0]) == 100


def test_mixture_counts_and_no_silent_oversampling():
    rows = [chat(f"a{i}", "x", source="a") for i in range(30)] + [chat(f"b{i}", "x", source="b") for i in range(10)]
    kept, ctx = apply(Mixture(counts={"a": 20, "b": 5}), rows)
    assert sum(r["source"] == "a" for r in kept) == 20 and sum(r["source"] == "b" for r in kept) == 5
    assert ctx.drops == {"not_sampled": 15}
    with pytest.raises(HarnessError, match="source 'b' has 10 examples but 12 are requested"):
        apply(Mixture(counts={"a": 5, "b": 12}), rows)
    kept, ctx = apply(Mixture(counts={"a": 5, "b": 12}, replace=True), rows)
    repeats = [r for r in kept if "repeat_of" in r["metadata"]]
    assert len(repeats) == 2 and ctx.counters["repeated"] == 2
    assert len({r["id"] for r in kept}) == len(kept)  # repeats get their own ids


def test_mixture_weights_and_unlisted_sources():
    rows = ([chat(f"a{i}", "x", source="a") for i in range(40)] + [chat(f"b{i}", "x", source="b") for i in range(40)]
            + [chat(f"c{i}", "x", source="c") for i in range(5)])
    kept, ctx = apply(Mixture(weights={"a": 3, "b": 1}, total=40), rows)
    assert sum(r["source"] == "a" for r in kept) == 30 and sum(r["source"] == "b" for r in kept) == 10
    assert ctx.drops["not_in_mixture"] == 5
    # without a total: the largest mixture that needs no repeats
    assert counts_from_weights({"a": 0.5, "b": 0.5}, {"a": 40, "b": 10}, None) == {"a": 10, "b": 10}
    with pytest.raises(HarnessError, match="no examples from source 'zz'"):
        apply(Mixture(counts={"zz": 1}), rows)


def test_length_filter_counts_tokens_with_the_model_tokenizer(tokenizer):
    short = chat("hi", "ok")
    long = chat("hi", "word " * 300)
    kept, ctx = apply(LengthFilter(field="response", min_tokens=2, max_tokens=100), [short, long], tokenizer=tokenizer)
    assert kept == [] and ctx.drops == {"too_short_response": 1, "too_long_response": 1}
    n = len(tokenizer("word " * 300, add_special_tokens=False)["input_ids"])
    assert ctx.rejects[1]["tokens"] == n
    kept, _ = apply(LengthFilter(field="prompt", max_tokens=5), [short, long], tokenizer=tokenizer)
    assert len(kept) == 2


def test_length_filter_uses_longer_response_of_a_pair(tokenizer):
    p = pair("q", "short", "a much longer rejected answer " * 10)
    kept, ctx = apply(LengthFilter(field="response", max_tokens=20), [p], tokenizer=tokenizer)
    assert kept == [] and ctx.drops == {"too_long_response": 1}


@pytest.mark.parametrize("order", ["ascending", "descending", "bucketed"])
def test_length_curriculum_orders(order, tokenizer):
    rows = [chat(f"q{i}", "tok " * n) for i, n in enumerate([30, 5, 50, 1, 20, 40, 10, 60])]
    kept, ctx = apply(LengthCurriculum(order=order, field="response", buckets=2), rows, tokenizer=tokenizer)
    lengths = [len(r["messages"][-1]["content"].split()) for r in kept]
    assert sorted(lengths) == sorted([30, 5, 50, 1, 20, 40, 10, 60]) and not ctx.drops
    if order == "ascending":
        assert lengths == sorted(lengths)
    elif order == "descending":
        assert lengths == sorted(lengths, reverse=True)
    else:
        assert max(lengths[:4]) < min(lengths[4:])  # short bucket first, shuffled inside


def test_steps_never_mutate_their_inputs(tokenizer):
    rows = [pair(f"p{i}", f"c{i}", f"r{i}") for i in range(20)]
    snapshot = [ex_copy(r) for r in rows]
    for step in (Dedup(), PairFilter(), LabelNoise(flip_rate=0.5), Sample(n=5), LengthCurriculum()):
        apply(step, rows, tokenizer=tokenizer)
    assert rows == snapshot


def ex_copy(row):
    import copy

    return copy.deepcopy(row)


def test_example_ids_are_content_hashes():
    assert pair("q", "a", "b")["id"] == pair("q", "a", "b", source="other")["id"]
    assert pair("q", "a", "b")["id"] != pair("q", "b", "a")["id"]
    assert ex.prompt([ex.user("q")], "s", {"target": 1})["id"] != ex.prompt([ex.user("q")], "s", {"target": 2})["id"]
