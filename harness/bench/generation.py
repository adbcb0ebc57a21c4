"""`make bench` section: generation throughput of the eval generator (`--section generation`).

Three figures on the embedded SmolLM2-135M-Instruct, each against a baseline measured in the
same run (the machine may be shared, so only the ratios travel):

- the harness's batched generator against a plain `model.generate` loop, one prompt at a time,
  over the same Countdown prompts with the same settings (greedy, the `embedded` suite's
  `max_new_tokens`): generated tokens/s of both, and how many outputs agree;
- early stopping on the same Countdown prompts (`</answer>`) and on HumanEval chat prompts
  (the closing code fence): wall time and tokens with and without the stop rule, and a check
  that every stopped output equals the unstopped output cut at the same place.

CPU figures always; the same figures on the GPU when one is present (bfloat16, the batch sized
from free memory). Wall seconds are the figure; process CPU seconds are printed beside them as
a cross-check on a busy machine.
"""

from __future__ import annotations

import time

PROMPTS = 32           # Countdown prompts
CODE_PROMPTS = 16      # HumanEval prompts for the fence rule
COUNTDOWN_TOKENS = 128  # the embedded suite's max_new_tokens for Countdown
CODE_TOKENS = 256       # and for HumanEval
CPU_BATCH = 32          # the embedded suite's Countdown batch size (16 for HumanEval)


