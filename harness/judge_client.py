"""Judges that answer prompts with verdict texts, and the on-disk cache of their verdicts.

Two kinds, one interface (`identity`, `preflight()`, `complete(prompts, done)`):

- `LocalJudge`: a causal LM the data steps load by name (`base`, an earlier stage, a folder, a hub
  id) through `ctx.models`, answering greedily with the eval suite's batched generator;
- `EndpointJudge`: an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp, ...)
  through the `openai` client library, its key read from the environment variable the recipe
  names. Calls run concurrently in a thread pool; each has the client's own `timeout` and bounded
  `max_retries` (with the client's exponential back-off), so a dead endpoint never hangs a run.

`VerdictCache` keeps every verdict in one SQLite file under the harness cache, keyed by the judge's
identity, the template text and the rendered prompt (which holds the instruction and both answers
in their order). Each verdict is committed as it arrives, so an interrupted run keeps what it paid
for and a rerun makes no calls.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Callable

from harness import paths
from harness.errors import HarnessError, one_line
from harness.fingerprint import fingerprint

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class VerdictCache:
    """Verdict texts by key, in `<cache>/judge/verdicts.sqlite` (one transaction per verdict; several
    processes may share it, SQLite serialises their writes)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or paths.cache_root() / "judge" / "verdicts.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        # write-ahead log, synced at checkpoints: each verdict's commit stays atomic (a crash loses at
        # most the last few verdicts, never corrupts the file) without an fsync per verdict
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, text TEXT NOT NULL)")

    @staticmethod
    def key(judge_identity: str, template: str, prompt: str) -> str:
        return fingerprint("verdict", judge_identity, template, prompt)

    def get(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = self._db.execute(f"SELECT key, text FROM verdicts WHERE key IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall()
                found.update(rows)
        return found

    def put(self, key: str, text: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO verdicts (key, text) VALUES (?, ?)", (key, text))

    def close(self) -> None:
        self._db.close()


def ask(judge, template: str, prompts: list[str], cache: VerdictCache, count: Callable[[str, int], None]) -> list[str]:
    """Verdict texts for `prompts` (same order): cached ones read, the others asked once each and
    cached as they arrive. Counts `judge_verdicts`, `judge_calls` (asked now) and `judge_cached`."""
    keys = [VerdictCache.key(judge.identity, template, p) for p in prompts]
    known = cache.get(sorted(set(keys)))
    missing = list(dict.fromkeys(k for k in keys if k not in known))
    if missing:
        first = {k: p for k, p in zip(keys, prompts)}
        todo = [first[k] for k in missing]

        def done(i: int, text: str) -> None:
            cache.put(missing[i], text)
            known[missing[i]] = text

        judge.complete(todo, done)
    count("judge_verdicts", len(prompts))
    count("judge_calls", len(missing))
    count("judge_cached", len(prompts) - len(missing))
    return [known[k] for k in keys]


@dataclasses.dataclass
class LocalJudge:
    """A causal LM loaded through the data steps' `StepModels`, answering greedily.

    With `prefix`, the answer is prefilled: the judge continues from it (after the chat template's
    assistant header) and the verdict read is prefix + continuation. Prefilling the start of the
    expected format ("[[") is what makes a small model give a verdict rather than echo the prompt.

    With `logprob`, nothing is generated: the verdict is the margin log p("A") - log p("B") of the
    judge's next token after the prefix, written as a number (`+1.234567`). A pair's two margins,
    one per order, are then averaged by the scorer (balanced position calibration, Wang et al.,
    2023, "Large Language Models are not Fair Evaluators"), which cancels a constant preference for
    one position: a small model that always writes "A" can still rank.
    """

    ref: str
    models: object
    max_new_tokens: int
    batch_size: int
    prefix: str = ""
    logprob: bool = False

    @property
    def identity(self) -> str:
        how = "logprob" if self.logprob else f"greedy:{self.max_new_tokens}"
        return f"local:{self.models.identity(self.ref)}:{how}" + (f":prefix:{self.prefix}" if self.prefix else "")

    def preflight(self) -> None:  # the model is checked with every other model a data step names
        return None

    def complete(self, prompts: list[str], done: Callable[[int, str], None]) -> None:
        from harness.evaluate.auxiliary import chat_or_text
        from harness.evaluate.generate import Generator, render

        model, tokenizer = self.models.load(self.ref)
        if self.logprob:
            for i, margin in enumerate(self.margins(model, tokenizer, prompts)):
                done(i, f"{margin:+.6f}")
            return
        generator = Generator.create(model, tokenizer, self.models.location(self.ref), self.batch_size, log=None)
        rendered = [render(tokenizer, chat_or_text(tokenizer, p)) + self.prefix for p in prompts]
        texts = generator.generate(rendered,
                                   max_new_tokens=self.max_new_tokens, temperature=0.0).texts
        for i, found in enumerate(texts):
            done(i, self.prefix + found[0])


    def letter_ids(self, tokenizer) -> tuple[int, int]:
        """The token ids of "A" and "B" as the judge's next token after the prefix."""
        start = tokenizer(self.prefix, add_special_tokens=False).input_ids if self.prefix else []
        ids = []
        for letter in "AB":
            found = tokenizer(self.prefix + letter, add_special_tokens=False).input_ids
            if found[:len(start)] != start or len(found) != len(start) + 1:
                raise HarnessError(f"judge {self.ref}: its tokenizer does not read {self.prefix + letter!r} as the "
                                   f"prefix then one token for {letter!r}; use `verdict: text` or another answer_prefix")
            ids.append(found[-1])
        return ids[0], ids[1]

    def margins(self, model, tokenizer, prompts: list[str]) -> list[float]:
        """log p("A") - log p("B") for the token after each rendered prompt + prefix, in batches of
        similar length (left-padded, so the last position is each prompt's own)."""
        import torch

        from harness.evaluate.auxiliary import chat_or_text
        from harness.evaluate.generate import render

        a, b = self.letter_ids(tokenizer)
        texts = [render(tokenizer, chat_or_text(tokenizer, p)) + self.prefix for p in prompts]
        encoded = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        out = [0.0] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                width = max(len(encoded[i]) for i in batch)
                ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch])
                mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch])
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                               position_ids=positions.to(model.device)).logits[:, -1]
                logp = torch.log_softmax(logits.float(), dim=-1)
                for i, margin in zip(batch, (logp[:, a] - logp[:, b]).tolist()):
                    out[i] = margin
        return out


