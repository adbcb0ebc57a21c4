"""Batched generation for eval runners: throughput accounting, progress, early stopping.

Prompts are chat messages (rendered with the model's chat template) or plain strings. They are
tokenized once, sorted longest first and generated in left-padded batches, so little compute
goes to padding; outputs are mapped back to their prompts. Greedy decoding is the default;
sampling (for pass@k) takes a seed. When vLLM is installed and a GPU is present,
`Generator.create` returns a vLLM generator with the same interface.

Stopping where the answer is complete. A task passes `stop` rules (`Stop`): Countdown ends
after its `</answer>` tag, a chat reply with code after its first closing code fence, a
Codex-style completion before `\\ndef`, `\\nclass`, ... Each sequence of a batch stops at its own
first match (a `StoppingCriteria` checks the last few tokens for the rule's trigger each step,
and only then the whole text), and its text is cut at the match. Every `chunk_tokens` steps the sequences that have
ended (a stop rule or end-of-sequence) leave the batch, so the rest run on without them, and a
batch ends when all have ended, instead of when all reach `max_new_tokens`. For greedy decoding
the output is exactly the no-stop output cut at the same place (tested), so scores change only
for completions that go on after a complete answer (for example a second `<answer>`).

Batch size. On a CPU it is the task's `batch_size`. On a GPU the suite's CPU-sized number would
leave the device idle, so the batch is sized from free memory (`memory_batch_size`: the KV
cache and transient activations of one sequence against the free bytes), unless
`gpu_batch_size` is set; an out-of-memory error halves it and retries the batch.

`VERSION` is part of every suite fingerprint: bump it when outputs for the same settings
change, so leaderboard rows made before and after are not compared.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from typing import Any, Callable, Sequence

from harness.evaluate.progress import INTERVAL_S, Progress

VERSION = 2   # 2: stop rules end generation (Countdown after </answer>, chat code after its code block)
MAX_GPU_BATCH = 256      # past this a generation step is compute-bound even for small models (vLLM's default cap)
MEMORY_FRACTION = 0.7    # of free GPU memory given to one batch; the rest is headroom for allocator slack
CHUNK_TOKENS = 32        # steps between drops of finished sequences from a batch


@dataclasses.dataclass(frozen=True)
class Stop:
    """Where a completion ends: the first match of `pattern` (a regex, `.` matching newlines) in the
    generated text. `keep` keeps the match (an answer's closing tag); otherwise the text is cut
    before it (the stop sequences of the Codex paper). Every match ends with `trigger`, the
    literal the per-step check looks for in the newest tokens before it runs `pattern`."""

    pattern: str
    trigger: str
    keep: bool = True

    @staticmethod
    def literal(text: str, keep: bool = False) -> "Stop":
        return Stop(re.escape(text), text, keep)


ANSWER_CLOSED = Stop(r"</answer>", "</answer>")                   # Countdown / TinyZero answers
FENCE_CLOSED = Stop(r"```[^\n]*\n.*?\n[ \t]*```", "```")         # a complete fenced code block


def as_stops(stop: Sequence[str | Stop] | None) -> tuple[Stop, ...]:
    return tuple(s if isinstance(s, Stop) else Stop.literal(s) for s in stop or ())


def end_of(text: str, stops: Sequence[str | Stop]) -> int | None:
    """Where `text` ends under `stops`: at the earliest-ending first match, after it (`keep`) or
    before it; None when no rule matches."""
    best = None
    for stop in as_stops(stops):
        match = re.search(stop.pattern, text, re.S)
        if match and (best is None or match.end() < best[0].end()):
            best = (match, stop)
    if best is None:
        return None
    match, stop = best
    return match.end() if stop.keep else match.start()


def cut(text: str, stops: Sequence[str | Stop]) -> tuple[str, bool]:
    """`text` cut where the stop rules end it, and whether one did."""
    end = end_of(text, stops)
    return (text, False) if end is None else (text[:end], True)


@dataclasses.dataclass
class Generations:
    texts: list[list[str]]   # per prompt, `n` completions
    new_tokens: int          # generated tokens, all completions, up to each one's end
    seconds: float
    batch_size: int = 0      # prompts per batch (the first, when an out-of-memory retry shrank it)
    stopped: int = 0         # completions ended by a stop rule

    @property
    def throughput(self) -> dict[str, float]:
        seconds = max(self.seconds, 1e-9)
        return {"examples_per_s": round(len(self.texts) / seconds, 3),
                "tokens_per_s": round(self.new_tokens / seconds, 2), "seconds": round(self.seconds, 3),
                "batch_size": self.batch_size, "stopped": self.stopped}


def render(tokenizer, prompt) -> str:
    """A prompt as the text the model continues: chat template for messages, as-is for strings."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)


# ---------------------------------------------------------------------- batch size on a GPU

def memory_batch_size(config, prompt_tokens: int, max_new_tokens: int, n: int, free_bytes: int,
                      dtype_bytes: int = 2, cap: int = MAX_GPU_BATCH) -> int:
    """Prompts per batch that fit in `free_bytes` (a `transformers` model config; n completions each).

    A sequence's peak is the larger of two moments: the prefill (the prompt's KV cache plus the
    largest transient tensors of one layer: hidden states and MLP activations over the prompt,
    and float32 attention scores should the attention kernel materialise them) and the last
    step (the KV cache of `prompt_tokens + max_new_tokens` tokens: 2 x layers x KV heads x head
    size per token), plus the last position's float32 logits. `MEMORY_FRACTION` of the free
    bytes is used; the result is between 1 and `cap`.
    """
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    intermediate = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
    kv_per_token = 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes
    prefill = prompt_tokens * (kv_per_token + (4 * config.hidden_size + 3 * intermediate) * dtype_bytes) \
        + heads * prompt_tokens ** 2 * 4
    last_step = (prompt_tokens + max_new_tokens) * kv_per_token
    per_sequence = max(prefill, last_step) + 2 * config.vocab_size * 4
    sequences = int(free_bytes * MEMORY_FRACTION // per_sequence)
    return max(1, min(cap, sequences // max(n, 1)))


def cuda_free_bytes(device) -> int:
    """Free bytes on a CUDA device, counting memory PyTorch has reserved but not handed out."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


# ---------------------------------------------------------------------- transformers

class Generator:
    """HF `generate`, batched. One instance per loaded model.

    `batch_size`, `task` (the progress label) and `gpu_batch_size` are set per task by the eval
    flow. `free_memory` returns free accelerator bytes, or is None on a CPU; a set `free_memory`
    sizes batches from memory (the GPU rule), which is how a CPU test exercises that rule.
    """

    backend = "transformers"

    def __init__(self, model, tokenizer, batch_size: int = 16, log: Callable[[str], None] | None = print) -> None:
        self.model, self.tokenizer, self.batch_size, self.log = model, tokenizer, batch_size, log
        self.gpu_batch_size: int | None = None
        self.chunk_tokens = CHUNK_TOKENS
        self.task = "generation"
        self.progress_interval_s = INTERVAL_S
        device = getattr(model, "device", None)
        self.free_memory: Callable[[], int] | None = (
            functools.partial(cuda_free_bytes, device) if getattr(device, "type", "cpu") == "cuda" else None)

    @staticmethod
    def create(model, tokenizer, model_path: str | None = None, batch_size: int = 16,
               log: Callable[[str], None] | None = print) -> "Generator":
        """vLLM when it is installed and a GPU is present, otherwise transformers."""
        if model_path and _vllm_usable():
            return VLLMGenerator(model_path, tokenizer, log=log)
        return Generator(model, tokenizer, batch_size, log)

    def batch_for(self, prompt_tokens: int, max_new_tokens: int, n: int) -> int:
        """Prompts per batch: the task's number on a CPU; on a GPU the fixed `gpu_batch_size`, or what fits."""
        if self.free_memory is None:
            return self.batch_size
        if self.gpu_batch_size:
            return self.gpu_batch_size
        dtype = getattr(self.model, "dtype", None)
        return memory_batch_size(self.model.config, prompt_tokens, max_new_tokens, n, self.free_memory(),
                                 getattr(dtype, "itemsize", 2))

    def generate(self, prompts: list[Any], max_new_tokens: int = 256, n: int = 1, temperature: float = 0.0,
                 seed: int = 0, stop: Sequence[str | Stop] | None = None) -> Generations:
        import torch

        tok = self.tokenizer
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        stops = as_stops(stop)
        ids = [tok(render(tok, p), add_special_tokens=False)["input_ids"] for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        size = first = self.batch_for(len(ids[order[0]]) if ids else 0, max_new_tokens, n)
        out: list[list[str]] = [[] for _ in ids]
        new_tokens = stopped = 0
        start = time.perf_counter()
        self.model.eval()
        side, tok.padding_side = tok.padding_side, "left"
        try:
            with Progress(self.task, len(ids), self.log, self.progress_interval_s) as progress:
                b = 0
                while b < len(order):
                    batch = order[b:b + size]
                    if temperature > 0:
                        torch.manual_seed(seed + b)
                    try:
                        rows = self._batch([ids[i] for i in batch], max_new_tokens, n, temperature, stops)
                    except torch.cuda.OutOfMemoryError:
                        if size == 1:
                            raise
                        size //= 2
                        torch.cuda.empty_cache()
                        if self.log:
                            self.log(f"{self.task}: out of memory at {len(batch)} prompts per batch; retrying with {size}")
                        continue
                    tokens = 0
                    for k, (row, ended) in enumerate(rows):
                        tokens += len(row)
                        stopped += ended
                        out[batch[k // n]].append(text_of(tok, row, stops))
                    new_tokens += tokens
                    progress.advance(len(batch), tokens)
                    b += len(batch)
        finally:
            tok.padding_side = side
        return Generations(out, new_tokens, time.perf_counter() - start, first, stopped)

    def _batch(self, batch: list[list[int]], max_new_tokens: int, n: int, temperature: float,
               stops: tuple[Stop, ...]) -> list[tuple[list[int], bool]]:
        """Generated token ids of each sequence (n per prompt, in order) up to its end, and whether a
        stop rule ended it.

        Generation runs in chunks of `chunk_tokens` steps, continuing from the KV cache; after each
        chunk the sequences that have ended leave the batch (their cache rows are dropped), so a
        batch with a few long answers does not carry its finished sequences to `max_new_tokens`.
        """
        import torch
        from transformers import StoppingCriteriaList

        tok = self.tokenizer
        enc = tok.pad({"input_ids": batch}, return_tensors="pt").to(self.model.device)
        ids, mask = enc["input_ids"].repeat_interleave(n, 0), enc["attention_mask"].repeat_interleave(n, 0)
        width, eos, sample = ids.shape[1], self._eos(), temperature > 0
        rows: list = [None] * ids.shape[0]
        active = list(range(ids.shape[0]))   # the original row of each sequence still generating
        cache: dict = {}   # the KV cache, under the name this transformers version uses (`cache`, formerly
        while active:      # `past_key_values`)
            generated = ids.shape[1] - width
            criteria = completion_end()(tok, stops, width) if stops else None
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask, **cache,
                    max_new_tokens=min(self.chunk_tokens, max_new_tokens - generated), do_sample=sample,
                    temperature=temperature if sample else None, top_p=None, top_k=None,
                    pad_token_id=tok.pad_token_id, return_dict_in_generate=True, use_cache=True,
                    stopping_criteria=StoppingCriteriaList([criteria]) if criteria else None)
            sequences = out.sequences
            name = "cache" if "cache" in out else "past_key_values"
            cache = {name: out[name]} if name in out and out[name] is not None else {}
            running = []
            for k, row in enumerate(sequences[:, width:].tolist()):
                if criteria is not None and criteria.ended[k] is not None:
                    rows[active[k]] = (row[:criteria.ended[k]], True)
                    continue
                # a sequence ends at its end-of-sequence token (counted), or where generate's padding begins
                end = next((i for i in range(generated, len(row)) if row[i] in eos or row[i] == tok.pad_token_id),
                           None)
                if end is not None or len(row) >= max_new_tokens:
                    rows[active[k]] = (row if end is None else row[:end + (row[end] in eos)], False)
                else:
                    running.append(k)
            if running and len(running) < len(active):
                keep = torch.tensor(running, device=sequences.device)
                for kv in cache.values():
                    kv.batch_select_indices(keep)
                sequences, mask = sequences[keep], mask[keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], sequences.shape[1] - mask.shape[1])], dim=1)
            ids, active = sequences, [active[k] for k in running]
        return rows

    def _eos(self) -> set[int]:
        ids = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids = set(ids if isinstance(ids, (list, tuple)) else [] if ids is None else [ids])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids


def text_of(tokenizer, ids: list[int], stops: Sequence[Stop]) -> str:
    """A completion's text: its tokens decoded without special tokens, cut where a stop rule ends it."""
    return cut(tokenizer.decode(ids, skip_special_tokens=True), stops)[0]


@functools.lru_cache(maxsize=1)
def completion_end():
    """The `StoppingCriteria` that ends each sequence of a batch at its first stop-rule match.

    Each step it decodes only the newest few tokens of each running sequence and looks for a
    rule's trigger there; only when one is present does it decode the whole completion and run
    the rules' patterns. `ended[row]` is the number of generated tokens at which a row stopped.
    """
    import torch
    from transformers import StoppingCriteria

    class CompletionEnd(StoppingCriteria):
        def __init__(self, tokenizer, stops: Sequence[Stop], prompt_width: int) -> None:
            self.tokenizer, self.stops, self.width = tokenizer, tuple(stops), prompt_width
            self.window = max(len(s.trigger) for s in self.stops) + 4   # a token holds at least one character
            self.ended: list[int | None] = []

        def __call__(self, input_ids, scores, **kwargs):
            if not self.ended:
                self.ended = [None] * input_ids.shape[0]
            generated = input_ids.shape[1] - self.width
            running = [r for r, end in enumerate(self.ended) if end is None]
            if running:
                tails = input_ids[running, -min(self.window, generated):].tolist()
                for r, tail in zip(running, self.tokenizer.batch_decode(tails, skip_special_tokens=True)):
                    if any(s.trigger in tail for s in self.stops):
                        text = self.tokenizer.decode(input_ids[r, self.width:].tolist(), skip_special_tokens=True)
                        if end_of(text, self.stops) is not None:
                            self.ended[r] = generated
            return torch.tensor([end is not None for end in self.ended], dtype=torch.bool, device=input_ids.device)

    return CompletionEnd


# ---------------------------------------------------------------------- vLLM

def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class VLLMGenerator(Generator):
    """vLLM offline inference on the same checkpoint folder (GPU only).

    Literal stop rules go to vLLM's own `stop` (the match kept in the text when the rule keeps
    it); pattern rules (a closed code fence) cannot be expressed there, so their completions are
    cut afterwards, with the same result and without the time saved."""

    backend = "vllm"

    def __init__(self, model_path: str, tokenizer, dtype: str = "auto", log: Callable[[str], None] | None = print,
                 gpu_memory_utilization: float = 0.6) -> None:
        from vllm import LLM

        self.tokenizer, self.log, self.task = tokenizer, log, "generation"
        self.batch_size, self.gpu_batch_size, self.free_memory = 0, None, None
        self.llm = LLM(model=model_path, tokenizer=model_path, seed=0, dtype=dtype,
                       gpu_memory_utilization=gpu_memory_utilization)

    def generate(self, prompts, max_new_tokens=256, n=1, temperature=0.0, seed=0, stop=None) -> Generations:
        from vllm import SamplingParams

        stops = as_stops(stop)
        literal = [s for s in stops if s.pattern == re.escape(s.trigger)]
        # one keep-setting per request: pass the literals that share the first literal's setting
        keep = literal[0].keep if literal else False
        params = SamplingParams(n=n, temperature=temperature, max_tokens=max_new_tokens, seed=seed,
                                stop=[s.trigger for s in literal if s.keep == keep] or None,
                                include_stop_str_in_output=keep)
        texts = [render(self.tokenizer, p) for p in prompts]
        start = time.perf_counter()
        with Progress(self.task, len(texts), self.log) as progress:
            results = self.llm.generate(texts, params, use_tqdm=False)
            tokens = sum(len(c.token_ids) for r in results for c in r.outputs)
            progress.advance(len(texts), tokens)
        out, stopped = [], 0
        for r in results:
            row = []
            for c in r.outputs:
                text, ended = cut(c.text, stops)
                row.append(text)
                stopped += ended or isinstance(c.stop_reason, str)   # a literal vLLM removed from the text
            out.append(row)
        return Generations(out, tokens, time.perf_counter() - start, len(texts), stopped)
