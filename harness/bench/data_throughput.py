"""`make bench` section: real-size data throughput, each figure beside a baseline from the same run.

On the synthetic preference corpus of `data_pipeline` (plus 1% exact duplicates up to case and
spacing), every measured run is a fresh process, so each has its own peak RSS and a rerun is
what a user's rerun is:

1. the whole flagship-style data pipeline (dedup, minhash_dedup, pair_filter, label_noise,
   length_filter, length_curriculum), cold and then replayed from its step cache; its
   `length_filter` tokens/s against the tokenizer's own ceiling: `tokenizers.Tokenizer.encode_batch`
   on a sample of the corpus's texts in one call, in processes of their own just before and just
   after, per wall second and per CPU second (the latter is steadier on a shared machine);
2. the anchor: `harness data` of a `dedup -> length_filter -> length_curriculum` recipe against
   the plain `datasets` script in `harness.bench.datasets_script` (same steps, same tokenizer,
   `num_proc` = cores, ending with `save_to_disk` as `harness data` ends with its dataset folder),
   cold and rerun, each side with its own fresh caches; both outputs must be the same rows in the
   same order.

`--n 1000000 --section data_memory` is the memory check for a million rows: `harness data` of the
step-1 recipe cold, its step cache replayed, and `harness data` again, each with its peak RSS.
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
    """A limit that drops the longest sixth or so of the corpus (prompt ~25 tokens, responses
    words +- 30), so the length filter has work to do on both sides."""
    return 25 + words + 20


# ------------------------------------------------------------------ the measured processes

def measure_pipeline(recipe_path: str, keys_out: str) -> dict:
    """Run (or replay) the recipe's data pipeline once; figures as a dict."""
    import functools

    import datasets
    import transformers  # noqa: F401  imports are not the work being timed (nor on the datasets side)

    from harness.data import lengths, pipeline
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
    _write_keys([_message_row(e) for e in result.examples], keys_out)
    return {"seconds": seconds, "rows": len(result.examples), "rss_mb": rss_mb, "memory": memory,
            "steps": [{k: s.get(k) for k in ("label", "seconds", "cpu_seconds", "cached", "rows_in", "rows_out")}
                      for s in result.stats],
            "encoded": encoded and {"texts": encoded.texts, "tokens": encoded.tokens, "seconds": encoded.seconds,
                                    "cpu_seconds": encoded.cpu_seconds}}


def measure_prepare(recipe_path: str, keys_out: str) -> dict:
    """`harness data` of the recipe once (pipeline, dataset folder, card); figures as a dict."""
    import datasets
    import transformers  # noqa: F401

    from harness.data.prepare import prepare
    from harness.recipe import load

    datasets.disable_progress_bars()
    recipe = load(recipe_path)
    memory = []  # (node label, peak RSS so far in MiB) after each node

    def log(line: str) -> None:
        if not line.startswith(("wrote ", "reusing ")):
            memory.append((line.split()[0], _peak_rss_mb()))

    start = time.perf_counter()
    folder = prepare(recipe, log=log)
    seconds = time.perf_counter() - start
    rss_mb = _peak_rss_mb()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    dataset = datasets.load_from_disk(str(folder / "dataset"))
    _write_keys(dataset.select_columns(["prompt", "chosen", "rejected"]).to_list(), keys_out)
    return {"seconds": seconds, "rows": len(dataset), "rss_mb": rss_mb, "memory": memory,
            "steps": [{"label": s["label"], "seconds": s["seconds"]} for s in manifest["steps"]]}


def _message_row(example: dict) -> dict:
    return {"prompt": example["prompt"], "chosen": example["chosen"], "rejected": example["rejected"]}


def _write_keys(rows: list[dict], path: str) -> None:
    """Each output row's dedup key (the anchor script's own function), in output order."""
    from harness.bench.datasets_script import dedup_key

    keys = dedup_key({c: [r[c] for r in rows] for c in ("prompt", "chosen", "rejected")})["key"]
    Path(path).write_text("".join(k + "\n" for k in keys), encoding="utf-8")


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
    start, cpu = time.perf_counter(), time.process_time()
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"texts": len(texts), "tokens": sum(len(e) for e in encodings), "seconds": seconds, "cpu_seconds": cpu}


# ------------------------------------------------------------------ the section

def run(args) -> None:
    """Whole pipeline with its tokenizer ceiling, then the anchor comparison."""
    _run(args, anchor=True)


def memory(args) -> None:
    """Peak RSS of `harness data` on the whole-pipeline recipe, cold, replayed and reused (`--n 1000000`)."""
    _run(args, anchor=False)


