"""An lm-evaluation-harness model backed by a Tinker `SamplingClient`.

lm-eval asks a model three things (`lm_eval.api.model.LM`); this class answers them with
the sampler of a `tinker://` checkpoint, tokenizing locally with the base model's HF
tokenizer exactly as lm-eval's `HFLM` does, so the same weights give the same scores on
either path (the tests compare the two on the local implementation):

- `loglikelihood(context, continuation)`: context and continuation are tokenized like
  `HFLM` (`TemplateLM._encode_pair`, the model's BOS rule, the last `max_length + 1`
  tokens kept), the whole sequence is scored in one prompt-scoring request, and the
  continuation's per-token log-probabilities are summed. The request is the one
  `SamplingClient.compute_logprobs` makes (a prefill with `include_prompt_logprobs` and one
  sampled token), asking also for the top-1 token at each scored position
  (`topk_prompt_logprobs=1`), so `is_greedy` is computed honestly: every continuation token
  is the argmax at its position. Only the continuation's positions are scored
  (`prompt_logprobs_last_n`), which lets the service serve the context from its prefix
  cache. A sampler without top-k prompt log-probs (the local implementation) is asked
  through `compute_logprobs` itself, plus a greedy sample of as many tokens as the
  continuation has, with no stop: `is_greedy` is whether that sample is the continuation,
  the same definition at the price of a second request.
- `loglikelihood_rolling(text)`: lm-eval's own rolling windows over `max_length`, each
  scored as above, summed per document.
- `generate_until(context, gen_kwargs)`: `sample` with greedy decoding unless `do_sample`,
  `max_gen_toks` new tokens, lm-eval's stop strings (`until` plus the end-of-sequence text)
  as the service's stop strings; the text is cut at the first end-of-sequence token,
  decoded without special tokens and split at the first stop string, as `HFLM` does.

Up to `batch_size` requests are in flight at once; every wait is bounded. Prompt and sampled
tokens of every request go into the checkpoint's sampling ledger under the current task.
`request_seconds` and `generated_tokens` feed the runner's throughput figures, as on the
transformers path.
"""

from __future__ import annotations

import functools
import time
from typing import Callable


