"""Futures for the local Tinker implementation.

Every call runs on one worker thread shared by all local clients, in submission order, and
returns at once with the SDK's own `AwaitableConcurrentFuture`: `.result(timeout=...)`,
`await`, `.future()` behave as they do against the service. One worker gives the service's
ordering guarantee (requests run in the order they were submitted) for free, and keeps two
clients from touching one model at the same time.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

_worker: ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()
_worker_thread: threading.Thread | None = None


def _executor() -> ThreadPoolExecutor:
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tinker-local")
        return _worker


def on_worker() -> bool:
    """True inside a submitted call (where waiting on another submitted call would deadlock)."""
    return threading.current_thread().name.startswith("tinker-local")


def submit(fn, *args, **kwargs):
    """Run `fn` on the worker after everything submitted before it; a future of its result.
    Called from the worker itself (one local call made inside another), it runs at once."""
    from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture

    if on_worker():
        return done(fn(*args, **kwargs))
    return AwaitableConcurrentFuture(_executor().submit(fn, *args, **kwargs))


def done(value):
    """An already finished future holding `value`."""
    from tinker.lib.public_interfaces.api_future import AwaitableConcurrentFuture

    future: Future = Future()
    future.set_result(value)
    return AwaitableConcurrentFuture(future)
