"""Generation for eval runners through a Tinker `SamplingClient`, with the `Generator` interface.

Countdown, code, safety and the pairwise runners call `ctx.generator.generate(...)`; when the
checkpoint is a `tinker://` path that generator is this one, so every generation-based task
runs on a Tinker checkpoint unchanged. It renders and tokenizes prompts locally exactly as
the transformers generator does (chat template, no added special tokens), sends each prompt
as one `sample` request (`num_samples=n`), keeps up to `batch_size` requests in flight, and
turns the sampled tokens into text the same way: cut at the first end-of-sequence token,
decoded without special tokens, cut where the task's stop rules end it. With greedy
decoding (temperature 0) the texts are therefore the transformers path's texts for the same
weights, which the tests check on the local implementation.

Stop rules. The literal triggers of the rules (`</answer>` for Countdown) go to the service
as `SamplingParams.stop` strings, so sampling ends there and fewer tokens are billed; the
service returns the stop string's tokens with the sequence, and the rule's own cut then
keeps or drops the match as it does on the transformers path. Pattern rules (a closed code
fence) cannot be expressed as a stop string; those completions run to their end and are cut
afterwards. The tokenizer's end-of-sequence text is always a stop string too, since a
non-empty stop list may replace the service's implicit end-of-sequence stop.

Every request's prompt and sampled tokens go into the ledger under the current task.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Sequence

from harness.evaluate.generate import Generations, Stop, as_stops, cut, render
from harness.evaluate.progress import Progress
from harness.evaluate.tinker_sampling import REQUEST_TIMEOUT_S, SamplingLedger, TinkerCheckpoint, wait


class TinkerGenerator:
    """`generate(prompts, max_new_tokens, n, temperature, seed, stop) -> Generations` on a Tinker sampler."""

    backend = "tinker"

    def __init__(self, checkpoint: TinkerCheckpoint, batch_size: int = 16,
                 log: Callable[[str], None] | None = print, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.checkpoint, self.sampler, self.tokenizer = checkpoint, checkpoint.sampler, checkpoint.tokenizer
        self.batch_size, self.log, self.timeout = batch_size, log, timeout
        self.gpu_batch_size: int | None = None
        self.free_memory = None
        self.task = "generation"
        self.ledger = SamplingLedger(checkpoint.uri, checkpoint.service, checkpoint.base_model)

    @property
    def eos_ids(self) -> set[int]:
        return {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()

    def generate(self, prompts: list[Any], max_new_tokens: int = 256, n: int = 1, temperature: float = 0.0,
                 seed: int = 0, stop: Sequence[str | Stop] | None = None) -> Generations:
        from tinker import types

        tok = self.tokenizer
        stops = as_stops(stop)
        ids = [tok(render(tok, p), add_special_tokens=False)["input_ids"] for p in prompts]
        params = types.SamplingParams(max_tokens=max_new_tokens, temperature=temperature,
                                      seed=seed if temperature > 0 else None, stop=self.stop_strings(stops))
        out: list[list[str]] = [[] for _ in ids]
        new_tokens = stopped = 0
        start = time.perf_counter()
        with Progress(self.task, len(ids), self.log) as progress:
            for first in range(0, len(ids), max(1, self.batch_size)):
                window = range(first, min(len(ids), first + max(1, self.batch_size)))
                futures = [(i, self.sampler.sample(prompt=types.ModelInput.from_ints(ids[i]), num_samples=n,
                                                   sampling_params=params)) for i in window]
                tokens = 0
                for i, future in futures:
                    response = wait(future, self.timeout, f"{self.task}: sampling from '{self.checkpoint.uri}'")
                    sampled = 0
                    for sequence in response.sequences:
                        row = list(sequence.tokens)
                        sampled += len(row)
                        text, ended = self.text(row, stops)
                        stopped += ended
                        out[i].append(text)
                    self.ledger.add(self.task, len(ids[i]), sampled)
                    tokens += sampled
                new_tokens += tokens
                progress.advance(len(window), tokens)
        return Generations(out, new_tokens, time.perf_counter() - start, self.batch_size, stopped)

    def stop_strings(self, stops: Sequence[Stop]) -> list[str] | None:
        """What the service stops at: the rules' literal triggers and the end-of-sequence text;
        None (the service's own end-of-sequence stop) when no rule is literal."""
        literal = [s.trigger for s in stops if s.pattern == re.escape(s.trigger)]
        if not literal:
            return None
        eos = self.tokenizer.eos_token
        return literal + ([eos] if eos and eos not in literal else [])

    def text(self, row: list[int], stops: Sequence[Stop]) -> tuple[str, bool]:
        """A completion's text as the transformers generator makes it: up to its first
        end-of-sequence token, decoded without special tokens, cut by the stop rules."""
        end = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
        if end is not None:
            row = row[:end]
        return cut(self.tokenizer.decode(row, skip_special_tokens=True), stops)

    def lm_eval_model(self, batch_size: int | str):
        """The lm-eval model for this checkpoint, sharing the sampler, tokenizer and ledger."""
        from harness.evaluate.tinker_lm import TinkerLM

        return TinkerLM(self, batch_size=batch_size if isinstance(batch_size, int) else self.batch_size)
