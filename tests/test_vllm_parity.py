"""vLLM and the transformers path agree on the Countdown suite: greedy outputs and verdicts.

Needs vLLM and a CUDA GPU; skipped anywhere else (CI and the development machine have neither).
Both sides run the embedded model in float32, so greedy decoding differs only where two
candidate tokens are within kernel rounding of each other: a few outputs may diverge late,
almost none of the verdicts should.

    HF_HUB_OFFLINE=1 python -m pytest tests/test_vllm_parity.py -q
"""

from __future__ import annotations

import importlib.util

import pytest


def _gpu_with_vllm() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


pytestmark = pytest.mark.skipif(not _gpu_with_vllm(), reason="needs vLLM and a CUDA GPU")

PROMPTS = 64


def test_vllm_greedy_matches_transformers_on_countdown():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.bench.generation import countdown_prompts
    from harness.evaluate import EvalContext
    from harness.evaluate.countdown import CountdownTask
    from harness.evaluate.generate import ANSWER_CLOSED, Generator, VLLMGenerator
    from harness.models import model_location

    path = model_location("embedded:smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompts = countdown_prompts(PROMPTS)
    task = CountdownTask(n=200, num_numbers=(2, 3), max_number=30, seed=1234, max_new_tokens=128, limit=PROMPTS)

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to("cuda").eval()
    hf = Generator(model, tokenizer, log=None)
    hf_texts = hf.generate(prompts, max_new_tokens=128, stop=[ANSWER_CLOSED]).texts
    hf_scores = task.evaluate(EvalContext(model_name=path, generator=hf)).per_item
    del model, hf
    torch.cuda.empty_cache()
    vllm = VLLMGenerator(path, tokenizer, dtype="float32", log=None, gpu_memory_utilization=0.3)
    vllm_texts = vllm.generate(prompts, max_new_tokens=128, stop=[ANSWER_CLOSED]).texts
    vllm_scores = task.evaluate(EvalContext(model_name=path, generator=vllm)).per_item

    identical = sum(a == b for a, b in zip(hf_texts, vllm_texts))
    assert identical >= 0.9 * PROMPTS, [(a[0][:200], b[0][:200]) for a, b in zip(hf_texts, vllm_texts) if a != b][:3]
    for metric in ("accuracy", "format_rate"):
        agree = sum(a == b for a, b in zip(hf_scores[metric], vllm_scores[metric]))
        assert agree >= 0.95 * PROMPTS, (metric, agree)
