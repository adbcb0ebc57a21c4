"""`make bench`: data-pipeline speed and quality on a synthetic 200k-pair corpus.

The corpus has a known set of planted near-duplicates (by default 5% of rows
are copies of another row with 3 words substituted in each response), so
recall and precision are exact. Every figure is printed beside a baseline
measured in the same run, because shared machines are noisy:

- `minhash_dedup` vs a straightforward `datasketch.MinHashLSH` loop with the
  same threshold, shingles, permutations and bands;
- exact `dedup` throughput;
- whole-pipeline throughput, cold and then fully cached;
- `harness validate` of every shipped recipe vs a bare interpreter start;
- `lm_eval_overhead`: the in-process lm_eval runner vs the `lm_eval` CLI on the
  same task, model and batch size (`--section lm_eval_overhead` runs it alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.data import example as ex
from harness.data.step import StepContext

PARAMS = dict(threshold=0.7, ngram=5, num_perm=128, bands=32)


def make_corpus(n: int, dup_fraction: float, words: int, seed: int = 0):
    """(examples, planted) where planted is a list of (original id, copy id)."""
    rng = np.random.default_rng(seed)
    vocab = english_words()
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 0.8
    cdf = np.cumsum(weights / weights.sum())
    n_copies = int(n * dup_fraction)
    n_orig = n - n_copies

    def text(k):
        return " ".join(map(vocab.__getitem__, np.searchsorted(cdf, rng.random(k)).tolist()))

    rows = []
    for i in range(n_orig):
        k = int(rng.integers(words - 30, words + 31))
        rows.append((f"Question {i}: {text(15)}", text(k), text(k)))
    planted = []
    sources = rng.choice(n_orig, size=n_copies, replace=False)
    for src in sources.tolist():
        prompt, chosen, rejected = rows[src]
        rows.append((prompt, _edit(chosen, rng, vocab), _edit(rejected, rng, vocab)))
        planted.append((src, len(rows) - 1))
    order = rng.permutation(len(rows))
    examples = [ex.preference([ex.user(rows[j][0])], [ex.assistant(rows[j][1])], [ex.assistant(rows[j][2])], "synthetic")
                for j in order.tolist()]
    position = np.empty(len(rows), dtype=np.int64)
    position[order] = np.arange(len(rows))
    return examples, [(int(position[a]), int(position[b])) for a, b in planted]


def english_words() -> list[str]:
    """Whole lower-case words from the embedded tokenizer's vocabulary (about one token each),
    so token counts per word resemble real English text."""
    from harness.models import load_tokenizer
    from harness.recipe import ModelConfig

    vocab = load_tokenizer(ModelConfig()).get_vocab()
    return sorted(t[1:] for t in vocab if t.startswith("\u0120") and t[1:].isalpha() and t[1:].islower() and len(t) > 3)


def _edit(text: str, rng, vocab) -> str:
    words = text.split()
    for pos in rng.choice(len(words), size=3, replace=False).tolist():
        words[pos] = vocab[int(rng.integers(len(vocab)))]
    return " ".join(words)


def score(dropped: set[int], planted: list[tuple[int, int]]) -> tuple[float, float]:
    """Recall: planted pairs with exactly one member dropped; precision: drops that are such members."""
    hits = sum((a in dropped) != (b in dropped) for a, b in planted)
    return hits / len(planted), (hits / len(dropped) if dropped else 1.0)


def run_minhash(examples):
    from harness.data.steps.minhash_dedup import MinHashDedup

    ctx = StepContext(label="minhash_dedup", seed=0)
    kept = {id(e) for e in MinHashDedup(field="response", **PARAMS).apply(iter(examples), ctx)}
    return {i for i, e in enumerate(examples) if id(e) not in kept}


def run_datasketch(examples):
    from datasketch import MinHash, MinHashLSH

    rows = PARAMS["num_perm"] // PARAMS["bands"]
    lsh = MinHashLSH(threshold=PARAMS["threshold"], num_perm=PARAMS["num_perm"], params=(PARAMS["bands"], rows))
    dropped = set()
    n = PARAMS["ngram"]
    for i, e in enumerate(examples):
        words = ex.response_text(e).lower().split()
        shingles = {" ".join(words[j:j + n]).encode() for j in range(max(len(words) - n + 1, 1))}
        m = MinHash(num_perm=PARAMS["num_perm"])
        m.update_batch(list(shingles))
        if lsh.query(m):
            dropped.add(i)
        else:
            lsh.insert(i, m)
    return dropped


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def pipeline_throughput(examples, workdir: Path) -> tuple[float, float, int]:
    """Seconds for the whole data runner on a local jsonl of the corpus, cold then cached."""
    from harness.data import pipeline
    from harness.models import load_tokenizer, tokenizer_id
    from harness.recipe import load

    path = workdir / "corpus.jsonl"
    with open(path, "w") as f:
        for e in examples:
            f.write(json.dumps({"prompt": e["prompt"], "chosen": e["chosen"], "rejected": e["rejected"]}) + "\n")
    recipe_path = workdir / "recipes" / "bench.yaml"
    recipe_path.parent.mkdir(parents=True, exist_ok=True)
    recipe_path.write_text(f"""
