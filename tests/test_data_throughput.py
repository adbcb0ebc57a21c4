"""The data-throughput bench compares like with like: the plain `datasets` anchor script and the
harness recipe keep the same rows in the same order on a small corpus with planted duplicates."""

from __future__ import annotations

from harness.bench import data_throughput, datasets_script
from harness.bench.data_pipeline import corpus_rows
from harness.models import embedded_tokenizer_dir
from harness.recipe import ModelConfig


def test_anchor_script_and_harness_keep_the_same_rows_in_the_same_order(workspace, tokenizer):
    rows, _ = corpus_rows(120, 0.05, 40, exact_fraction=0.1)
    corpus = workspace / "corpus.jsonl"
    data_throughput._write_corpus(rows, corpus)
    max_tokens = data_throughput.anchor_max_tokens(40)
    recipe = data_throughput._recipe(workspace, "anchored", corpus,
                                     data_throughput._ANCHORED.format(max_tokens=max_tokens))

    figures = data_throughput.measure_pipeline(str(recipe), str(workspace / "harness.txt"))
    ours = (workspace / "harness.txt").read_text().split()
    drops = {s["label"]: s["rows_in"] - s["rows_out"] for s in figures["steps"] if s["rows_in"] is not None}
    assert drops["1:dedup"] == 12  # the planted exact copies, which differ only in case and spacing
    assert 0 < drops["2:length_filter"] < 108
    assert figures["encoded"]["texts"] > 0 and figures["rows"] == len(ours) == 108 - drops["2:length_filter"]

    anchor = datasets_script.prepare(str(corpus), str(embedded_tokenizer_dir(ModelConfig().name_or_path)),
                                     max_tokens, num_proc=1)
    assert list(anchor["key"][:]) == ours
    assert list(anchor["tokens"][:]) == sorted(anchor["tokens"][:]) and max(anchor["tokens"][:]) <= max_tokens


def test_a_prepared_dataset_is_reused_without_reading_the_step_cache(workspace, tokenizer):
    """A rerun finds the finished folder by the planned fingerprint: even with the step cache gone it
    computes nothing, and still prints every node's line (marked cached) from the manifest."""
    import shutil

    from harness.data.prepare import prepare
    from harness.recipe import load

    rows, _ = corpus_rows(40, 0.0, 40, exact_fraction=0.1)
    corpus = workspace / "corpus.jsonl"
    data_throughput._write_corpus(rows, corpus)
    steps = data_throughput._ANCHORED.format(max_tokens=85)
    recipe = load(data_throughput._recipe(workspace, "reuse", corpus, steps))
    first_lines, again_lines = [], []
    first = prepare(recipe, log=first_lines.append)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    shutil.rmtree(workspace / "cache" / "data")
    again = prepare(recipe, log=again_lines.append)
    assert again == first and (again / "manifest.json").stat().st_mtime_ns == stamp
    assert not (workspace / "cache" / "data").exists()  # nothing read, nothing recomputed
    assert again_lines[-1] == f"reusing {first}" and first_lines[-1].startswith("wrote ")
    assert [line.split("[")[0] for line in again_lines[:-1]] == [line.split("[")[0] for line in first_lines[:-1]]
    assert all("[cached]" in line for line in again_lines[:-1]) and "duplicate_triple=4" in again_lines[1]

    changed = load(data_throughput._recipe(workspace, "reuse", corpus, steps.replace("max_tokens: 85", "max_tokens: 60")))
    other_lines = []
    assert prepare(changed, log=other_lines.append) != first and other_lines[-1].startswith("wrote ")


def test_the_synthetic_corpus_plants_near_and_exact_duplicates(tokenizer):
    """The bench's corpus, built a chunk at a time from arrays drawn up front: near copies share the
    prompt and differ in at most 3 words per response, exact copies differ only in case and spacing,
    and the same seed gives the same rows however they are chunked."""
    from harness.bench.data_pipeline import corpus_stream
    from harness.data.example import normalize

    rows, planted = corpus_rows(400, 0.05, 40, seed=3, exact_fraction=0.02)
    assert len(rows) == 400 and len(planted) == 20 and len({b for _, b in planted}) == 20
    for a, b in planted:
        assert rows[a][0] == rows[b][0] and rows[a] != rows[b]
        for original, copy in zip(rows[a][1:], rows[b][1:]):
            changed = sum(x != y for x, y in zip(original.split(), copy.split()))
            assert len(original.split()) == len(copy.split()) and 1 <= changed <= 3
    triples = {tuple(normalize(t) for t in row) for row in rows}
    assert len(triples) == 400 - 8  # 2% exact copies, up to case and spacing
    assert sum(row[0].isupper() for row in rows) == 8
    words = [len(row[1].split()) for row in rows]
    assert min(words) >= 10 and max(words) <= 70 and abs(sum(words) / len(words) - 40) < 4
    again_planted, again = corpus_stream(400, 0.05, 40, seed=3, exact_fraction=0.02, chunk=7)
    assert list(again) == rows and again_planted == planted
    assert corpus_rows(400, 0.05, 40, seed=4, exact_fraction=0.02)[0] != rows