def _run(args, anchor: bool) -> None:
    from harness.models import embedded_tokenizer_dir
    from harness.recipe import ModelConfig

    cores = os.cpu_count()
    tokenizer_dir = embedded_tokenizer_dir(ModelConfig().name_or_path)  # the one-off conversion, not timed
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus.jsonl"
        start = time.perf_counter()  # written by a process of its own, so this one stays small
        subprocess.run([sys.executable, "-m", __name__, "corpus", str(args.n), str(args.dup_fraction),
                        str(args.words), str(corpus)], check=True)
        print(f"data throughput: {args.n} pairs ({EXACT_FRACTION:.0%} exact and {args.dup_fraction:.0%} near "
              f"duplicates, ~{args.words} words per response; {corpus.stat().st_size / 2**20:,.0f} MiB jsonl, "
              f"written in {time.perf_counter() - start:.0f}s), {cores} cores")

        whole = _recipe(tmp, "whole", corpus, _WHOLE)
        if not anchor:  # memory: `harness data` cold, the step cache replayed, `harness data` again
            runs = [_child(tmp, "whole", kind, whole) for kind in ("prepare", "pipeline", "prepare")]
            _report_memory(args.n, *runs)
            return
        ceiling = [str(tokenizer_dir), str(corpus), str(CEILING_TEXTS)]
        before = _child(tmp, "ceiling", "ceiling", *ceiling)  # just before and just after the cold run
        cold = _child(tmp, "whole", "pipeline", whole)
        after = _child(tmp, "ceiling", "ceiling", *ceiling)
        warm = _child(tmp, "whole", "pipeline", whole)
        _report_whole(args.n, cold, warm, [before, after])

        max_tokens = anchor_max_tokens(args.words)
        anchored = _recipe(tmp, "anchored", corpus, _ANCHORED.format(max_tokens=max_tokens))
        script = [str(corpus), str(tokenizer_dir), str(max_tokens), str(cores), str(tmp / "datasets" / "out")]
        runs = {}
        for attempt in ("cold", "rerun"):  # alternated, so load from other work hits both sides alike
            runs["harness", attempt] = _child(tmp, "anchored", "prepare", anchored)
            runs["datasets", attempt] = _child(tmp, "datasets", "datasets", *script)
        _report_anchor(args.n, max_tokens, cores, runs)


def write_corpus(n: int, dup_fraction: float, words: int, path: Path) -> None:
    """The synthetic corpus as jsonl, its texts built and written a chunk at a time (a million rows
    in about a minute, without holding them)."""
    from harness.bench.data_pipeline import corpus_stream

    _, rows = corpus_stream(n, dup_fraction, words, exact_fraction=EXACT_FRACTION)
    _write_corpus(rows, path)


def _write_corpus(rows, path: Path, lines_per_write: int = 4096) -> None:
    with open(path, "w", encoding="utf-8") as f:
        lines = []
        for prompt, chosen, rejected in rows:
            lines.append(json.dumps({"prompt": [{"role": "user", "content": prompt}],
                                     "chosen": [{"role": "assistant", "content": chosen}],
                                     "rejected": [{"role": "assistant", "content": rejected}]}) + "\n")
            if len(lines) >= lines_per_write:
                f.write("".join(lines))
                lines.clear()
        f.write("".join(lines))