name: bench
data:
  sources: [{{source: local, path: {path}, format: trl, kind: preference}}]
  steps:
    - {{step: dedup, key: triple}}
    - {{step: minhash_dedup, field: response, threshold: 0.7, ngram: 5, num_perm: 128, bands: 32}}
    - pair_filter
    - {{step: label_noise, flip_rate: 0.1}}
    - {{step: length_filter, field: total, max_tokens: 2048}}
    - {{step: length_curriculum, order: ascending}}
  write_rejects: false
""")
    import datasets

    datasets.disable_progress_bars()
    recipe = load(recipe_path)
    tok = lambda: load_tokenizer(recipe.model)
    tok()  # the one-off conversion of the embedded tokenizer is not pipeline time
    cold, cold_s = timed(pipeline.run, recipe.data, recipe.seed, tokenizer_id(recipe.model), tok)
    _, warm_s = timed(pipeline.run, recipe.data, recipe.seed, tokenizer_id(recipe.model), tok)
    steps = ", ".join(f"{s['label'].split(':')[-1]} {s['seconds']:.1f}s" for s in cold.stats)
    return cold_s, warm_s, len(cold.examples), steps


def decontamination(examples, n_items: int = 10_000, n_leaks: int = 200, baseline_docs: int = 20_000) -> None:
    """13-gram scan of every chosen response against eval items, some planted in the documents;
    the baseline is the plain-Python set-of-n-grams scan (GPT-3 / lm-eval v0.3 style) on a subset."""
    from harness.decontaminate.ngrams import Index, normalise, scan

    rng = np.random.default_rng(1)
    vocab = english_words()
    evals = [" ".join(vocab[j] for j in rng.integers(len(vocab), size=40).tolist()) + "?" for _ in range(n_items)]
    documents = [ex.response_text(e) for e in examples]
    planted = {}
    for doc, item in zip(rng.choice(len(documents), n_leaks, replace=False).tolist(),
                         rng.choice(n_items, n_leaks, replace=False).tolist()):
        documents[doc] = f"{documents[doc]} {evals[item].upper()}"
        planted[doc] = item
    words = sum(len(d.split()) for d in documents)
    index, build_s = timed(Index.build, evals, 13)
    matches, scan_s = timed(scan, index, documents)
    found = {(m.document, m.item) for m in matches}
    recall = sum((d, i) in found for d, i in planted.items()) / len(planted)
    extra = len({m.document for m in matches} - set(planted))
    print(f"decontamination scan  {scan_s:8.1f}s  {words / scan_s / 1e6:.2f} M words/s over {len(documents)} docs "
          f"({words / 1e6:.1f} M words) vs {n_items} items; index built in {build_s:.2f}s; "
          f"planted leaks found {recall:.1%}; other documents flagged {extra}")

    def python_scan(docs):
        grams = {}
        for i, text in enumerate(evals):
            w = normalise(text).split()
            for k in range(len(w) - 12):
                grams.setdefault(tuple(w[k:k + 13]), i)
        hits = set()
        for d, text in enumerate(docs):
            w = normalise(text).split()
            hits.update((d, grams[g]) for g in (tuple(w[k:k + 13]) for k in range(len(w) - 12)) if g in grams)
        return hits

    subset = documents[:baseline_docs]
    sub_words = sum(len(d.split()) for d in subset)
    _, base_s = timed(python_scan, subset)
    print(f"  plain-Python set scan baseline on {len(subset)} docs: {sub_words / base_s / 1e6:.2f} M words/s "
          f"-> vectorised scan is {(words / scan_s) / (sub_words / base_s):.1f}x faster")


def decontamination_only(n: int = 200_000, words: int = 150) -> None:
    examples, _ = make_corpus(n, 0.0, words)
    decontamination(examples)


def validate_seconds() -> tuple[float, float]:
    root = Path(__file__).resolve().parents[1]
    run = lambda *cmd: subprocess.run([sys.executable, *cmd], cwd=root, capture_output=True, check=True)
    _, validate_s = timed(run, "-m", "harness", "validate", "recipes", "evals")
    _, bare_s = timed(run, "-c", "pass")
    return validate_s, bare_s


# Each timed process wraps lm-eval's own `evaluator.evaluate` (building requests, the model calls,
# filters and metrics: the same function on every side) with a clock, then runs as usual.
_EVALUATE_CLOCK = """
import json, os, sys, time
import lm_eval.evaluator as _ev
_inner = _ev.evaluate
def _clocked(*args, **kwargs):
    start, cpu = time.perf_counter(), time.process_time()
    out = _inner(*args, **kwargs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    scores = {t: {k: v for k, v in r.items() if isinstance(v, float)} for t, r in out["results"].items()}
    with open(os.environ["BENCH_CLOCK"], "w") as f:
        json.dump({"evaluate_s": seconds, "evaluate_cpu_s": cpu, "scores": scores}, f)
    return out
_ev.evaluate = _clocked
"""
_CLI = _EVALUATE_CLOCK + """
from lm_eval.__main__ import cli_evaluate   # what the `lm_eval` console script runs
sys.argv = ["lm_eval", *sys.argv[1:]]
cli_evaluate()
"""
_MODEL = """
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
path, task, limit, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
"""
_OURS = _EVALUATE_CLOCK + _MODEL + """
from harness.evaluate import EvalContext
from harness.evaluate.lm_eval import LmEvalTask
LmEvalTask(lm_task=task, limit=limit, batch_size=batch).evaluate(
    EvalContext(model_name=path, model=model, tokenizer=tokenizer))
"""
_NAIVE = _EVALUATE_CLOCK + _MODEL + """
import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
lm = HFLM(pretrained=model, tokenizer=tokenizer)   # the pattern of lm-eval issue #3207
lm_eval.simple_evaluate(model=lm, tasks=[task], batch_size=batch, limit=limit, apply_chat_template=True,
                       task_manager=TaskManager(include_path=".", include_defaults=False))
"""


def lm_eval_overhead(limit: int = 24, batch_size: int = 8, repeats: int = 3, naive: bool = True) -> float:
    """In-process `lm_eval` runner vs the `lm_eval` CLI on `instruction_format`, embedded model.

    Same task, limit, batch size, float32 weights, chat template and greedy decoding on both
    sides; every run is a fresh process in the same environment, and runs alternate so machine
    load hits all sides alike; the minimum over `repeats` is kept. Per side:

    - evaluate: wall and CPU seconds of lm-eval's `evaluator.evaluate` (requests, generation,
      filters, metrics), the same function on every side, so model loading and task indexing are
      excluded. CPU seconds are the cross-check on a shared machine: other processes stretch wall
      time, much less the CPU time of the work itself;
    - process: interpreter start to exit. The CLI loads the model by name and indexes all
      built-in tasks; ours imports the harness, loads the model and runs the runner.

    `naive` adds the pattern of lm-eval issue #3207 (HFLM built without a batch size, the batch
    size given to `simple_evaluate` instead, where it does not reach a model object).
    Returns the in-process/CLI ratio of the evaluate wall times.
    """
    from harness.evaluate.lm_eval_tasks import TASKS_DIR
    from harness.models import model_location

    model = model_location("embedded:smollm2-135m-instruct")
    task = "instruction_format"
    cli_args = ["--model", "hf", "--model_args", f"pretrained={model},dtype=float32", "--tasks", task,
                "--include_path", ".", "--batch_size", str(batch_size), "--limit", str(limit), "--device", "cpu",
                "--apply_chat_template", "--log_samples"]
    sides = {"lm_eval CLI": [_CLI, *cli_args], "in-process runner": [_OURS, model, task, str(limit), str(batch_size)]}
    if naive:
        sides["naive in-process (#3207)"] = [_NAIVE, model, task, str(limit), str(batch_size)]
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_DATASETS_CACHE": str(Path(tmp) / "hf"), "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "BENCH_CLOCK": str(Path(tmp) / "clock.json"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(TASKS_DIR.parents[1]), os.environ.get("PYTHONPATH")]))}
        for _ in range(repeats):
            for side, (code, *args) in sides.items():
                extra = ["--output_path", str(Path(tmp) / "cli")] if side == "lm_eval CLI" else []
                start = time.perf_counter()
                # lm-eval resolves the task's relative data path against the working directory
                subprocess.run([sys.executable, "-c", code, *args, *extra], cwd=TASKS_DIR, env=env,
                               capture_output=True, check=True)
                clock = json.loads(Path(env["BENCH_CLOCK"]).read_text())
                runs[side].append({**clock, "process_s": time.perf_counter() - start})
    best = {side: {k: min(r[k] for r in rs) for k in ("evaluate_s", "evaluate_cpu_s", "process_s")}
            for side, rs in runs.items()}
    cli = best["lm_eval CLI"]
    print(f"lm_eval overhead: {task}, {limit} items, batch {batch_size}, max 48 new tokens, float32, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, best of {repeats}")
    for side, b in best.items():
        scores = {round(r["scores"][task].get("format_following,none", -1), 4) for r in runs[side]}
        print(f"  {side:26s} evaluate {b['evaluate_s']:7.2f}s wall ({b['evaluate_s'] / cli['evaluate_s']:.2f}x) "
              f"{b['evaluate_cpu_s']:7.2f}s cpu ({b['evaluate_cpu_s'] / cli['evaluate_cpu_s']:.2f}x)  "
              f"process {b['process_s']:6.2f}s ({b['process_s'] / cli['process_s']:.2f}x)  "
              f"format_following {sorted(scores)}")
        print(f"  {'':26s} all runs: evaluate " + ", ".join(f"{r['evaluate_s']:.1f}" for r in runs[side])
              + "  process " + ", ".join(f"{r['process_s']:.1f}" for r in runs[side]))
    ratio = best["in-process runner"]["evaluate_s"] / cli["evaluate_s"]
    print(f"  -> in-process/CLI ratio (evaluate, wall): {ratio:.2f}x (target <= 1.10x)")
    return ratio

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000, help="corpus size")
    p.add_argument("--dup-fraction", type=float, default=0.05)
    p.add_argument("--words", type=int, default=150, help="mean words per response")
    p.add_argument("--baseline-n", type=int, default=None,
                   help="run the datasketch baseline on the first N rows only (default: all)")
    p.add_argument("--section", choices=["all", *SECTIONS], default="all", help="run one section only")
    args = p.parse_args(argv)
    if args.section != "all":
        SECTIONS[args.section]()
        return 0
    print(f"cores: {os.cpu_count()}  corpus: {args.n} pairs, ~{args.words} words per response, "
          f"{args.dup_fraction:.0%} planted near-duplicates  params: {PARAMS}")

    (examples, planted), gen_s = timed(make_corpus, args.n, args.dup_fraction, args.words)
    print(f"generated corpus in {gen_s:.1f}s")

    ours, ours_s = timed(run_minhash, examples)
    recall, precision = score(ours, planted)
    print(f"minhash_dedup         {ours_s:8.1f}s  recall {recall:.4f}  precision {precision:.4f}  "
          f"dropped {len(ours)}")
    subset = args.baseline_n or len(examples)
    sub_planted = [(a, b) for a, b in planted if a < subset and b < subset]
    base, base_s = timed(run_datasketch, examples[:subset])
    b_recall, b_precision = score(base, sub_planted)
    scale = len(examples) / subset
    note = "" if subset == len(examples) else f" (on {subset} rows; x{scale:.1f} for the full corpus)"
    print(f"datasketch baseline   {base_s:8.1f}s  recall {b_recall:.4f}  precision {b_precision:.4f}  "
          f"dropped {len(base)}{note}")
    print(f"  -> minhash_dedup speed-up vs datasketch: {base_s * scale / ours_s:.1f}x")

    from harness.data.steps.dedup import Dedup

    _, dedup_s = timed(lambda: list(Dedup(key="triple").apply(iter(examples), StepContext(label="d", seed=0))))
    print(f"exact dedup (triple)  {dedup_s:8.2f}s  {len(examples) / dedup_s:,.0f} examples/s")

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HARNESS_CACHE"] = str(Path(tmp) / "cache")
        os.environ["HF_DATASETS_CACHE"] = str(Path(tmp) / "hf")
        cold_s, warm_s, rows, steps = pipeline_throughput(examples, Path(tmp))
    print(f"whole pipeline (cold) {cold_s:8.1f}s  {len(examples) / cold_s:,.0f} examples/s  ({rows} rows out)")
    print(f"  per step: {steps}")
    print(f"whole pipeline (cached){warm_s:7.1f}s  -> {cold_s / warm_s:.1f}x faster than cold")

    decontamination(examples)

    validate_s, bare_s = validate_seconds()
    print(f"harness validate      {validate_s:8.2f}s  (bare interpreter start {bare_s:.2f}s, "
          f"ratio {validate_s / bare_s:.1f}x)")

    lm_eval_overhead()
    return 0


# sections that run alone with --section
SECTIONS = {"lm_eval_overhead": lm_eval_overhead, "decontamination": decontamination_only}


if __name__ == "__main__":
    raise SystemExit(main())
