"""`LocalSamplingClient`: Tinker's SamplingClient on an in-process model.

`sample` draws `num_samples` continuations in one batch with a KV cache, from a torch generator
seeded by `SamplingParams.seed` (same seed, same prompt, same count: same tokens). Each
sequence carries its tokens, the log-probability of every sampled token under the distribution
it was drawn from (temperature applied, before top-k/top-p truncation) and a stop reason:
"stop" when a stop token or stop string ended it (that token is kept, as the service returns
it), "length" when `max_tokens` did. `stop=None` stops at the model's EOS token(s); `stop=[]`
disables every stop, EOS included; strings or token ids add to EOS.
`compute_logprobs` scores a prompt: entry 0 is None (no context), entry i is log p(t_i | t_<i).

A sampler holds its own copy of the LoRA weights and swaps them into the shared model only
while it runs, so a snapshot taken from a training client is unaffected by later steps.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from typing import Any

from harness.tinker_local import futures, lora_model, store

_shared: dict = {}
_sequence_ids = itertools.count()


class LocalSamplingClient:
    def __init__(self, *, model, tokenizer, base_model: str, adapter: dict | None) -> None:
        self.model, self.tokenizer, self.base_model, self.adapter = model, tokenizer, base_model, adapter
        self._id = uuid.uuid4().hex[:12]

    # ---- public surface -------------------------------------------------------------------
    def sample(self, prompt, num_samples: int, sampling_params, include_prompt_logprobs: bool = False,
               topk_prompt_logprobs: int = 0, topk_sample_logprobs: int = 0, target_prompt_logprobs: Any = None,
               prompt_alt_tokens_k: int = 0, prompt_logprobs_last_n: int | None = None):
        if topk_prompt_logprobs or topk_sample_logprobs or target_prompt_logprobs is not None or prompt_alt_tokens_k:
            raise ValueError("top-k, target and alternative-token logprobs are not implemented by the local "
                             "Tinker service; ask for include_prompt_logprobs or use compute_logprobs")
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        tokens = prompt.to_ints()
        _check_last_n(prompt_logprobs_last_n, len(tokens), include_prompt_logprobs)
        return futures.submit(self._sample, tokens, int(num_samples), sampling_params, include_prompt_logprobs,
                              prompt_logprobs_last_n)

    def compute_logprobs(self, prompt, prompt_logprobs_last_n: int | None = None):
        tokens = prompt.to_ints()
        _check_last_n(prompt_logprobs_last_n, len(tokens), True)
        return futures.submit(self._prompt_logprobs, tokens, prompt_logprobs_last_n)

    def get_tokenizer(self):
        return self.tokenizer

    def get_base_model(self) -> str:
        return self.base_model

    def get_telemetry(self):
        return None

    # ---- implementation -------------------------------------------------------------------
    @contextlib.contextmanager
    def _weights(self):
        """The model with this sampler's LoRA weights in place (restored afterwards)."""
        import torch

        with torch.no_grad():
            if self.adapter is None:
                disable = getattr(self.model, "disable_adapter", None)
                with disable() if disable else contextlib.nullcontext():
                    yield self.model
                return
            current = lora_model.adapter_state(self.model)
            lora_model.load_adapter_state(self.model, self.adapter)
            try:
                yield self.model
            finally:
                lora_model.load_adapter_state(self.model, current)

    def _prompt_logprobs(self, tokens: list[int], last_n: int | None) -> list[float | None]:
        import torch

        with self._weights() as model:
            device = next(model.parameters()).device
            logits = model(input_ids=torch.tensor([tokens], device=device)).logits[0].float()
            return _score(logits, tokens, last_n)

    def _sample(self, tokens, num_samples, params, include_prompt_logprobs, last_n):
        import numpy as np
        import torch
        from tinker import types

        stop_ids, stop_strings = self._stops(params.stop)
        limit = _max_new_tokens(self.model, len(tokens), params.max_tokens)
        seed = params.seed if params.seed is not None else int.from_bytes(uuid.uuid4().bytes[:4], "little")
        with self._weights() as model:
            device = next(model.parameters()).device
            generator = torch.Generator(device=device).manual_seed(int(seed))
            out = model(input_ids=torch.tensor([tokens] * num_samples, device=device), use_cache=True,
                        logits_to_keep=0 if include_prompt_logprobs else 1)
            prompt_logprobs = _score(out.logits[0].float(), tokens, last_n) if include_prompt_logprobs else None
            logits, past = out.logits[:, -1, :].float(), out.cache
            rows = [[] for _ in range(num_samples)]
            row_logprobs = [[] for _ in range(num_samples)]
            reasons: list[str | None] = [None] * num_samples
            for step in range(limit):
                chosen, logprob = _draw(logits, params, generator)
                for r in range(num_samples):
                    if reasons[r] is not None:
                        continue
                    token = int(chosen[r])
                    rows[r].append(token)
                    row_logprobs[r].append(float(logprob[r]))
                    if token in stop_ids or (stop_strings and self._hit(rows[r], stop_strings)):
                        reasons[r] = "stop"
                if all(reason is not None for reason in reasons) or step == limit - 1:
                    break
                out = model(input_ids=chosen.view(-1, 1), cache=past, use_cache=True, logits_to_keep=1)
                logits, past = out.logits[:, -1, :].float(), out.cache
        sequences = [types.SampledSequence(stop_reason=reasons[r] or "length",
                                           sequence_id=f"local-{self._id}-{next(_sequence_ids)}",
                                           tokens_np=np.asarray(rows[r], dtype=np.int32),
                                           logprobs_np=np.asarray(row_logprobs[r], dtype=np.float32))
                     for r in range(num_samples)]
        prompt_np = None
        if prompt_logprobs is not None:
            prompt_np = np.asarray([np.nan if v is None else v for v in prompt_logprobs], dtype=np.float32)
        return types.SampleResponse(sequences=sequences, prompt_logprobs_np=prompt_np)

    def _stops(self, stop) -> tuple[set[int], list[str]]:
        if stop is not None and len(stop) == 0:
            return set(), []
        ids = set(_eos_ids(self.model, self.tokenizer))
        strings: list[str] = []
        if isinstance(stop, str):
            strings = [stop]
        elif stop is not None:
            for item in stop:
                if isinstance(item, str):
                    strings.append(item)
                else:
                    ids.add(int(item))
        return ids, [s for s in strings if s]

    def _hit(self, row: list[int], strings: list[str]) -> bool:
        # a stop string may span tokens: look at the decoded tail that could contain the newest match
        span = max(len(s) for s in strings) + 8
        tail = self.tokenizer.decode(row[-span:], skip_special_tokens=False)
        return any(s in tail for s in strings)


