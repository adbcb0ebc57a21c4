"""`make bench` section: generation throughput of the eval generator (`--section generation`).

Three figures on the embedded SmolLM2-135M-Instruct, each against a baseline measured in the
same run (the machine may be shared, so only the ratios travel):

- the harness's batched generator against a plain `model.generate` loop, one prompt at a time,
  over the same Countdown prompts with the same settings (greedy, the `embedded` suite's
  `max_new_tokens`): generated tokens/s of both, and how many outputs agree;
- the generator as it was before ("previous batching": the suite's CPU-sized batch on every
  device, each sequence carried to the end of its batch) against the current one, which drops
  ended sequences between chunks and, on a GPU, sizes the batch from free memory;
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


def _side(label: str, tokens: int, clock: _Clock, **extra) -> dict:
    return {"label": label, "tokens": tokens, "wall_s": clock.wall, "cpu_s": clock.cpu,
            "tokens_per_s": _rate(tokens, clock.wall), **extra}


def bench_device(device: str, n_prompts: int = PROMPTS, n_code: int = CODE_PROMPTS) -> dict:
    """Countdown: plain loop, the previous batching (the suite's batch size, every sequence carried to
    the end of its batch), the current generator, and the current one with its stop rule. HumanEval
    chat prompts: the previous batching, the current generator, and with the fence rule."""
    import torch

    from harness.evaluate.generate import ANSWER_CLOSED, FENCE_CLOSED, Generator, cut

    model, tokenizer = _load(device)
    current = Generator(model, tokenizer, batch_size=CPU_BATCH, log=None)
    previous = Generator(model, tokenizer, batch_size=CPU_BATCH, log=None)
    previous.free_memory = None                        # the suite's CPU-sized batch, on any device
    countdown, code = countdown_prompts(n_prompts), code_prompts(n_code)
    current.generate(countdown[:2], max_new_tokens=4)   # warm-up: first-call allocations and kernels
    figures: dict = {"device": device, "dtype": str(model.dtype).removeprefix("torch."), "prompts": len(countdown),
                     "code_prompts": len(code), "threads": torch.get_num_threads()}

    with _Clock(device) as clock:
        plain_texts, plain_tokens = plain_loop(model, tokenizer, countdown, COUNTDOWN_TOKENS)
    rows = [_side("plain model.generate, one prompt at a time", plain_tokens, clock)]
    previous.chunk_tokens = COUNTDOWN_TOKENS           # one chunk: ended sequences stay in the batch
    with _Clock(device) as clock:
        before = previous.generate(countdown, max_new_tokens=COUNTDOWN_TOKENS)
    rows.append(_side(f"previous batching (batch {before.batch_size}, no drops)", before.new_tokens, clock,
                      same=sum(a[0] == b for a, b in zip(before.texts, plain_texts))))
    with _Clock(device) as clock:
        full = current.generate(countdown, max_new_tokens=COUNTDOWN_TOKENS)
    rows.append(_side(f"harness generator (batch {full.batch_size})", full.new_tokens, clock,
                      same=sum(a[0] == b for a, b in zip(full.texts, plain_texts))))
    with _Clock(device) as clock:
        stopped = current.generate(countdown, max_new_tokens=COUNTDOWN_TOKENS, stop=[ANSWER_CLOSED])
    rows.append(_side("  + stop after </answer>", stopped.new_tokens, clock, stopped=stopped.stopped,
                      cut=sum(s[0] == cut(f[0], [ANSWER_CLOSED])[0] for s, f in zip(stopped.texts, full.texts))))
    figures["countdown"] = rows

    current.batch_size = previous.batch_size = 16      # the embedded suite's HumanEval batch
    previous.chunk_tokens = CODE_TOKENS
    with _Clock(device) as clock:
        before = previous.generate(code, max_new_tokens=CODE_TOKENS)
    rows = [_side(f"previous batching (batch {before.batch_size}, no drops)", before.new_tokens, clock)]
    with _Clock(device) as clock:
        full = current.generate(code, max_new_tokens=CODE_TOKENS)
    rows.append(_side(f"harness generator (batch {full.batch_size})", full.new_tokens, clock,
                      same=sum(a == b for a, b in zip(full.texts, before.texts))))
    with _Clock(device) as clock:
        stopped = current.generate(code, max_new_tokens=CODE_TOKENS, stop=[FENCE_CLOSED])
    rows.append(_side("  + stop after the code block", stopped.new_tokens, clock, stopped=stopped.stopped,
                      cut=sum(s[0] == cut(f[0], [FENCE_CLOSED])[0] for s, f in zip(stopped.texts, full.texts))))
    figures["humaneval"] = rows
    return figures


def report(f: dict) -> None:
    print(f"generation on {f['device']} ({f['dtype']}, {f['threads']} CPU threads): embedded SmolLM2-135M-Instruct, "
          f"greedy; wall time is the figure, CPU time the cross-check on a busy machine")
    for name, key, n, tokens in (("Countdown", "countdown", f["prompts"], COUNTDOWN_TOKENS),
                                 ("HumanEval chat", "humaneval", f["code_prompts"], CODE_TOKENS)):
        rows = f[key]
        base = rows[0]
        print(f"  {name}: {n} prompts, max {tokens} new tokens (ratios against the first line)")
        for row in rows:
            notes = []
            if "same" in row:
                notes.append(f"{row['same']}/{n} outputs identical to the first line's")
            if "stopped" in row:
                notes.append(f"{row['stopped']}/{n} stopped by the rule, {row['cut']}/{n} equal to the unstopped "
                             f"output cut there")
            print(f"    {row['label']:44s} {row['tokens']:6d} tokens {row['wall_s']:7.1f}s wall "
                  f"({base['wall_s'] / max(row['wall_s'], 1e-9):5.2f}x) {row['cpu_s']:7.1f}s cpu "
                  f"{row['tokens_per_s']:7.1f} tokens/s ({row['tokens_per_s'] / max(base['tokens_per_s'], 1e-9):5.2f}x)"
                  + (f"  {'; '.join(notes)}" if notes else ""))


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