def _load(device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.models import model_location

    path = model_location("embedded:smollm2-135m-instruct")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def countdown_prompts(n: int = PROMPTS) -> list:
    from harness.evaluate import EvalContext
    from harness.evaluate.countdown import CountdownTask

    task = CountdownTask(n=200, num_numbers=(2, 3), max_number=30, seed=1234)   # the embedded suite's task
    return [[{"role": "user", "content": item.prompt}] for item in task.items(EvalContext(model_name="bench"))[:n]]


def code_prompts(n: int = CODE_PROMPTS) -> list:
    from harness.evaluate.code import CHAT_HUMANEVAL
    from harness.evaluate.code_problems import bundled_humaneval, load_problems

    problems = load_problems(str(bundled_humaneval()))[:n]
    return [[{"role": "user", "content": CHAT_HUMANEVAL.format(prompt=p.prompt.rstrip())}] for p in problems]


class _Clock:
    """Wall and process CPU seconds of a block, after the device has finished its work."""

    def __init__(self, device: str) -> None:
        self.device = device

    def __enter__(self):
        self._sync()
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self._sync()
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def _sync(self):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


def plain_loop(model, tokenizer, prompts, max_new_tokens: int) -> tuple[list[str], int]:
    """The baseline: `model.generate` on one prompt at a time, greedy; tokens up to end-of-sequence."""
    import torch

    from harness.evaluate.generate import render

    texts, tokens = [], 0
    for prompt in prompts:
        enc = tokenizer(render(tokenizer, prompt), return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
        row = out[0, enc["input_ids"].shape[1]:].tolist()
        tokens += len(row)   # one sequence: generate stops at its end-of-sequence token, which is counted
        texts.append(tokenizer.decode(row, skip_special_tokens=True))
    return texts, tokens


def _rate(tokens: int, seconds: float) -> float:
    return tokens / max(seconds, 1e-9)


def bench_device(device: str, n_prompts: int = PROMPTS, n_code: int = CODE_PROMPTS) -> dict:
    import torch

    from harness.evaluate.generate import ANSWER_CLOSED, FENCE_CLOSED, Generator, cut

    model, tokenizer = _load(device)
    generator = Generator(model, tokenizer, batch_size=CPU_BATCH, log=None)
    countdown, code = countdown_prompts(n_prompts), code_prompts(n_code)
    generator.generate(countdown[:2], max_new_tokens=4)   # warm-up: first-call allocations and kernels
    figures: dict = {"device": device, "dtype": str(model.dtype).removeprefix("torch."), "prompts": len(countdown),
                     "threads": torch.get_num_threads()}

    with _Clock(device) as plain_clock:
        plain_texts, plain_tokens = plain_loop(model, tokenizer, countdown, COUNTDOWN_TOKENS)
    with _Clock(device) as batched_clock:
        full = generator.generate(countdown, max_new_tokens=COUNTDOWN_TOKENS)
    with _Clock(device) as stop_clock:
        stopped = generator.generate(countdown, max_new_tokens=COUNTDOWN_TOKENS, stop=[ANSWER_CLOSED])
    figures["plain"] = {"tokens": plain_tokens, "wall_s": plain_clock.wall, "cpu_s": plain_clock.cpu,
                        "tokens_per_s": _rate(plain_tokens, plain_clock.wall)}
    figures["batched"] = {"tokens": full.new_tokens, "wall_s": batched_clock.wall, "cpu_s": batched_clock.cpu,
                          "tokens_per_s": _rate(full.new_tokens, batched_clock.wall), "batch_size": full.batch_size,
                          "same_as_plain": sum(a[0] == b for a, b in zip(full.texts, plain_texts))}
    figures["countdown_stop"] = _stop_figures(full, batched_clock, stopped, stop_clock, [ANSWER_CLOSED], cut)

    generator.batch_size = 16   # the embedded suite's HumanEval batch
    with _Clock(device) as code_clock:
        code_full = generator.generate(code, max_new_tokens=CODE_TOKENS)
    with _Clock(device) as code_stop_clock:
        code_stopped = generator.generate(code, max_new_tokens=CODE_TOKENS, stop=[FENCE_CLOSED])
    figures["code_stop"] = _stop_figures(code_full, code_clock, code_stopped, code_stop_clock, [FENCE_CLOSED], cut)
    figures["code_stop"]["prompts"] = len(code)
    return figures


def _stop_figures(full, full_clock, stopped, stop_clock, rule, cut) -> dict:
    return {"without": {"tokens": full.new_tokens, "wall_s": full_clock.wall, "cpu_s": full_clock.cpu,
                        "tokens_per_s": _rate(full.new_tokens, full_clock.wall)},
            "with": {"tokens": stopped.new_tokens, "wall_s": stop_clock.wall, "cpu_s": stop_clock.cpu,
                     "tokens_per_s": _rate(stopped.new_tokens, stop_clock.wall)},
            "stopped": stopped.stopped,
            "equal_to_cut": sum(s[0] == cut(f[0], rule)[0] for s, f in zip(stopped.texts, full.texts)),
            "batch_size": stopped.batch_size}


def report(f: dict) -> None:
    plain, batched = f["plain"], f["batched"]
    print(f"generation on {f['device']} ({f['dtype']}, {f['threads']} CPU threads): embedded SmolLM2-135M-Instruct, "
          f"{f['prompts']} Countdown prompts, greedy, max {COUNTDOWN_TOKENS} new tokens")
    print(f"  plain model.generate, one prompt at a time  {plain['tokens']:6d} tokens {plain['wall_s']:7.1f}s wall "
          f"{plain['cpu_s']:7.1f}s cpu  {plain['tokens_per_s']:7.1f} tokens/s")
    print(f"  harness generator, batch {batched['batch_size']:<4d}             {batched['tokens']:6d} tokens "
          f"{batched['wall_s']:7.1f}s wall {batched['cpu_s']:7.1f}s cpu  {batched['tokens_per_s']:7.1f} tokens/s  "
          f"-> {batched['tokens_per_s'] / plain['tokens_per_s']:.2f}x tokens/s; "
          f"{batched['same_as_plain']}/{f['prompts']} outputs identical to the plain loop's")
    for name, key, prompts in (("Countdown, stop after </answer>", "countdown_stop", f["prompts"]),
                               ("HumanEval chat, stop after the code block", "code_stop",
                                f["code_stop"].get("prompts"))):
        s = f[key]
        without, with_ = s["without"], s["with"]
        print(f"  early stopping, {name} ({prompts} prompts, batch {s['batch_size']}):")
        for label, side in (("without", without), ("with", with_)):
            print(f"    {label:8s} {side['tokens']:6d} tokens {side['wall_s']:7.1f}s wall {side['cpu_s']:7.1f}s cpu  "
                  f"{side['tokens_per_s']:7.1f} tokens/s")
        print(f"    -> wall {without['wall_s'] / max(with_['wall_s'], 1e-9):.2f}x faster, "
              f"{1 - with_['tokens'] / max(without['tokens'], 1):.0%} fewer tokens; {s['stopped']}/{prompts} stopped "
              f"by the rule; {s['equal_to_cut']}/{prompts} outputs equal to the unstopped output cut at the stop")


def generation_bench(n_prompts: int = PROMPTS, n_code: int = CODE_PROMPTS) -> list[dict]:
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = []
    for device in devices:
        figures = bench_device(device, n_prompts, n_code)
        report(figures)
        results.append(figures)
    return results


def run(args) -> None:
    generation_bench()