def _recipe(tmp: Path, name: str, corpus: Path, steps: str) -> Path:
    path = tmp / "recipes" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: {name}\ndata:\n  sources: [{{source: local, path: {corpus}, format: trl, "
                    f"kind: preference}}]\n  steps:{steps}\n  write_rejects: false\n", encoding="utf-8")
    return path


_runs = 0


def _child(tmp: Path, caches: str, kind: str, *argv) -> dict:
    """One measured run in a fresh process: `pipeline` (a recipe's data pipeline), `prepare`
    (`harness data`), `ceiling` or `datasets` (the anchor script). `caches` names its cache and
    output folders: shared by a cold run and its rerun, never by the two sides."""
    from harness import paths

    global _runs
    _runs += 1
    keys = tmp / f"keys-{_runs}.txt"
    home = tmp / caches
    env = {**os.environ, "HARNESS_CACHE": str(home / "cache"), "HARNESS_RUNS": str(home / "runs"),
           "HARNESS_CARDS": str(home / "cards"), "HF_DATASETS_CACHE": str(home / "hf"),
           # the embedded tokenizer converted once, outside every clock (by default it lives in the cache)
           "HARNESS_MODELS": str(paths.models_root()),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    if kind == "datasets":
        command = [sys.executable, "-m", "harness.bench.datasets_script", *argv, str(keys)]
    else:
        command = [sys.executable, "-m", __name__, kind, *map(str, argv), str(keys)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bench run {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "keys": keys}


def _mtok(d: dict, clock: str = "seconds") -> float:
    return d["tokens"] / d[clock] / 1e6


def _per_step(run: dict) -> str:
    return ", ".join(f"{s['label'].split(':')[-1]} {s['seconds']:.1f}s" for s in run["steps"])


def _report_memory(n: int, cold: dict, replay: dict, rerun: dict) -> None:
    def gib(run: dict) -> str:
        return f"{run['rss_mb'] / 1024:.2f} GiB"

    print(f"harness data (cold)     {cold['seconds']:7.1f}s  {n / cold['seconds']:8,.0f} examples/s  "
          f"({cold['rows']} rows out)  peak RSS {gib(cold)}")
    print(f"  per step: {_per_step(cold)}")
    print("  peak RSS after each node: " + ", ".join(f"{label.split(':')[-1]} {mb / 1024:.2f}"
                                                     for label, mb in cold["memory"])
          + f" GiB; after writing the dataset and card {gib(cold)}")
    print(f"step cache replayed     {replay['seconds']:7.1f}s  (every row read back)  peak RSS {gib(replay)}")
    print(f"harness data (rerun)    {rerun['seconds']:7.2f}s  (the prepared dataset reused)  peak RSS {gib(rerun)}")


def _report_whole(n: int, cold: dict, warm: dict, ceilings: list[dict]) -> None:
    print(f"whole pipeline (cold)   {cold['seconds']:7.1f}s  {n / cold['seconds']:8,.0f} examples/s  "
          f"({cold['rows']} rows out)  peak RSS {cold['rss_mb'] / 1024:.2f} GiB")
    print(f"  per step: {_per_step(cold)}")
    print("  peak RSS after each node: " + ", ".join(f"{label.split(':')[-1]} {mb / 1024:.2f}"
                                                     for label, mb in cold["memory"]) + " GiB")
    print(f"whole pipeline (cached) {warm['seconds']:7.1f}s  {n / warm['seconds']:8,.0f} examples/s  "
          f"-> {cold['seconds'] / warm['seconds']:.1f}x faster than cold (every row replayed from the step "
          f"cache)  peak RSS {warm['rss_mb'] / 1024:.2f} GiB")
    step = next(s for s in cold["steps"] if s["label"].endswith("length_filter"))
    encoded = cold["encoded"]
    total = {k: sum(c[k] for c in ceilings) for k in ("tokens", "seconds", "cpu_seconds")}
    wall, cpu = _mtok(total), _mtok(total, "cpu_seconds")
    ours, ours_cpu = encoded["tokens"] / step["seconds"] / 1e6, encoded["tokens"] / step["cpu_seconds"] / 1e6
    print(f"  tokenizer ceiling {wall:.2f} M tok/s ({_mtok(ceilings[0]):.2f} before, {_mtok(ceilings[1]):.2f} after "
          f"the run; encode_batch, {ceilings[0]['texts']} texts in one call), length_filter {ours:.2f} M tok/s "
          f"({encoded['tokens'] / 1e6:.1f} M tokens of {encoded['texts']} distinct texts in the step's "
          f"{step['seconds']:.1f}s), ratio {ours / wall:.2f}")
    print(f"  per CPU second: ceiling {cpu:.2f} M tok, length_filter {ours_cpu:.2f} M tok, ratio {ours_cpu / cpu:.2f}; "
          f"its encoding alone {_mtok(encoded, 'cpu_seconds'):.2f} M tok, ratio "
          f"{_mtok(encoded, 'cpu_seconds') / cpu:.2f} (the rest: loading the tokenizer, text views, the filter)")


def _report_anchor(n: int, max_tokens: int, cores: int, runs: dict) -> None:
    print(f"dedup + length filter (<= {max_tokens} tokens) + sort, written out: `harness data` vs a plain "
          f"`datasets` script (num_proc={cores}, the same tokenizer through encode_batch, save_to_disk)")
    for attempt in ("cold", "rerun"):
        ours, theirs = runs["harness", attempt], runs["datasets", attempt]
        print(f"  {attempt:<5}  harness {ours['seconds']:7.2f}s ({n / ours['seconds']:9,.0f} examples/s, "
              f"peak RSS {ours['rss_mb'] / 1024:.2f} GiB)   datasets {theirs['seconds']:7.2f}s "
              f"({n / theirs['seconds']:9,.0f} examples/s, peak RSS {theirs['rss_mb'] / 1024:.2f} GiB, "
              f"workers {theirs['workers_rss_mb'] / 1024:.2f} GiB)   -> harness {theirs['seconds'] / ours['seconds']:.2f}x")
    print(f"  harness cold per step: {_per_step(runs['harness', 'cold'])}")
    print(f"  harness rerun vs datasets cold: {runs['datasets', 'cold']['seconds'] / runs['harness', 'rerun']['seconds']:.0f}x")
    reference = runs["harness", "cold"]["keys"].read_text(encoding="utf-8")
    same = all(r["keys"].read_text(encoding="utf-8") == reference for r in runs.values())
    print(f"  outputs: {runs['harness', 'cold']['rows']} rows; the same rows in the same order on both sides "
          f"and in every run: {'yes' if same else 'NO'}")


if __name__ == "__main__":  # the measured processes; the last argument is where output goes
    kind, *rest = sys.argv[1:]
    if kind == "corpus":
        n, dup_fraction, words, path = rest
        write_corpus(int(n), float(dup_fraction), int(words), Path(path))
    elif kind == "ceiling":
        tokenizer_dir, corpus, n_texts, _ = rest
        print(json.dumps(tokenizer_ceiling(tokenizer_dir, corpus, int(n_texts))))
    else:
        recipe, keys = rest
        measure = measure_prepare if kind == "prepare" else measure_pipeline
        print(json.dumps(measure(recipe, keys)))
