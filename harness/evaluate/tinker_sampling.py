"""Opening a `tinker://` checkpoint for evaluation, bounded waits, and the sampling-token ledger.

A Tinker checkpoint is evaluated where its weights live: through a `SamplingClient`
(`sample` for generation, `compute_logprobs`-style prompt scoring for likelihoods). The
same code serves both the real service (`tinker://<run>/sampler_weights/<name>`, needs a
Tinker API key) and the in-process implementation (`tinker://local/<id>/weights/<name>`,
`harness.tinker_local`), so the local store is a faithful stand-in in tests.

Remote work must never hang. The SDK retries connection errors, capacity queueing and
billing pauses for minutes to hours, and its client creation can block in the calling
thread before any future exists, so every blocking call here runs in a worker thread
joined with a timeout (`harness.tinker_clients.bounded`) and every future is waited on with one (`wait`). On
expiry the user gets one line naming the call and the checkpoint; the worker is a daemon
thread, so the process still exits.

The service reports no token counts per call, so the evaluation counts them itself
(`SamplingLedger`): prompt tokens (prefill) and sampled tokens per task, which go into the
run record's `sampling` section and from there into the leaderboard row.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError, one_line
from harness.tinker_local.store import is_local, local_path

PREFIX = "tinker://"
CREATE_TIMEOUT_S = float(os.environ.get("HARNESS_TINKER_CREATE_TIMEOUT_S", 180))    # client creation
REQUEST_TIMEOUT_S = float(os.environ.get("HARNESS_TINKER_REQUEST_TIMEOUT_S", 900))  # one sample request


def is_tinker(ref: str) -> bool:
    return str(ref).startswith(PREFIX)


# ---------------------------------------------------------------------- bounded waits

def wait(future, timeout: float, what: str):
    """A future's result within `timeout` seconds, or one line naming `what`."""
    import concurrent.futures

    try:
        return future.result(timeout=timeout)
    except (TimeoutError, concurrent.futures.TimeoutError):
        raise HarnessError(f"{what}: no answer after {timeout:g}s (the service may be queueing or paused for "
                           f"billing); retry later, or raise HARNESS_TINKER_REQUEST_TIMEOUT_S") from None


# ---------------------------------------------------------------------- the ledger

@dataclasses.dataclass
class SamplingLedger:
    """Tokens sent to and sampled from a Tinker sampler, per eval task: what the service bills
    as prefill and sample tokens. Counted client-side from the token ids of each request and
    response (the SDK reports no usage)."""

    checkpoint: str
    service: str                     # "tinker" (the remote service) or "local" (harness.tinker_local)
    base_model: str
    tasks: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def add(self, task: str, prompt_tokens: int, sampled_tokens: int, requests: int = 1) -> None:
        with self._lock:
            row = self.tasks.setdefault(task, {"requests": 0, "prompt_tokens": 0, "sampled_tokens": 0})
            row["requests"] += requests
            row["prompt_tokens"] += prompt_tokens
            row["sampled_tokens"] += sampled_tokens

    def totals(self) -> dict[str, int]:
        keys = ("requests", "prompt_tokens", "sampled_tokens")
        return {k: sum(row[k] for row in self.tasks.values()) for k in keys}

    def record(self) -> dict:
        """The run record's `sampling` section, priced with the Tinker price table when it lists the
        base model (prompt tokens as prefill, sampled tokens as sample; the local service is free)."""
        totals = self.totals()
        prices = self.prices()
        dollars = None if prices is None else round(
            prices.dollars({"prefill": totals["prompt_tokens"], "sample": totals["sampled_tokens"]}), 6)
        return {"engine": "tinker", "service": self.service, "checkpoint": self.checkpoint,
                "base_model": self.base_model, **totals, "dollars": dollars,
                "prices": None if prices is None else dataclasses.asdict(prices),
                "tasks": {name: dict(row) for name, row in self.tasks.items()},
                "counted": "client-side, from the token ids of every request and response"}

    def prices(self):
        from harness.tinker_cost import Prices, price_table

        if self.service == "local":
            return Prices(0.0, 0.0, 0.0, "local Tinker implementation (in process, no charge)")
        table = price_table()
        entry = table["models"].get(self.base_model)
        if not isinstance(entry, dict):
            return None
        return Prices(float(entry["prefill"]), float(entry["sample"]), float(entry.get("train", 0.0)),
                      f"{table['path']} ({table.get('date', 'undated')})")


# ---------------------------------------------------------------------- opening a checkpoint

@dataclasses.dataclass
class TinkerCheckpoint:
    """An opened `tinker://` checkpoint: its sampler, base model and the base model's HF tokenizer."""

    uri: str
    service: str
    base_model: str
    sampler: Any                     # tinker.SamplingClient or harness.tinker_local's sampler
    tokenizer: Any
    folder: Path | None = None       # the local store's folder (tinker://local/ only)


