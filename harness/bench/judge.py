"""`make bench` section: the LLM judge against an OpenAI-compatible endpoint (`--section judge`).

The endpoint is the tests' scripted loopback server (`tests/openai_stub_server.py`, so this section
needs a checkout) with an artificial latency per request standing for a network and a remote model.
Figures, each against a baseline in the same run:

- verdicts/s of the `judge` scorer (pairwise, both orders) with `concurrency: 8` against
  `concurrency: 1`, each on an empty verdict cache; the ideal ratio is 8 (bounded by the latency);
- a rerun on the filled cache: calls made (counted at the server) and seconds, against the first run.

One unreported warm-up call pays the client's one-time import and set-up costs first; then
`ROUNDS` rounds alternate the two concurrencies and each figure is the fastest of its rounds, since
on a shared machine the noise only ever adds time.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

LATENCY_S = 0.05
PROMPTS = 12
ROUNDS = 2
CANDIDATES = 3     # 3 comparisons x 2 orders = 6 verdicts per prompt


def _stub_server():
    path = Path(__file__).resolve().parents[2] / "tests" / "openai_stub_server.py"
    if not path.is_file():
        raise SystemExit(f"bench judge: needs the repository checkout ({path} is missing)")
    spec = importlib.util.spec_from_file_location("openai_stub_server", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.StubServer


def _examples():
    from harness.data import candidates
    from harness.data import example as ex

    out = []
    for p in range(PROMPTS):
        prompt = ex.prompt([ex.user(f"Use [{p}, 3] to make {p + 3}.")], "bench", {"numbers": [p, 3], "target": p + 3})
        texts = [f"<answer>{p} + 3</answer>", f"<answer>{p} * 3</answer> and some more words", f"<answer>{p}</answer>"]
        out.append(candidates.with_candidates(prompt, [candidates.candidate(t) for t in texts[:CANDIDATES]]))
    return out


def _judge_once(server, concurrency: int, examples=None) -> tuple[float, dict]:
    from harness.data.step import StepContext
    from harness.schema import Where, build
    from harness.scorers import Scorer

    scorer = build(Scorer, {"scorer": "judge", "model": "stub", "base_url": server.base_url,
                            "api_key_env": "BENCH_JUDGE_KEY", "concurrency": concurrency}, Where("<bench>"))
    ctx = StepContext(label="bench:judge", seed=0)
    start = time.perf_counter()
    scorer.score(examples or _examples(), ctx)
    return time.perf_counter() - start, dict(ctx.counters)


def run(args=None) -> None:
    StubServer = _stub_server()
    os.environ.setdefault("BENCH_JUDGE_KEY", "bench")
    saved = os.environ.get("HARNESS_CACHE")
    best: dict[str, tuple[int, int, float]] = {}

    def keep(name, verdicts, calls, seconds):
        if name not in best or seconds < best[name][2]:
            best[name] = (verdicts, calls, seconds)

    try:
        with StubServer(answer=lambda prompt: "[[A]]" if "+" in prompt.split("[Response B]")[0] else "[[B]]",
                        delay=LATENCY_S) as server:
            with tempfile.TemporaryDirectory(prefix="bench-judge-") as cache:
                os.environ["HARNESS_CACHE"] = cache
                _judge_once(server, 1, _examples()[:1])       # warm-up: imports, first connection
            for _ in range(ROUNDS):
                for concurrency in (1, 8):
                    with tempfile.TemporaryDirectory(prefix="bench-judge-") as cache:
                        os.environ["HARNESS_CACHE"] = cache      # an empty verdict cache for each figure
                        before = server.chat_requests
                        seconds, counts = _judge_once(server, concurrency)
                        keep(f"concurrency {concurrency}, empty cache", counts["judge_verdicts"],
                             server.chat_requests - before, seconds)
                        if concurrency == 8:
                            before = server.chat_requests
                            seconds, counts = _judge_once(server, concurrency)
                            keep("concurrency 8, rerun on the cache", counts["judge_verdicts"],
                                 server.chat_requests - before, seconds)
    finally:
        if saved is None:
            os.environ.pop("HARNESS_CACHE", None)
        else:
            os.environ["HARNESS_CACHE"] = saved
    rows = [(name, *figures) for name, figures in best.items()]
    print(f"\n## judge: {PROMPTS} prompts x {CANDIDATES} candidates, pairwise in both orders, "
          f"{LATENCY_S * 1000:.0f} ms per request (loopback server), fastest of {ROUNDS} rounds\n")
    print("| run | verdicts | calls made | seconds | verdicts/s |")
    print("|---|---|---|---|---|")
    for name, verdicts, calls, seconds in rows:
        print(f"| {name} | {verdicts} | {calls} | {seconds:.2f} | {verdicts / seconds:.1f} |")
    serial, parallel, cached = rows[0][3], rows[1][3], rows[2][3]
    print(f"\nconcurrency 8 vs 1: {serial / parallel:.2f}x verdicts/s (ideal 8x); rerun on the cache: "
          f"{rows[2][2]} calls, {cached:.3f} s ({parallel / max(cached, 1e-9):.0f}x faster than the first run)")


if __name__ == "__main__":
    run()
