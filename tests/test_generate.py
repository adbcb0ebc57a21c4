"""Batched generation: each prompt gets its own completions, stop rules end sequences early without
changing their text, the GPU batch-size rule, and progress lines."""

from __future__ import annotations

import re
import types

import pytest

from harness.evaluate.generate import (ANSWER_CLOSED, FENCE_CLOSED, Generator, Stop, as_stops, cut, end_of,
                                       memory_batch_size, render)
from harness.evaluate.progress import Progress, duration

PROMPTS = [
    "Count from one to ten:",
    [{"role": "user", "content": "Name three prime numbers and explain why each of them is prime, briefly."}],
    "The capital of France is",
    [{"role": "user", "content": "Hi"}],
    "def add(a, b):\n    return",
    "Once upon a time, in a small village far away, there lived an old clockmaker who",
    [{"role": "user", "content": "Write <answer>1 + 2</answer> and stop."}],
]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    """The tiny model on one thread: it gains nothing from more, and on a busy machine idle-spinning
    threads make it ten times slower."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield (AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval(),
           AutoTokenizer.from_pretrained(tiny_model))
    torch.set_num_threads(threads)


def _one_at_a_time(model, tokenizer, prompts, **kw):
    single = Generator(model, tokenizer, batch_size=1, log=None)
    return [single.generate([p], **kw).texts[0] for p in prompts]


# ------------------------------------------------------------------ batching keeps prompts and completions together

def test_batched_greedy_outputs_equal_one_prompt_at_a_time(tiny):
    model, tokenizer = tiny
    generator = Generator(model, tokenizer, batch_size=3, log=None)
    generator.chunk_tokens = 3   # several chunks: sequences that end leave the batch between them
    batched = generator.generate(PROMPTS, max_new_tokens=10)
    alone = _one_at_a_time(model, tokenizer, PROMPTS, max_new_tokens=10)
    assert batched.texts == alone
    assert len({texts[0] for texts in alone}) >= 4          # the prompts' outputs differ, so a mix-up would show
    assert 0 < batched.new_tokens <= 10 * len(PROMPTS)
    assert batched.batch_size == 3 and batched.throughput["tokens_per_s"] > 0


def test_several_completions_per_prompt_stay_with_their_prompt(tiny):
    """n > 1 needs sampling; at a vanishing temperature every sample is the prompt's greedy output."""
    model, tokenizer = tiny
    generator = Generator(model, tokenizer, batch_size=4, log=None)
    generator.chunk_tokens = 3
    batched = generator.generate(PROMPTS, max_new_tokens=8, n=3, temperature=1e-6, seed=1)
    greedy = _one_at_a_time(model, tokenizer, PROMPTS, max_new_tokens=8)
    assert [len(texts) for texts in batched.texts] == [3] * len(PROMPTS)
    assert batched.texts == [texts * 3 for texts in greedy]


# ------------------------------------------------------------------ stop rules

def test_stop_rules_on_text():
    assert cut("<think>3+4</think><answer>3 + 4</answer>\nmore <answer>7</answer>", [ANSWER_CLOSED]) == \
        ("<think>3+4</think><answer>3 + 4</answer>", True)
    assert cut("no answer here", [ANSWER_CLOSED]) == ("no answer here", False)
    reply = "Here it is:\n```python\ndef f(x):\n    return x\n```\nThis returns x.\n```python\nf(1)\n```"
    assert cut(reply, [FENCE_CLOSED])[0] == "Here it is:\n```python\ndef f(x):\n    return x\n```"
    assert end_of("```python\ndef f():", [FENCE_CLOSED]) is None          # an open block is not complete
    # Codex-style literals are cut before the match; the earliest-ending match wins
    assert cut("    return 1\ndef g():\n#", ["\ndef", "\n#"]) == ("    return 1", True)
    assert cut("abc", [Stop.literal("b", keep=True)]) == ("ab", True)


def test_code_extraction_is_unchanged_by_the_fence_cut():
    from harness.evaluate.code import extract_code

    replies = ["```python\ndef add(a, b):\n    return a + b\n```\n\nThis function adds two numbers.",
               "Sure!\n```\ndef add(a, b):\n    return a + b\n```\nExample:\n```python\nprint(add(1, 2))\n```",
               "def add(a, b):\n    return a + b\n\nThis adds them.",
               "```python\ndef add(a, b):\n    return a + b"]                 # cut off by the token limit
    for reply in replies:
        assert extract_code(cut(reply, [FENCE_CLOSED])[0], "add") == extract_code(reply, "add")


def _substrings(text: str, size: int):
    return [text[i:i + size] for i in range(len(text) - size + 1)]