@functools.lru_cache(maxsize=1)
def _lm_class():
    """The class, built on first use: lm-eval is imported only when an lm-eval task runs."""
    from lm_eval import utils
    from lm_eval.api.model import TemplateLM
    from lm_eval.models.utils import handle_stop_sequences, has_bos_prefix, normalize_gen_kwargs, \
        postprocess_generated_text

    from harness.evaluate.progress import Progress
    from harness.evaluate.tinker_sampling import wait

    class TinkerLM(TemplateLM):
        backend = "causal"

        def __init__(self, generator, batch_size: int = 16, max_length: int | None = None,
                     add_bos_token: bool | None = None) -> None:
            super().__init__()
            self.generator = generator
            self.sampler, self.tokenizer = generator.sampler, generator.tokenizer
            self.checkpoint = generator.checkpoint
            self.batch_size = max(1, int(batch_size))
            self.add_bos_token = add_bos_token
            self._max_length = max_length or default_max_length(self.checkpoint.base_model, self.tokenizer)
            self.request_seconds = 0.0
            self.generated_tokens = 0
            self.progress_label = "lm_eval"
            self.progress_log: Callable[[str], None] | None = print
            self.top_k_prompt_logprobs = True   # False once the sampler refuses topk_prompt_logprobs

        # ---------------------------------------------------------- what lm-eval reads

        @property
        def eot_token_id(self) -> int:
            return self.tokenizer.eos_token_id

        @property
        def prefix_token_id(self) -> int:
            bos = self.tokenizer.bos_token_id
            return bos if bos is not None else self.tokenizer.eos_token_id

        @property
        def max_length(self) -> int:
            return self._max_length

        @property
        def max_gen_toks(self) -> int:
            return 256

        @property
        def tokenizer_name(self) -> str:
            return self.tokenizer.name_or_path.replace("/", "__")

        def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
            return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                      add_generation_prompt=add_generation_prompt,
                                                      continue_final_message=not add_generation_prompt)

        def get_model_info(self) -> dict:
            return {"model_checkpoint": self.checkpoint.uri, "base_model": self.checkpoint.base_model,
                    "service": self.checkpoint.service}

        def tok_encode(self, string: str, add_special_tokens: bool | None = None, left_truncate_len=None,
                       **kwargs) -> list[int]:
            # HFLM's rule: the tokenizer's own default unless told, never a second BOS
            if add_special_tokens is not None:
                special = {"add_special_tokens": add_special_tokens}
            else:
                special = {} if self.add_bos_token is None else {"add_special_tokens": self.add_bos_token}
                if has_bos_prefix(string, self.tokenizer.decode(self.prefix_token_id)):
                    special["add_special_tokens"] = False
            encoding = self.tokenizer.encode(string, **special)
            return encoding[-left_truncate_len:] if left_truncate_len else encoding

        def _context_tokens(self, context: str, left_truncate_len: int) -> list[int]:
            """A generation context encoded as HFLM's batch encoder does it."""
            if has_bos_prefix(context, getattr(self.tokenizer, "bos_token", None)):
                special = {"add_special_tokens": False}
            else:
                special = {} if self.add_bos_token is None else {"add_special_tokens": self.add_bos_token}
            ids = self.tokenizer(context, **special)["input_ids"]
            return ids[-left_truncate_len:] if left_truncate_len else ids

        # ---------------------------------------------------------- requests

        def _in_flight(self, jobs: list[Callable[[], tuple]], label: str, finish: Callable[[int, list], int]) -> None:
            """Submit `jobs` (each returns a tuple of futures) `batch_size` at a time; `finish(i, results)`
            consumes each job's results in order and returns the tokens it generated (for progress)."""
            what = f"{self.progress_label}: {label} on '{self.checkpoint.uri}'"
            with Progress(self.progress_label, len(jobs), self.progress_log) as progress:
                for first in range(0, len(jobs), self.batch_size):
                    window = range(first, min(len(jobs), first + self.batch_size))
                    submitted = [(i, jobs[i]()) for i in window]
                    tokens = 0
                    for i, futures in submitted:
                        tokens += finish(i, [wait(f, self.generator.timeout, what) for f in futures])
                    progress.advance(len(window), tokens)

        def _timed(self, method, *args):
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.request_seconds += time.perf_counter() - start

        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
            return self._timed(self._score, requests)

        def _score(self, requests) -> list[tuple[float, bool]]:
            prompts, counts = [], []
            for _, context_enc, continuation_enc in requests:
                # HFLM scores the last max_length + 1 tokens: the inputs are all but the last, the targets shifted
                prompts.append((context_enc + continuation_enc)[-(self.max_length + 1):])
                counts.append(min(len(continuation_enc), len(prompts[-1]) - 1))
            results: list[tuple[float, bool]] = [(0.0, False)] * len(prompts)
            ledger, task = self.generator.ledger, self.generator.task

            def finish(i, answers) -> int:
                n, tokens = counts[i], prompts[i]
                first = answers[0]
                logprobs = first if isinstance(first, list) else first.prompt_logprobs
                tail = logprobs[len(tokens) - n:] if n else []
                if any(v is None for v in tail):
                    raise RuntimeError(f"the sampler returned no log-prob for a continuation token of request {i}")
                if len(answers) == 1:   # top-1 token at every scored position
                    top = first.topk_prompt_logprobs
                    greedy = all(top[p] and top[p][0][0] == tokens[p] for p in range(len(tokens) - n, len(tokens)))
                    ledger.add(task, len(tokens), 1)
                else:                   # the greedy continuation, sampled
                    greedy = list(answers[1].sequences[0].tokens) == tokens[len(tokens) - n:]
                    ledger.add(task, len(tokens), 0)
                    ledger.add(task, len(tokens) - n, n)
                results[i] = (float(sum(tail)), bool(greedy))
                key = requests[i][0]
                if key is not None:
                    self.cache_hook.add_partial("loglikelihood", key, results[i])
                return 0

            self._in_flight([functools.partial(self._score_request, prompts[i], counts[i])
                             for i in range(len(prompts))], "scoring", finish)
            return results

        def _score_request(self, tokens: list[int], n: int) -> tuple:
            """Futures that answer one scored sequence: the prompt-scoring request with the top-1 token
            at each scored position; or, where the sampler has no top-k prompt log-probs, the scores
            (`compute_logprobs`) and the greedy continuation of the context (n tokens, no stop)."""
            from tinker import types

            prompt = types.ModelInput.from_ints(tokens)
            if self.top_k_prompt_logprobs:
                try:
                    return (self.sampler.sample(prompt=prompt, num_samples=1,
                                                sampling_params=types.SamplingParams(max_tokens=1),
                                                include_prompt_logprobs=True, topk_prompt_logprobs=1,
                                                prompt_logprobs_last_n=n or None),)
                except (TypeError, ValueError, NotImplementedError):
                    self.top_k_prompt_logprobs = False
            scores = _AsList(self.sampler.compute_logprobs(prompt, prompt_logprobs_last_n=n or None))
            if not n:
                return scores, _Done(_NoSequence())
            greedy = self.sampler.sample(prompt=types.ModelInput.from_ints(tokens[:len(tokens) - n]), num_samples=1,
                                         sampling_params=types.SamplingParams(max_tokens=n, temperature=0.0, stop=[]))
            return scores, greedy

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
            windows, owner = [], []
            for k, (string,) in enumerate(req.args for req in requests):
                for context, continuation in map(utils.make_disjoint_window, utils.get_rolling_token_windows(
                        token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                        max_seq_len=self.max_length, context_len=1)):
                    windows.append((None, context, continuation))
                    owner.append(k)
            scores = self._loglikelihood_tokens(windows)
            totals = [0.0] * len(requests)
            for k, (logprob, _) in zip(owner, scores):
                totals[k] += logprob
            for req, total in zip(requests, totals):
                self.cache_hook.add_partial("loglikelihood_rolling", (req.args[0],), total)
            return totals

        def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
            return self._timed(self._generate, requests)

        def _generate(self, requests) -> list[str]:
            from tinker import types

            eos = self.tokenizer.decode(self.eot_token_id, skip_special_tokens=False)
            plans = []
            for context, gen_kwargs in (req.args for req in requests):
                kwargs = normalize_gen_kwargs(dict(gen_kwargs), self.max_gen_toks)
                until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
                max_gen_toks = kwargs.pop("max_gen_toks")
                sample = bool(kwargs.pop("do_sample", False))
                params = types.SamplingParams(
                    max_tokens=max_gen_toks, temperature=float(kwargs.pop("temperature", 1.0)) if sample else 0.0,
                    top_p=float(kwargs.pop("top_p", 1.0) or 1.0) if sample else 1.0,
                    top_k=int(kwargs.pop("top_k", -1) or -1) if sample else -1,
                    seed=kwargs.pop("seed", None) if sample else None, stop=[s for s in until if s] or None)
                plans.append((self._context_tokens(context, self.max_length - max_gen_toks), params, until))
            results = [""] * len(plans)
            ledger, task = self.generator.ledger, self.generator.task

            def job(i):
                return lambda: (self.sampler.sample(prompt=types.ModelInput.from_ints(plans[i][0]), num_samples=1,
                                                    sampling_params=plans[i][1]),)

            def finish(i, answers) -> int:
                response = answers[0]
                row = list(response.sequences[0].tokens)
                ledger.add(task, len(plans[i][0]), len(row))
                self.generated_tokens += len(row)
                if self.eot_token_id in row:
                    row = row[:row.index(self.eot_token_id)]
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                results[i] = postprocess_generated_text(generation=text, stop=plans[i][2], think_end_token=None)
                self.cache_hook.add_partial("generate_until", requests[i].args, results[i])
                return len(response.sequences[0].tokens)

            self._in_flight([job(i) for i in range(len(plans))], "sampling", finish)
            return results

    return TinkerLM


class _AsList:
    """`compute_logprobs`'s future, answering a plain list."""

    def __init__(self, future) -> None:
        self.future = future

    def result(self, timeout=None):
        return list(self.future.result(timeout=timeout))


class _Done:
    def __init__(self, value) -> None:
        self.value = value

    def result(self, timeout=None):
        return self.value


class _NoSequence:
    sequences = [type("Empty", (), {"tokens": []})()]


def default_max_length(base_model: str, tokenizer) -> int:
    """lm-eval's rule for HFLM: the model config's context length, else the tokenizer's, else 2048."""
    from lm_eval.models.utils import resolve_max_length

    config = None
    try:
        from transformers import AutoConfig

        from harness.models import model_location

        config = AutoConfig.from_pretrained(model_location(base_model))
    except Exception:   # a hub id without a cached config: fall back like lm-eval does
        config = None
    return resolve_max_length(config, tokenizer, default=2048)


def TinkerLM(generator, **kwargs):
    """An lm-eval `LM` for the checkpoint `generator` samples from (see the module docstring)."""
    return _lm_class()(generator, **kwargs)
