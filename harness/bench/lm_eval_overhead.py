"""`make bench` section: the in-process lm_eval runner against the `lm_eval` CLI on the same task,
model and batch size (`--section lm_eval_overhead` runs it alone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
                clock = json.loads(Path(env["BENCH_CLOCK"]).read_text(encoding="utf-8"))
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


def run(args) -> None:
    lm_eval_overhead()
