"""`make bench` section: real-size data throughput, each figure beside a baseline from the same run.

On the synthetic preference corpus of `data_pipeline` (plus 1% exact duplicates up to case and
spacing), every measured run is a fresh process, so each has its own peak RSS and a rerun is
what a user's rerun is:

1. the whole flagship-style pipeline (dedup, minhash_dedup, pair_filter, label_noise,
   length_filter, length_curriculum), cold and then on its cache; its `length_filter` tokens/s
   against the tokenizer's own ceiling (`tokenizers.Tokenizer.encode_batch` on a sample of
   the corpus's texts in one call, measured in the same process just before and just after);
2. the anchor: `dedup -> length_filter -> length_curriculum` against the plain `datasets`
   script in `harness.bench.datasets_script` (same steps, same tokenizer, `num_proc` = cores),
   cold and rerun, each side with its own fresh caches; the two outputs must be the same rows
   in the same order.

`--n 1000000 --section data_throughput` is the memory check for a million rows.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CEILING_TEXTS = 30_000  # texts in the ceiling's one encode_batch call (about 3.5 M tokens here)
EXACT_FRACTION = 0.01

_WHOLE = """
    - {step: dedup, key: triple}
    - {step: minhash_dedup, field: response, threshold: 0.7, ngram: 5, num_perm: 128, bands: 32}
    - pair_filter
    - {step: label_noise, flip_rate: 0.1}
    - {step: length_filter, field: total, max_tokens: 2048}
    - {step: length_curriculum, order: ascending}"""
_ANCHORED = """
    - {{step: dedup, key: triple}}
    - {{step: length_filter, field: total, max_tokens: {max_tokens}}}
    - {{step: length_curriculum, order: ascending}}"""


def anchor_max_tokens(words: int) -> int:
    """A limit that drops the longest tenth or so of the corpus (prompt ~25 tokens, responses
    words +- 30), so the length filter has work to do on both sides."""
    return 25 + words + 20


# ------------------------------------------------------------------ the measured process

def measure_harness(recipe_path: str, keys_out: str) -> dict:
    """Run the recipe's data pipeline once; figures as a dict (run in a fresh process)."""
    import functools

    import datasets
    import transformers  # noqa: F401  imports are not the work being timed (nor on the datasets side)
    import xxhash

    from harness.data import lengths, pipeline
    from harness.data.steps.dedup import dedup_key
    from harness.models import load_tokenizer, tokenizer_id
    from harness.recipe import load

    datasets.disable_progress_bars()
    recipe = load(recipe_path)
    tokenizer = functools.cache(lambda: load_tokenizer(recipe.model))
    memory = []  # (node label, peak RSS so far in MiB) after each node

    def log(line: str) -> None:
        memory.append((line.split()[0], _peak_rss_mb()))

    start = time.perf_counter()
    result = pipeline.run(recipe.data, recipe.seed, tokenizer_id(recipe.model), tokenizer, log=log)
    seconds = time.perf_counter() - start
    rss_mb = _peak_rss_mb()
    encoded = lengths.counter(tokenizer()) if tokenizer.cache_info().currsize else None
    with open(keys_out, "w", encoding="utf-8") as f:
        f.writelines(xxhash.xxh3_128_hexdigest(dedup_key(e, "triple").encode("utf-8")) + "\n"
                     for e in result.examples)
    figures = {"seconds": seconds, "rows": len(result.examples), "rss_mb": rss_mb,
               "steps": [{k: s.get(k) for k in ("label", "seconds", "cached", "rows_in", "rows_out")}
                         for s in result.stats], "memory": memory,
               "encoded": encoded and {"texts": encoded.texts, "tokens": encoded.tokens, "seconds": encoded.seconds}}
    return figures


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tokenizer_ceiling(tokenizer_dir: str, corpus: str, n_texts: int) -> dict:
    """The `tokenizers` library's own speed: one `Tokenizer.encode_batch` call (no special tokens)
    over the prompt, chosen and rejected texts of the corpus's first rows (run in a process of its
    own, so its encodings weigh on no pipeline's peak RSS)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(tokenizer_dir) / "tokenizer.json"))
    texts = []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts += ["\n".join(m["content"] for m in row[c]) for c in ("prompt", "chosen", "rejected")]
            if len(texts) >= n_texts:
                break
    start = time.perf_counter()
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    seconds = time.perf_counter() - start
    return {"texts": len(texts), "tokens": sum(len(e) for e in encodings), "seconds": seconds}


# ------------------------------------------------------------------ the section

def run(args) -> None:
    from harness.bench.data_pipeline import corpus_rows
    from harness.models import embedded_tokenizer_dir
    from harness.recipe import ModelConfig

    cores = os.cpu_count()
    tokenizer_dir = embedded_tokenizer_dir(ModelConfig().name_or_path)  # the one-off conversion, not timed
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus.jsonl"
        start = time.perf_counter()
        rows, _ = corpus_rows(args.n, args.dup_fraction, args.words, exact_fraction=EXACT_FRACTION)
        _write_corpus(rows, corpus)
        del rows
        print(f"data throughput: {args.n} pairs ({EXACT_FRACTION:.0%} exact and {args.dup_fraction:.0%} near "
              f"duplicates, ~{args.words} words per response; {corpus.stat().st_size / 2**20:,.0f} MiB jsonl, "
              f"written in {time.perf_counter() - start:.0f}s), {cores} cores")

        whole = _recipe(tmp, "whole", corpus, _WHOLE)
        ceiling = [str(tokenizer_dir), str(corpus), str(CEILING_TEXTS)]
        before = _child(tmp, "ceiling", "ceiling", *ceiling)  # just before and just after the cold run
        cold = _child(tmp, "whole", "pipeline", whole)
        after = _child(tmp, "ceiling", "ceiling", *ceiling)
        warm = _child(tmp, "whole", "pipeline", whole)
        _report_whole(args.n, cold, warm, [before, after])

        max_tokens = anchor_max_tokens(args.words)
        anchored = _recipe(tmp, "anchored", corpus, _ANCHORED.format(max_tokens=max_tokens))
        script = [str(corpus), str(tokenizer_dir), str(max_tokens), str(cores)]
        runs = {}
        for attempt in ("cold", "rerun"):  # alternated, so load from other work hits both sides alike
            runs["harness", attempt] = _child(tmp, "anchored", "pipeline", anchored)
            runs["datasets", attempt] = _child(tmp, "datasets", "datasets", *script)
        _report_anchor(args.n, max_tokens, cores, runs, tmp)


def _write_corpus(rows, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for prompt, chosen, rejected in rows:
            f.write(json.dumps({"prompt": [{"role": "user", "content": prompt}],
                                "chosen": [{"role": "assistant", "content": chosen}],
                                "rejected": [{"role": "assistant", "content": rejected}]}) + "\n")


def _recipe(tmp: Path, name: str, corpus: Path, steps: str) -> Path:
    path = tmp / "recipes" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: {name}\ndata:\n  sources: [{{source: local, path: {corpus}, format: trl, "
                    f"kind: preference}}]\n  steps:{steps}\n  write_rejects: false\n", encoding="utf-8")
    return path


_runs = 0


def _child(tmp: Path, caches: str, kind: str, *argv) -> dict:
    """One measured run in a fresh process: `pipeline` (a recipe's data), `ceiling` or `datasets`
    (the anchor script); `caches` names its cache folders (shared by a cold run and its rerun,
    never by the two sides)."""
    from harness import paths

    global _runs
    _runs += 1
    keys = tmp / f"keys-{_runs}.txt"
    # the embedded tokenizer converted once, outside every clock (it lives under the cache by default)
    env = {**os.environ, "HARNESS_MODELS": str(paths.models_root()), "HARNESS_CACHE": str(tmp / caches / "harness"), "HF_DATASETS_CACHE": str(tmp / caches / "hf"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    if kind == "datasets":
        command = [sys.executable, "-m", "harness.bench.datasets_script", *argv, str(keys)]
    else:
        command = [sys.executable, "-m", __name__, kind, *map(str, argv), str(keys)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bench run {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {**figures, "process_s": time.perf_counter() - start, "keys": keys}


def _mtok(d: dict) -> float:
    return d["tokens"] / d["seconds"] / 1e6


def _report_whole(n: int, cold: dict, warm: dict, ceilings: list[dict]) -> None:
    steps = ", ".join(f"{s['label'].split(':')[-1]} {s['seconds']:.1f}s" for s in cold["steps"])
    print(f"whole pipeline (cold)   {cold['seconds']:7.1f}s  {n / cold['seconds']:8,.0f} examples/s  "
          f"({cold['rows']} rows out)  peak RSS {cold['rss_mb'] / 1024:.2f} GiB")
    print(f"  per step: {steps}")
    print("  peak RSS after each node: " + ", ".join(f"{label.split(':')[-1]} {mb / 1024:.2f}"
                                                     for label, mb in cold["memory"]) + " GiB")
    print(f"whole pipeline (cached) {warm['seconds']:7.1f}s  {n / warm['seconds']:8,.0f} examples/s  "
          f"-> {cold['seconds'] / warm['seconds']:.1f}x faster than cold  peak RSS {warm['rss_mb'] / 1024:.2f} GiB")
    step = next(s for s in cold["steps"] if s["label"].endswith("length_filter"))
    encoded = cold["encoded"]
    ceiling = sum(c["tokens"] for c in ceilings) / sum(c["seconds"] for c in ceilings) / 1e6
    ours = encoded["tokens"] / step["seconds"] / 1e6
    print(f"  tokenizer ceiling {ceiling:.2f} M tok/s (encode_batch, {ceilings[0]['texts']} texts in one call; "
          f"{_mtok(ceilings[0]):.2f} before, {_mtok(ceilings[1]):.2f} after the run), "
          f"length_filter {ours:.2f} M tok/s ({encoded['tokens'] / 1e6:.1f} M tokens of {encoded['texts']} "
          f"distinct texts in the step's {step['seconds']:.1f}s), ratio {ours / ceiling:.2f}; "
          f"its encoding alone {_mtok(encoded):.2f} M tok/s, ratio {_mtok(encoded) / ceiling:.2f} "
          f"(the rest is loading the tokenizer, text views and the filter)")


def _report_anchor(n: int, max_tokens: int, cores: int, runs: dict, tmp: Path) -> None:
    print(f"dedup + length filter (<= {max_tokens} tokens) + sort: harness recipe vs a plain `datasets` script "
          f"(num_proc={cores}, same tokenizer through encode_batch, own caches)")
    for attempt in ("cold", "rerun"):
        ours, theirs = runs["harness", attempt], runs["datasets", attempt]
        print(f"  {attempt:<5}  harness {ours['seconds']:7.1f}s ({n / ours['seconds']:8,.0f} examples/s, "
              f"peak RSS {ours['rss_mb'] / 1024:.2f} GiB)   datasets {theirs['seconds']:7.1f}s "
              f"({n / theirs['seconds']:8,.0f} examples/s, peak RSS {theirs['rss_mb'] / 1024:.2f} GiB, "
              f"workers {theirs['workers_rss_mb'] / 1024:.2f} GiB)   -> harness {theirs['seconds'] / ours['seconds']:.2f}x")
    steps = ", ".join(f"{s['label'].split(':')[-1]} {s['seconds']:.1f}s" for s in runs["harness", "cold"]["steps"])
    print(f"  harness cold per step: {steps}")
    cold = runs["datasets", "cold"]
    print(f"  harness rerun vs datasets cold: {cold['seconds'] / runs['harness', 'rerun']['seconds']:.1f}x faster")
    same = all(runs[k]["keys"].read_text(encoding="utf-8") == runs["harness", "cold"]["keys"].read_text(encoding="utf-8")
               for k in runs)
    print(f"  outputs: {runs['harness', 'cold']['rows']} rows; the same rows in the same order on both sides "
          f"and in every run: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    kind, *rest, keys_out = sys.argv[1:]
    if kind == "ceiling":
        tokenizer_dir, corpus, n_texts = rest
        print(json.dumps(tokenizer_ceiling(tokenizer_dir, corpus, int(n_texts))))
    else:
        print(json.dumps(measure_harness(rest[0], keys_out)))