def test_early_stop_equals_the_full_output_cut_at_the_stop(tiny):
    """Greedy outputs generated with a stop rule equal the outputs generated without it, cut at the
    same place; sequences that hit the rule stop early, and the batch with them."""
    model, tokenizer = tiny
    generator = Generator(model, tokenizer, batch_size=4, log=None)
    full = generator.generate(PROMPTS, max_new_tokens=24)
    generator.chunk_tokens = 5   # stopped sequences leave the batch between chunks
    texts = [t[0] for t in full.texts]
    # a literal rule taken from the middle of one output, and a fence-like pattern rule: the trigger
    # must appear twice, so its first appearance sets off the check without matching
    literal = next(s for s in _substrings(texts[0][len(texts[0]) // 3:], 3) if s.strip() and len(s.strip()) == 3)
    repeated = next(s for t in texts for s in _substrings(t, 2)
                    if s.strip() and t.count(s) >= 2 and t.find(s) + 2 < t.rfind(s))
    rules = {"literal": [Stop.literal(literal, keep=True)],
             "literal_cut_before": [literal],
             "pattern": [Stop(re.escape(repeated) + ".+?" + re.escape(repeated), repeated)]}
    for name, rule in rules.items():
        stopped = generator.generate(PROMPTS, max_new_tokens=24, stop=rule)
        assert stopped.texts == [[cut(t, as_stops(rule))[0]] for t in texts], name
        hits = sum(end_of(t, as_stops(rule)) is not None for t in texts)
        assert stopped.stopped == hits >= 1, name
        assert stopped.new_tokens < full.new_tokens, name    # the stopped sequences generated fewer tokens


def test_countdown_stop_on_a_model_that_answers(tiny):
    """The `</answer>` rule keeps the closing tag: the verifier sees the same answer block."""
    from harness.rewards.countdown import verify

    text = "<think>3 * 4 = 12</think>\n<answer>3 * 4</answer>\nI hope this helps! <answer>4 + 3</answer>"
    kept, ended = cut(text, [ANSWER_CLOSED])
    assert ended and kept.endswith("</answer>") and verify(kept, [3, 4], 12).correct


# ------------------------------------------------------------------ batch size on a GPU

SMOLLM2_135M = types.SimpleNamespace(num_attention_heads=9, num_key_value_heads=3, hidden_size=576,
                                     intermediate_size=1536, num_hidden_layers=30, vocab_size=49152)
LLAMA_8B = types.SimpleNamespace(num_attention_heads=32, num_key_value_heads=8, hidden_size=4096,
                                 intermediate_size=14336, num_hidden_layers=32, vocab_size=128256, head_dim=128)
GIB = 1 << 30


def test_gpu_batch_size_rule_with_fake_free_memory():
    # a 135M model on an idle 140 GB GPU: the cap, far above the suite's CPU-sized 16 or 32
    assert memory_batch_size(SMOLLM2_135M, 200, 256, 1, 130 * GIB) == 256
    # an 8B model writing long answers in 20 GiB: the KV cache (2*32*8*128*2 bytes a token) dominates
    budget, kv_per_sequence = 0.7 * 20 * GIB, 2 * 32 * 8 * 128 * 2 * (256 + 1792)
    size = memory_batch_size(LLAMA_8B, 256, 1792, 1, 20 * GIB)
    assert 0.9 * budget / kv_per_sequence < size <= budget / kv_per_sequence
    # long prompts: the prefill's activations count too, so fewer than the KV cache alone allows
    assert memory_batch_size(LLAMA_8B, 1792, 256, 1, 20 * GIB) < 0.9 * budget / kv_per_sequence
    # more memory, more prompts; longer sequences or more samples per prompt, fewer
    assert memory_batch_size(LLAMA_8B, 256, 1792, 1, 40 * GIB) in (2 * size, 2 * size + 1)
    assert memory_batch_size(LLAMA_8B, 256, 3840, 1, 20 * GIB) < size
    assert memory_batch_size(LLAMA_8B, 256, 1792, 4, 20 * GIB) == size // 4
    assert memory_batch_size(LLAMA_8B, 256, 1792, 1, 10 << 20) == 1    # never below one
    assert memory_batch_size(SMOLLM2_135M, 50, 50, 1, 130 * GIB, cap=64) == 64


def test_generator_sizes_batches_from_free_memory_when_told_it_has_some(tiny):
    """The GPU path on a CPU: a free-memory reading switches the batch size from the task's number to
    the memory rule (or the fixed `gpu_batch_size`), and outputs stay the prompts' own."""
    model, tokenizer = tiny
    generator = Generator(model, tokenizer, batch_size=2, log=None)
    assert generator.free_memory is None and generator.batch_for(100, 10, 1) == 2   # a CPU model
    generator.free_memory = lambda: 3 << 20   # 3 MiB "free"
    longest = max(len(tokenizer(render(tokenizer, p), add_special_tokens=False)["input_ids"])
                  for p in PROMPTS)
    expected = memory_batch_size(model.config, longest, 10, 1, 3 << 20, 4)
    assert 2 < expected < len(PROMPTS)
    out = generator.generate(PROMPTS, max_new_tokens=10)
    assert out.batch_size == expected
    assert out.texts == _one_at_a_time(model, tokenizer, PROMPTS, max_new_tokens=10)
    generator.gpu_batch_size = 5
    assert generator.generate(PROMPTS[:2], max_new_tokens=2).batch_size == 5


# ------------------------------------------------------------------ progress

def test_progress_lines_in_a_log():
    now = [0.0]
    lines: list[str] = []
    with Progress("humaneval", 10, lines.append, interval_s=30, live=False, clock=lambda: now[0]) as progress:
        now[0] = 10.0
        progress.advance(2, 400)             # before the interval: quiet
        assert lines == []
        now[0] = 40.0
        progress.advance(2, 400)
        now[0] = 50.0
        progress.advance(3, 300)             # 10 s after the last line: quiet
        now[0] = 100.0
        progress.advance(3, 100)
    assert lines == ["humaneval: 4/10 items, 20 tokens/s, 40s elapsed, ~1m00s left",
                     "humaneval: 10/10 items, 12 tokens/s, 1m40s elapsed"]
    assert duration(3725) == "1h02m"


def test_generation_logs_progress(tiny):
    model, tokenizer = tiny
    lines: list[str] = []
    generator = Generator(model, tokenizer, batch_size=2, log=lines.append)
    generator.task, generator.progress_interval_s = "tiny_task", 0.0
    generator.generate(PROMPTS, max_new_tokens=4)
    # a line after each batch but the last, and the closing line
    assert [line.split(",")[0] for line in lines] == ["tiny_task: 2/7 items", "tiny_task: 4/7 items",
                                                     "tiny_task: 6/7 items", "tiny_task: 7/7 items"]
    assert "tokens/s" in lines[0] and "left" in lines[0] and "left" not in lines[-1]