def _draw(logits, params, generator):
    """(token per row, its logprob under the sampling distribution): temperature, then top-k / top-p."""
    import torch

    if params.temperature <= 0:
        logprobs = torch.log_softmax(logits, dim=-1)
        chosen = logprobs.argmax(dim=-1)
        return chosen, logprobs.gather(1, chosen[:, None])[:, 0]
    logprobs = torch.log_softmax(logits / params.temperature, dim=-1)
    weights = logprobs.clone()
    if params.top_k and params.top_k > 0:
        kth = torch.topk(weights, min(int(params.top_k), weights.shape[-1]), dim=-1).values[:, -1:]
        weights = weights.masked_fill(weights < kth, float("-inf"))
    if params.top_p < 1:
        ordered, order = torch.sort(weights, dim=-1, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= params.top_p
        weights = weights.scatter(1, order, ordered.masked_fill(drop, float("-inf")))
    chosen = torch.multinomial(torch.softmax(weights, dim=-1), 1, generator=generator)[:, 0]
    return chosen, logprobs.gather(1, chosen[:, None])[:, 0]


def _score(logits, tokens: list[int], last_n: int | None) -> list[float | None]:
    import torch

    if len(tokens) < 2:
        return [None] * len(tokens)
    targets = torch.tensor(tokens[1:], device=logits.device)
    values = torch.log_softmax(logits[:-1], dim=-1).gather(1, targets[:, None])[:, 0].tolist()
    scored: list[float | None] = [None, *values]
    if last_n is not None:
        scored = [None] * (len(tokens) - last_n) + scored[len(tokens) - last_n:]
    return scored


def _check_last_n(last_n, length: int, include: bool) -> None:
    if last_n is None:
        return
    if not include:
        raise ValueError("prompt_logprobs_last_n requires include_prompt_logprobs")
    if not 1 <= int(last_n) <= length - 1:
        raise ValueError(f"prompt_logprobs_last_n must be between 1 and len(prompt) - 1 ({length - 1}), got {last_n}")


def _eos_ids(model, tokenizer) -> list[int]:
    ids = []
    for source in (getattr(getattr(model, "generation_config", None), "eos_token_id", None),
                   getattr(model.config, "eos_token_id", None), tokenizer.eos_token_id):
        if source is None:
            continue
        ids.extend(source if isinstance(source, (list, tuple)) else [source])
    return sorted({int(i) for i in ids})


def _max_new_tokens(model, prompt_length: int, max_tokens: int | None) -> int:
    context = getattr(model.config, "max_position_embeddings", None) or 4096
    room = context - prompt_length
    if room < 1:
        raise ValueError(f"prompt of {prompt_length} tokens fills the model's context of {context}")
    return room if max_tokens is None else max(1, min(int(max_tokens), room))


# ---- samplers that are not snapshots of a live training client ------------------------------
def _base_model(location: str):
    key = ("base", location)
    if key not in _shared:
        _shared[key] = lora_model.load_base(location)
    return _shared[key]


def _adapted_model(location: str, config: dict):
    """One shared PEFT model per base and adapter shape; samplers swap their weights in."""
    import json

    from peft import LoraConfig, get_peft_model

    shape = {k: config.get(k) for k in ("r", "lora_alpha", "target_modules", "bias")}
    key = ("lora", location, json.dumps(shape, sort_keys=True, default=list))
    if key not in _shared:
        lora = LoraConfig(r=config["r"], lora_alpha=config["lora_alpha"], lora_dropout=0.0,
                          target_modules=config["target_modules"], bias=config.get("bias", "none"),
                          task_type="CAUSAL_LM")
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
            _shared[key] = get_peft_model(lora_model.load_base(location), lora).eval()
    return _shared[key]


def sampler_for_base(base_model: str) -> LocalSamplingClient:
    location = lora_model.resolve_base(base_model)
    return LocalSamplingClient(model=_base_model(location), tokenizer=lora_model.load_tokenizer(location),
                               base_model=base_model, adapter=None)


def sampler_for_path(model_path: str) -> LocalSamplingClient:
    """A sampler over saved LoRA weights (any kind of local checkpoint)."""
    folder = store.local_path(model_path)
    base_model = store.read_sidecar(folder)["base_model"]
    location = lora_model.resolve_base(base_model)
    config, state = lora_model.read_adapter(folder)
    return LocalSamplingClient(model=_adapted_model(location, config), tokenizer=lora_model.load_tokenizer(location),
                               base_model=base_model, adapter=state)