@dataclasses.dataclass
class EndpointJudge:
    """An OpenAI-compatible chat-completions endpoint, called through the `openai` client."""

    base_url: str
    model: str
    api_key_env: str
    max_new_tokens: int
    temperature: float = 0.0
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 2

    @property
    def identity(self) -> str:
        return f"endpoint:{self.base_url.rstrip('/')}:{self.model}:t{self.temperature}:{self.max_new_tokens}"

    def where(self) -> str:
        return f"judge endpoint {self.base_url} (model {self.model})"

    def client(self, **options):
        key = os.environ.get(self.api_key_env)
        if not key:
            raise HarnessError(f"{self.where()}: the environment variable {self.api_key_env} is not set; export "
                               f"the endpoint's API key in it (any non-empty value for a server without keys)")
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=key, timeout=options.get("timeout", self.timeout),
                             max_retries=options.get("max_retries", self.max_retries))

    def preflight(self) -> None:
        """The key is set and the endpoint answers (its model list, one quick call without retries);
        an endpoint that answers with an HTTP error other than a refused key still counts as reachable."""
        import openai

        client = self.client(timeout=min(self.timeout, 10.0), max_retries=0)
        try:
            client.models.list()
        except openai.APIConnectionError as err:  # includes timeouts
            raise HarnessError(f"{self.where()} is unreachable ({one_line(err)}); start the server or fix "
                               f"`base_url`") from None
        except openai.AuthenticationError as err:
            raise HarnessError(f"{self.where()} refuses the key in {self.api_key_env} ({one_line(err)}); "
                               f"check the key") from None
        except openai.APIStatusError:
            pass
        finally:
            client.close()

    def complete(self, prompts: list[str], done: Callable[[int, str], None]) -> None:
        """Ask every prompt, `concurrency` at a time; `done(i, text)` runs in this thread as each
        answer arrives. The first call that fails after its retries stops the rest with one line."""
        import openai

        client = self.client()

        def one(prompt: str) -> str:
            reply = client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": prompt}],
                                                   max_tokens=self.max_new_tokens, temperature=self.temperature)
            return reply.choices[0].message.content or ""

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge")
        try:
            futures = {pool.submit(one, p): i for i, p in enumerate(prompts)}
            for future in concurrent.futures.as_completed(futures):
                try:
                    text = future.result()
                except openai.APITimeoutError:
                    raise HarnessError(f"{self.where()}: a verdict took longer than timeout={self.timeout:g}s on "
                                       f"each of {self.max_retries + 1} tries; raise `timeout` or `max_retries`, or "
                                       f"check the server") from None
                except openai.APIError as err:
                    raise HarnessError(f"{self.where()}: a verdict request failed after {self.max_retries + 1} "
                                       f"tries ({one_line(err)}); check the server, or raise `max_retries`") from None
                done(futures[future], text)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            client.close()
