"""Candidates: several responses to one prompt, on their way to becoming preference pairs.

Building preference data (on-policy DPO, best-of-n, hard negatives) goes prompt -> candidates ->
scores -> pairs, each an ordinary step:

    - {step: generate, model: sft, n: 4, temperature: 1.0}      # adds `candidates`
    - {step: score, scorer: {scorer: verifier, task: countdown}} # fills each candidate's score
    - {step: build_pairs, rule: best_vs_worst}                  # prompt examples -> preference pairs

A prompt example carries its candidates in `example["candidates"]`, a list of dicts:

- `text`: the response (assistant message content);
- `tokens`: generated tokens (None for candidates that were not sampled, e.g. programmatic ones);
- `logprob`: the sum of the sampled tokens' log-probabilities under the generating model, or None;
- `score`: the scorer's number (higher is better; comparable only within one prompt), or None;
- `correct`: a verifier's verdict (True/False), None when the scorer has no notion of correctness;
- `origin`: where it came from ("generated", "reference", "near_miss", ...).

Task metadata (`numbers`, `target`, `answer`) stays in `metadata`, so scorers and the pairs built
from candidates keep what verifiers and RLOO rewards need.
"""

from __future__ import annotations

from harness.data import example as ex

FIELD = "candidates"


def candidate(text: str, *, tokens: int | None = None, logprob: float | None = None, score: float | None = None,
              correct: bool | None = None, origin: str = "generated") -> dict:
    return {"text": text, "tokens": tokens, "logprob": logprob, "score": score, "correct": correct,
            "origin": origin}


def of(example: dict) -> list[dict]:
    """An example's candidates (an empty list when it has none)."""
    return list(example.get(FIELD) or [])


def with_candidates(example: dict, candidates: list[dict]) -> dict:
    """A copy of a prompt example with these candidates (the id stays: it names the prompt)."""
    return {**example, FIELD: candidates}


def to_pair(example: dict, chosen: dict, rejected: dict, **metadata) -> dict:
    """A preference example from two candidates of one prompt example, scores and task metadata kept."""
    pair = ex.preference(example["prompt"], [ex.assistant(chosen["text"])], [ex.assistant(rejected["text"])],
                         example["source"], score_chosen=chosen.get("score"), score_rejected=rejected.get("score"),
                         metadata={**example.get("metadata", {}), **metadata})
    return pair
