"""Pairwise ranker: a ranking of each prompt's candidates from pairwise comparisons.

    scorer: {scorer: pairwise_ranker, ranker: pairrm}                              # PairRM
    scorer: {scorer: pairwise_ranker, ranker: judge, method: tournament,
             judge: {model: sft}}                                                  # an LLM judge

- `pairrm`: PairRM (Jiang et al., 2023, "LLM-Blender: Ensembling Large Language Models with Pairwise
  Ranking and Generative Fusion"), a 0.4B DeBERTa model that reads the instruction and two
  candidates together and is trained to say which is better; it ranks a prompt's candidates by its
  aggregated pairwise scores. It ships in the `llm-blender` package (not a dependency: it pins old
  libraries) with its weights on the hub (`llm-blender/PairRM`). Score = PairRM's score.
- `judge`: an LLM judge (the `judge` scorer's settings, used pairwise, both orders per comparison).
  `round_robin` compares every two candidates (n(n-1)/2 comparisons; score = wins, ties half);
  `tournament` is a single-elimination bracket (n-1 comparisons; score = rounds won), where a tie
  (a position flip or an unreadable verdict) is settled by a seeded coin and counted.

A prompt needs at least two candidates to be ranked: one with fewer keeps `score: None` and is
counted (`fewer_than_two_candidates`), so pair builders drop it with their reason; when no prompt has
two, the step stops with one line.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.data import candidates
from harness.errors import HarnessError
from harness.schema import param
from harness.scorers import SCORERS, Score, Scorer
from harness.scorers.judge import Judge

PAIRRM = "llm-blender/PairRM"


@SCORERS.register()
@dataclasses.dataclass(frozen=True)
class PairwiseRanker(Scorer):
    """Score = PairRM's ranking score, or a judge's round-robin wins / tournament rounds won."""

    name = "pairwise_ranker"
    pairwise = True

    ranker: Literal["pairrm", "judge"] = param("pairrm", help="PairRM (llm-blender), or an LLM judge")
    model: str = param(PAIRRM, help="pairrm: the PairRM checkpoint (hub id or folder)")
    batch_size: int = param(8, ge=1, help="pairrm: candidates lists per batch")
    judge: Judge | None = param(None, help="ranker judge: the judge's settings ({model: sft} or an endpoint)")
    method: Literal["round_robin", "tournament"] = param("round_robin",
                                                         help="ranker judge: every pair, or a knockout bracket")
    seed: int = param(0, help="tournament: seed of the coin that settles ties")

    def __post_init__(self) -> None:
        from harness.errors import FieldError

        if self.ranker == "judge" and self.judge is None:
            raise FieldError("judge", "ranker: judge needs the judge's settings, e.g. judge: {model: base}")
        if self.ranker == "judge" and self.judge.mode != "pairwise":
            raise FieldError(("judge", "mode"), "a ranking judge compares candidates: use mode: pairwise")

    def model_refs(self):
        return self.judge.model_refs() if self.ranker == "judge" else ()

    def identity(self):
        return self.judge.identity() if self.ranker == "judge" else {}

    def preflight(self):
        if self.ranker == "judge":
            self.judge.preflight()
            return
        try:
            import llm_blender  # noqa: F401
        except ImportError:
            raise HarnessError("scorer 'pairwise_ranker': ranker pairrm needs the llm-blender package, which is not "
                               "installed; pip install llm-blender (or use ranker: judge)") from None

    def score(self, examples, ctx):
        ranked = [i for i, e in enumerate(examples) if len(candidates.of(e)) >= 2]
        if not ranked:
            raise HarnessError(f"scorer 'pairwise_ranker': none of the {len(examples)} prompts has two candidates "
                               f"to rank; sample at least two (generate n >= 2)")
        ctx.count("fewer_than_two_candidates", len(examples) - len(ranked))
        subset = [examples[i] for i in ranked]
        if self.ranker == "pairrm":
            found = self._pairrm(subset, ctx)
        elif self.method == "round_robin":
            found = self.judge.score(subset, ctx)
        else:
            found = self._tournament(subset, ctx)
        out = [[Score(None)] * len(candidates.of(e)) for e in examples]
        for i, scores in zip(ranked, found):
            out[i] = scores
        return out

    def _pairrm(self, examples, ctx):
        self.preflight()
        import llm_blender

        from harness.evaluate.auxiliary import conversation_text

        blender = llm_blender.Blender()
        blender.loadranker(self.model)
        scores = blender.rank([conversation_text(e["prompt"]) for e in examples],
                              [[c["text"] for c in candidates.of(e)] for e in examples],
                              return_scores=True, batch_size=self.batch_size)
        ctx.count("pairrm_rankings", len(examples))
        return [[Score(float(v)) for v in row] for row in scores]

    def _tournament(self, examples, ctx):
        from harness.evaluate.auxiliary import conversation_text
        from harness.fingerprint import fingerprint
        from harness.judge_client import VerdictCache
        from harness.verdicts import FIRST, SECOND

        judge, cache = self.judge.judge(ctx), VerdictCache()
        template = self.judge.template_text()
        texts = [[c["text"] for c in candidates.of(e)] for e in examples]
        alive = [list(range(len(t))) for t in texts]
        rounds = [[0] * len(t) for t in texts]
        try:
            while any(len(a) > 1 for a in alive):
                matches, pairs = [], []
                for e, survivors in enumerate(alive):
                    for k in range(0, len(survivors) - 1, 2):
                        x, y = survivors[k], survivors[k + 1]
                        matches.append((e, x, y))
                        pairs.append((conversation_text(examples[e]["prompt"]), texts[e][x], texts[e][y]))
                outcomes = self.judge.compare(pairs, template, judge, cache, ctx)
                winners: dict[int, list[int]] = {e: [] for e in range(len(examples))}
                for (e, x, y), outcome in zip(matches, outcomes):
                    if outcome not in (FIRST, SECOND):  # a tie: a seeded coin, never the bracket position
                        ctx.count("tournament_coin_flips")
                        coin = fingerprint(self.seed, examples[e]["id"], texts[e][x], texts[e][y])
                        outcome = FIRST if int(coin, 16) % 2 == 0 else SECOND
                    winner = x if outcome == FIRST else y
                    rounds[e][winner] += 1
                    winners[e].append(winner)
                for e, survivors in enumerate(alive):
                    if len(survivors) > 1:  # an odd one out gets a bye into the next round
                        alive[e] = winners[e] + ([survivors[-1]] if len(survivors) % 2 else [])
        finally:
            cache.close()
        return [[Score(float(r)) for r in row] for row in rounds]
