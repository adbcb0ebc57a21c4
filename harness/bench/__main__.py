"""`make bench`: speed and quality figures, each printed beside a baseline measured in the same run,
because shared machines are noisy. One module per section; `--section NAME` runs one alone."""

from __future__ import annotations

import argparse
import importlib

# section name -> "module:function"; each function takes the parsed arguments. "all" runs them in order.
SECTIONS = {
    "data_pipeline": "harness.bench.data_pipeline:run",
    "data_throughput": "harness.bench.data_throughput:run",
    "generation": "harness.bench.generation:run",
    "lm_eval_overhead": "harness.bench.lm_eval_overhead:run",
    "training_overhead": "harness.bench.training_overhead:run",
    "judge": "harness.bench.judge:run",
}
# sections that run only when asked for by name (parts of another section, or slow variants)
EXTRA = {
    "decontamination": "harness.bench.data_pipeline:decontamination_only",
    "data_memory": "harness.bench.data_throughput:memory",
}


def section(name: str):
    module, function = {**SECTIONS, **EXTRA}[name].split(":")
    return getattr(importlib.import_module(module), function)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000, help="corpus size")
    p.add_argument("--dup-fraction", type=float, default=0.05)
    p.add_argument("--words", type=int, default=150, help="mean words per response")
    p.add_argument("--baseline-n", type=int, default=None,
                   help="run the datasketch baseline on the first N rows only (default: all)")
    p.add_argument("--train-hidden", type=int, default=64, help="training_overhead: the random Llama's hidden size "
                                                                  "(2048 with --train-layers 16: 1.07B parameters)")
    p.add_argument("--train-layers", type=int, default=2, help="training_overhead: its layers")
    p.add_argument("--train-steps", type=int, default=8, help="training_overhead: SFT steps per run")
    p.add_argument("--train-batch", type=int, default=2, help="training_overhead: batch size")
    p.add_argument("--section", choices=["all", *SECTIONS, *EXTRA], default="all", help="run one section only")
    args = p.parse_args(argv)
    for name in SECTIONS if args.section == "all" else [args.section]:
        section(name)(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