def check_access(uri: str) -> None:
    """A real-service checkpoint needs a Tinker API key: a missing or malformed one is one line, at once."""
    from harness.tinker_clients import check_key

    try:
        check_key("tinker")
    except HarnessError as err:   # the engine's reason, with the fix that fits an evaluation
        reason = str(err).removeprefix("engine tinker: ").split(";")[0]
        raise HarnessError(f"checkpoint '{uri}': {reason}; set TINKER_API_KEY (keys start with tml-, made at "
                           f"https://tinker-console.thinkingmachines.ai), or give a tinker://local/ checkpoint") from None


def checkpoint_folder(uri: str) -> Path | None:
    """The local store's folder of a `tinker://local/` checkpoint; None for the real service, whose
    key is checked here, before any work."""
    if is_local(uri):
        return local_path(uri)
    check_access(uri)
    return None


def run_folder(uri: str) -> Path | None:
    """The final/ folder of the training run that wrote `uri` (its checkpoint.json names it under
    `tinker.weights`), so an evaluation of the bare URI still has its lineage and decontamination."""
    from harness import checkpoint as ckpt
    from harness.paths import runs_root

    found = [p.parent for p in runs_root().glob(f"**/final/{ckpt.SIDECAR}")
             if ((ckpt.read(p.parent) or {}).get("tinker") or {}).get("weights") == uri]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def sidecar_weights(folder: Path) -> str | None:
    """The `tinker://` sampler weights a stage's final/ folder stands for, when the folder holds no
    weights of its own (a stage trained on the Tinker service); None otherwise."""
    from harness import checkpoint as ckpt
    from harness.models import WEIGHT_FILES

    uri = ((ckpt.read(folder) or {}).get("tinker") or {}).get("weights")
    if not uri or any((Path(folder) / name).is_file() for name in WEIGHT_FILES):
        return None
    return uri


def service_client(uri: str):
    """The client that serves `uri`: the in-process implementation for `tinker://local/`, else the
    real service (which needs an API key: a missing or malformed one is one line, at once)."""
    if is_local(uri):
        from harness.tinker_local import LocalServiceClient

        return LocalServiceClient()
    import tinker

    check_access(uri)
    try:
        return tinker.ServiceClient()
    except tinker.TinkerError as err:
        raise HarnessError(f"checkpoint '{uri}': no usable Tinker API key ({one_line(err)}); set TINKER_API_KEY "
                           f"(it starts with tml-), or evaluate a tinker://local/ checkpoint") from None


def open_checkpoint(uri: str, log: Callable[[str], None] = print, timeout: float = CREATE_TIMEOUT_S
                    ) -> TinkerCheckpoint:
    """A sampler for `uri` and the tokenizer of its base model (tokenized locally: the SDK's own
    `get_tokenizer` downloads from the hub)."""
    from harness.tinker_clients import bounded

    if not is_tinker(uri):
        raise HarnessError(f"checkpoint '{uri}': not a tinker:// path")
    folder = local_path(uri) if is_local(uri) else None
    client = service_client(uri)

    def create():
        made = client.create_sampling_client(model_path=uri)
        return made.result(timeout=timeout) if hasattr(made, "result") else made

    try:
        sampler = bounded(create, f"opening a sampler for '{uri}'", timeout, log=log)
        if folder is not None:
            from harness.tinker_local.store import read_sidecar

            base = read_sidecar(folder)["base_model"]
        else:
            base = bounded(sampler.get_base_model, f"reading the base model of '{uri}'", timeout, log=log)
    except HarnessError:
        raise
    except Exception as err:   # a bad path, a deleted checkpoint, a permission problem: one line
        raise HarnessError(f"checkpoint '{uri}': the service cannot open it ({one_line(err)}); check the path "
                           f"(tinker://<run>/sampler_weights/<name>) and that it has not expired") from None
    tokenizer = base_tokenizer(base, uri)
    log(f"{uri}: sampling from {'the local Tinker implementation' if folder else 'the Tinker service'} "
        f"(base model {base})")
    return TinkerCheckpoint(uri, "local" if folder else "tinker", base, sampler, tokenizer, folder)


def base_tokenizer(base_model: str, uri: str):
    """The base model's tokenizer, from its folder, the embedded model or the hub cache."""
    from transformers import AutoTokenizer

    from harness.models import embedded_tokenizer_dir, model_location

    location = str(embedded_tokenizer_dir(base_model)) if base_model.startswith("embedded:") \
        else model_location(base_model)
    try:
        return AutoTokenizer.from_pretrained(location)
    except Exception as err:
        raise HarnessError(f"checkpoint '{uri}': cannot load the tokenizer of its base model '{base_model}' "
                           f"({one_line(err)}); download it once with network access") from None
