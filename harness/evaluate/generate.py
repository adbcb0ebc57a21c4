"""Batched generation for eval runners, with throughput accounting.

Prompts are chat messages (rendered with the model's chat template) or plain
strings. Batches are left-padded and sorted by length so little compute goes
to padding. Greedy decoding is the default; sampling (for pass@k) takes a
seed. When vLLM is installed and a GPU is present, `Generator.create` returns a
vLLM generator with the same interface (greedy outputs agree up to numerics).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any


@dataclasses.dataclass
class Generations:
    texts: list[list[str]]   # per prompt, `n` completions
    new_tokens: int          # generated tokens, all completions
    seconds: float

    @property
    def throughput(self) -> dict[str, float]:
        seconds = max(self.seconds, 1e-9)
        return {"examples_per_s": round(len(self.texts) / seconds, 3),
                "tokens_per_s": round(self.new_tokens / seconds, 2), "seconds": round(self.seconds, 3)}


def render(tokenizer, prompt) -> str:
    """A prompt as the text the model continues: chat template for messages, as-is for strings."""
    if isinstance(prompt, str):
        return prompt
    return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)


class Generator:
    """HF `generate`, batched. One instance per loaded model."""

    backend = "transformers"

    def __init__(self, model, tokenizer, batch_size: int = 16) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @staticmethod
    def create(model, tokenizer, model_path: str | None = None, batch_size: int = 16) -> "Generator":
        """vLLM when it is installed and a GPU is present, otherwise transformers."""
        if model_path and _vllm_usable():
            return VLLMGenerator(model_path, tokenizer)
        return Generator(model, tokenizer, batch_size)

    def generate(self, prompts: list[Any], max_new_tokens: int = 256, n: int = 1, temperature: float = 0.0,
                 seed: int = 0, stop: list[str] | None = None) -> Generations:
        import torch

        tok = self.tokenizer
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        texts = [render(tok, p) for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: list[list[str]] = [[] for _ in texts]
        new_tokens = 0
        start = time.perf_counter()
        self.model.eval()
        side = tok.padding_side
        tok.padding_side = "left"
        try:
            for b in range(0, len(order), self.batch_size):
                batch = order[b:b + self.batch_size]
                enc = tok([texts[i] for i in batch], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(self.model.device)
                sample = temperature > 0
                if sample:
                    torch.manual_seed(seed + b)
                with torch.inference_mode():
                    gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=sample,
                                              temperature=temperature if sample else None, top_p=None, top_k=None,
                                              num_return_sequences=n, pad_token_id=tok.pad_token_id)
                gen = gen[:, enc["input_ids"].shape[1]:]
                for k, row in enumerate(gen):
                    ids = row[row != tok.pad_token_id] if tok.pad_token_id is not None else row
                    eos = (ids == tok.eos_token_id).nonzero()
                    ids = ids[: int(eos[0]) + 1] if len(eos) else ids
                    new_tokens += len(ids)
                    text = tok.decode(ids, skip_special_tokens=True)
                    out[batch[k // n]].append(_cut(text, stop))
        finally:
            tok.padding_side = side
        return Generations(out, new_tokens, time.perf_counter() - start)


def _cut(text: str, stop: list[str] | None) -> str:
    for s in stop or ():
        at = text.find(s)
        if at >= 0:
            text = text[:at]
    return text


def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class VLLMGenerator(Generator):
    """vLLM offline inference on the same checkpoint folder (GPU only)."""

    backend = "vllm"

    def __init__(self, model_path: str, tokenizer) -> None:
        from vllm import LLM

        self.tokenizer = tokenizer
        self.llm = LLM(model=model_path, tokenizer=model_path, seed=0, gpu_memory_utilization=0.6)

    def generate(self, prompts, max_new_tokens=256, n=1, temperature=0.0, seed=0, stop=None) -> Generations:
        from vllm import SamplingParams

        texts = [render(self.tokenizer, p) for p in prompts]
        params = SamplingParams(n=n, temperature=temperature, max_tokens=max_new_tokens, seed=seed, stop=stop)
        start = time.perf_counter()
        results = self.llm.generate(texts, params, use_tqdm=False)
        out = [[c.text for c in r.outputs] for r in results]
        tokens = sum(len(c.token_ids) for r in results for c in r.outputs)
        return Generations(out, tokens, time.perf_counter() - start)
