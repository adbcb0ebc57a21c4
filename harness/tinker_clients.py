"""Tinker clients for the training engine, and the guards that keep remote work from hanging.

`engine: tinker` talks to Thinking Machines' service through the `tinker` SDK; `engine: tinker_local`
serves the same client surface in process (`harness.tinker_local`), for offline runs and tests.
Everything the SDK can block on is run through `bounded`: a daemon worker thread joined with a
timeout, so no call (client creation included, which the SDK may hold for minutes against an
unreachable service, and billing or capacity pauses, which it retries without end) can hang a run.
The key is checked before any data work (`check_key`), the model against the served lineup
(`served_models`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError, one_line
from harness.schema import param

ENGINES = ("trl", "tinker", "tinker_local")
KEY_HELP = ("set TINKER_API_KEY (export TINKER_API_KEY=tml-...; keys are made at "
            "https://tinker-console.thinkingmachines.ai), or use `engine: tinker_local` to train offline")


@dataclasses.dataclass(frozen=True)
class TinkerConfig:
    """Settings only the Tinker engines read (`tinker:` in a recipe); stage `args` keep TRL's names."""

    base_url: str | None = param(None, help="service URL (default: TINKER_BASE_URL, then the SDK's)")
    save_every: int = param(20, ge=0, help="save_state every N optimizer steps, so a rerun resumes (0: never)")
    connect_timeout_s: float = param(120.0, gt=0, help="limit on client creation and the model check")
    max_wait_s: float = param(1800.0, gt=0, help="longest wait on one call (billing pause, capacity queue) "
                                                 "before the stage stops cleanly, keeping its last saved state")
    progress_every_s: float = param(30.0, gt=0, help="a progress line this often while a call waits")
    prices: dict[str, Any] | None = param(None, help="{model: {prefill, sample, train}} in $ per million "
                                                     "tokens, over the shipped price table")
    user_metadata: dict[str, str] | None = param(None, help="tags attached to the training run (cost attribution)")
    train_unembed: bool = param(False, help="LoRA on the unembedding too (Tinker's default; PEFT's all-linear, "
                                            "which the TRL engine uses, leaves it out)")


class TinkerTimeout(HarnessError):
    """A Tinker call that did not finish within its limit."""


def bounded(call: Callable[[], Any], what: str, timeout_s: float, *, log=print, progress_every_s: float = 30.0,
            fix: str = "") -> Any:
    """`call()` in a daemon thread, waited for at most `timeout_s` seconds.

    While it waits, a line every `progress_every_s` says what is pending and for how long (the SDK
    pauses silently on billing (HTTP 402) and queues on capacity (408)). On timeout the thread is
    left behind (it is a daemon: it cannot keep the process alive) and `TinkerTimeout` says what
    timed out and how to fix it. Exceptions from `call` are re-raised in the caller's thread.
    """
    box: dict[str, Any] = {}

    def work():
        try:
            box["value"] = call()
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err

    worker = threading.Thread(target=work, name=f"tinker: {what}", daemon=True)
    started = time.monotonic()
    worker.start()
    next_line = progress_every_s
    while True:
        elapsed = time.monotonic() - started
        worker.join(min(max(timeout_s - elapsed, 0.0), max(next_line - elapsed, 0.01)))
        if not worker.is_alive():
            break
        elapsed = time.monotonic() - started
        if elapsed >= timeout_s:
            raise TinkerTimeout(f"tinker: {what} did not finish in {timeout_s:g} s; "
                                + (fix or "check the service status and your network, then rerun"))
        if elapsed >= next_line:
            log(f"tinker: still waiting on {what} after {elapsed:.0f} s (the service may be queueing for "
                f"capacity or paused on billing); giving up at {timeout_s:g} s")
            next_line += progress_every_s
    if "error" in box:
        raise box["error"]
    return box.get("value")


def check_key(engine: str) -> None:
    """A missing or malformed key is one line, at once, before any data or network work."""
    if engine != "tinker":
        return
    key = os.environ.get("TINKER_API_KEY", "").strip()
    if not key:
        if os.environ.get("TINKER_CREDENTIAL_CMD") or (Path.home() / ".tinker" / "credentials.json").is_file():
            return  # the SDK reads these itself; their format is its business
        raise HarnessError(f"engine tinker: no API key; {KEY_HELP}")
    if not key.startswith("tml-"):
        raise HarnessError("engine tinker: TINKER_API_KEY does not look like a Tinker key (they start with "
                           "'tml-'); copy it again from the Tinker console")


def _sdk_service_client(recipe):
    import tinker

    settings = recipe.tinker
    metadata = {"harness_recipe": recipe.name, **dict(settings.user_metadata or {})}
    return tinker.ServiceClient(user_metadata=metadata, base_url=settings.base_url)


def service_client(recipe, *, log=print):
    """The service client the recipe's engine asks for: the SDK's, or the in-process one."""
    check_key(recipe.engine)
    if recipe.engine == "tinker_local":
        from harness.tinker_local import LocalServiceClient

        return LocalServiceClient()
    if recipe.engine != "tinker":
        raise HarnessError(f"engine '{recipe.engine}' has no Tinker client; use tinker or tinker_local")
    return bounded(lambda: _sdk_service_client(recipe), "creating the service client",
                   recipe.tinker.connect_timeout_s, log=log, progress_every_s=recipe.tinker.progress_every_s)


def served_models(client, settings: TinkerConfig, *, log=print) -> list[str]:
    """Model names the service offers (RestClient.get_server_capabilities), within the connect timeout."""

    def ask():
        rest = client.create_rest_client()
        answer = rest.get_server_capabilities()
        answer = answer.result() if hasattr(answer, "result") else answer
        return [m.model_name for m in answer.supported_models if getattr(m, "model_name", None)]

    return bounded(ask, "listing the served models", settings.connect_timeout_s, log=log,
                   progress_every_s=settings.progress_every_s,
                   fix="the service is unreachable or slow; check TINKER_BASE_URL / tinker.base_url and the network")


def check_served(model: str, served: list[str]) -> None:
    """One line naming the served alternatives when the recipe's model is not among them."""
    if model in served:
        return
    from harness.errors import did_you_mean

    raise HarnessError(f"engine tinker: model '{model}' is not served{did_you_mean(model, served)}; set "
                       f"`model:` to one of the served models (all: {', '.join(sorted(served)) or 'none'})")


def preflight(recipe, *, log=print) -> None:
    """The checks a Tinker run does before any data work: the key, then (remote only) that the
    service answers and serves the recipe's model. Each is bounded; none can hang."""
    check_key(recipe.engine)
    if recipe.engine != "tinker":
        return
    client = service_client(recipe, log=log)
    try:
        served = served_models(client, recipe.tinker, log=log)
    except TinkerTimeout:
        raise
    except HarnessError:
        raise
    except Exception as err:  # an SDK error: auth, HTTP status, connection
        raise HarnessError(f"engine tinker: cannot list the served models ({one_line(err)}); check the key "
                           f"and tinker.base_url") from None
    check_served(recipe.model.name_or_path, served)
