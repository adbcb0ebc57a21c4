"""Hard negatives: for each prompt, the best candidate against a deliberately chosen worse one.

    - {step: score, scorer: {scorer: verifier, task: countdown}}
    - {step: hard_negatives, strategy: most_likely_wrong, model: sft}

The chosen is the highest-scoring candidate; when candidates carry verdicts (`correct`) and
`require_correct` is on (the default), the highest-scoring correct one, and negatives are drawn
from the wrong ones only. A negative scores below the chosen by more than 0 and by at least
`margin`. Strategies:

- `near_tie`: the highest-scoring negative, the smallest score gap the margin allows;
- `most_likely_wrong`: the negative the model finds most likely (summed log-probability of the
  response given the chat-templated prompt, or the mean per token with `per_token`), under `model`
  (an earlier stage, `base`, a path or hub id), else under the candidates' own `logprob` from the
  model that sampled them: the confident mistakes that on-policy preference training targets
  (Tajwar et al., 2024, on negative gradients and on-policy samples);
- `nearest`: the negative whose sentence embedding is closest (cosine) to the chosen's, by
  default the embedded all-MiniLM-L6-v2 (`embedding_model`), as in hard-negative mining for
  contrastive learning (Robinson et al., 2021);
- `near_miss` (Countdown): a new candidate one edit away from the chosen correct answer (one
  operator or number of its `<answer>` changed, verified wrong), see `harness.data.near_miss`;
- `worst` and `random`: the lowest-scoring and a seeded random negative, the easy counterparts
  for a controlled comparison.

Controlled comparisons. Recipes that differ only in `strategy` should train on the same prompts
and the same number of pairs. `comparable_with: [random]` keeps a prompt only when each listed
strategy would also find a negative for it, so a `near_miss` recipe with `comparable_with:
[random]` and a `random` recipe with `comparable_with: [near_miss]` keep the same prompts (their
drop tables match); `n:` then keeps the same n of them in both, chosen by hash(seed, prompt id).
(A `sample` step after this one draws by pair id, which differs between strategies.)

Drops: `unscored`, `fewer_than_two_distinct_candidates`, `tie`, `no_correct_candidate`,
`no_qualifying_negative:<strategy>`, `not_sampled`. Each pair's `metadata.pairing` records the
strategy (`rule`), the score margin, the chosen-rejected cosine similarity (`nearest`, or any strategy
with `similarity: true`) and the rejected's log-probability (`most_likely_wrong`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from harness.data import candidates as cands
from harness.data import embeddings
from harness.data.step import STEPS, Step
from harness.data.steps.build_pairs import check_candidates, count_candidates, distinct, make_pair, pick, worse
from harness.data.steps.sample import rank
from harness.errors import FieldError, HarnessError
from harness.schema import param

Strategy = Literal["near_tie", "most_likely_wrong", "nearest", "near_miss", "worst", "random"]
COUNTDOWN = ("numbers", "target")


@dataclasses.dataclass
class _Plan:
    """One prompt on its way to a pair: its chosen and the candidates that may be its negative."""

    example: dict
    chosen: dict
    pool: list[dict]
    n_distinct: int
    near_misses: list = dataclasses.field(default_factory=list)  # (text, edit), near_miss only


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class HardNegatives(Step):
    """One pair per prompt: the best candidate against a negative chosen by `strategy`."""

    name = "hard_negatives"
    version = 2  # 2: near misses carry the Countdown verifier score

    strategy: Strategy = param(help="near_tie, most_likely_wrong, nearest, near_miss, worst or random")
    margin: float = param(0.0, ge=0.0, help="least score gap between chosen and rejected (above 0 always)")
    require_correct: bool = param(True, help="with verdicts: the chosen must be correct, the rejected wrong")
    model: str | None = param(None, help="most_likely_wrong: the scoring model (an earlier stage, base, a path "
                                         "or hub id); default: the candidates' own logprob")
    per_token: bool = param(False, help="most_likely_wrong: rank by mean log-prob per token, not the sum")
    embedding_model: str = param(embeddings.EMBEDDED, help="nearest: a sentence-transformers model id or folder")
    similarity: bool = param(False, help="record the chosen-rejected cosine similarity for any strategy")
    batch_size: int = param(8, ge=1, help="sequences per forward pass (log-probs, embeddings)")
    comparable_with: tuple[Strategy, ...] = param(
        [], help="keep only prompts for which these strategies also find a negative (same prompts across recipes)")
    n: int | None = param(None, ge=1, help="keep at most n prompts, by hash(seed, prompt id)")
    seed: int | None = param(None, help="tie-breaks, random draws and `n` (default: the recipe seed)")

    def __post_init__(self) -> None:
        if self.model is not None and self.strategy != "most_likely_wrong":
            raise FieldError("model", f"only strategy most_likely_wrong reads a model (this is {self.strategy}); "
                                      f"remove `model` or set strategy: most_likely_wrong")
        if self.per_token and self.strategy != "most_likely_wrong":
            raise FieldError("per_token", "only strategy most_likely_wrong ranks by log-probability")
        if self.embedding_model != embeddings.EMBEDDED and not (self.strategy == "nearest" or self.similarity):
            raise FieldError("embedding_model", "only strategy nearest (or similarity: true) embeds responses")

    @property
    def requires(self) -> tuple[str, ...]:  # near_miss needs only a correct candidate, no scores
        return ("candidates",) if not self._needs_scores() else ("scores",)

    def required_metadata(self) -> tuple[str, ...]:
        return COUNTDOWN if "near_miss" in self._strategies() else ()

    def model_refs(self) -> tuple[str, ...]:
        return (self.model,) if self.model is not None else ()

    def identity(self) -> dict:
        if self.strategy == "nearest" or self.similarity:
            return {"embedding_model": embeddings.identity(self.embedding_model)}
        return {}

    def _strategies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.strategy, *self.comparable_with)))

    def _needs_scores(self) -> bool:
        return any(s != "near_miss" for s in self._strategies())

    # ------------------------------------------------------------------ the step

    def apply(self, examples, ctx):
        examples = list(examples)
        check_candidates(examples, self.name, need_scores=self._needs_scores())
        if "near_miss" in self._strategies():
            self._check_countdown(examples)
        seed = ctx.seed if self.seed is None else self.seed
        plans: dict[int, _Plan] = {}
        for i, example in enumerate(examples):
            plan, reason = self._plan(example, seed, ctx)
            if reason:
                ctx.drop(example, reason)
            else:
                plans[i] = plan
        if self.n is not None and len(plans) > self.n:
            keep = sorted(plans, key=lambda i: rank(seed, examples[i]["id"], "hard_negatives:n"))[:self.n]
            for i in sorted(set(plans) - set(keep)):
                ctx.drop(plans.pop(i).example, "not_sampled")
        pairs = self._pairs([plans[i] for i in sorted(plans)], seed, ctx)
        for plan, (rejected, extra) in zip([plans[i] for i in sorted(plans)], pairs):
            ctx.count("pairs")
            ctx.count(f"rejected_origin:{rejected.get('origin')}")
            yield make_pair(plan.example, plan.chosen, rejected, self.name, self.strategy, plan.n_distinct, **extra)

    def _check_countdown(self, examples: list[dict]) -> None:
        for example in examples:
            missing = [k for k in COUNTDOWN if k not in example.get("metadata", {})]
            if missing:
                raise HarnessError(f"step '{self.name}': strategy near_miss edits Countdown answers and needs "
                                   f"metadata {' and '.join(missing)}, which example {example['id']} (source "
                                   f"'{example['source']}') lacks; use another strategy for non-Countdown data")

    def _plan(self, example: dict, seed: int, ctx) -> tuple[_Plan | None, str | None]:
        """The chosen and the negative pool of one prompt, or the reason it gives no pair."""
        found, duplicates = distinct(cands.of(example))
        scored = [c for c in found if c.get("score") is not None]
        count_candidates(ctx, found, duplicates, len(found) - len(scored))
        if self._needs_scores():
            if found and not scored:
                return None, "unscored"
            if len(scored) < 2:
                return None, "fewer_than_two_distinct_candidates"
            if len({c["score"] for c in scored}) == 1:
                return None, "tie"
        verdicts = self.require_correct and any(c.get("correct") is not None for c in found)
        chosen = self._chosen(example, found, scored, verdicts, seed)
        if chosen is None:
            return None, "no_correct_candidate"
        plan = _Plan(example, chosen, [], len(found))
        if chosen.get("score") is not None:
            plan.pool = [c for c in scored if c is not chosen and worse(chosen, c, self.margin)
                         and (not verdicts or c.get("correct") is False)]
        for strategy in self._strategies():
            if strategy == "near_miss":
                meta = example["metadata"]
                from harness.data.near_miss import near_misses

                plan.near_misses = near_misses(chosen["text"], list(meta["numbers"]), int(meta["target"]))
                if not plan.near_misses:
                    return None, "no_qualifying_negative:near_miss"
            elif not plan.pool:
                return None, f"no_qualifying_negative:{strategy}"
        return plan, None

    def _chosen(self, example, found, scored, verdicts, seed) -> dict | None:
        """The best candidate: highest score (correct when verdicts count; for near_miss, one the
        Countdown verifier accepts, since its negatives are edits of a correct answer)."""
        pool = [c for c in found if c.get("correct") is True] if verdicts else list(scored or found)
        if "near_miss" in self._strategies():
            from harness.rewards.countdown import verify

            meta = example["metadata"]
            pool = [c for c in (pool if verdicts else found)
                    if verify(c["text"], list(meta["numbers"]), int(meta["target"])).correct]
            if self._needs_scores():
                pool = [c for c in pool if c.get("score") is not None]
        if not pool:
            return None
        best = max((c["score"] for c in pool if c.get("score") is not None), default=None)
        top = [c for c in pool if c.get("score") == best] if best is not None else pool
        return pick(top, seed, example["id"], "hard_negatives:chosen")

    # ------------------------------------------------------------------ negatives, by strategy

    def _pairs(self, plans: list[_Plan], seed: int, ctx) -> list[tuple[dict, dict]]:
        """(rejected candidate, extra pairing metadata) per plan."""
        if not plans:
            return []
        chooser = {"near_tie": self._near_tie, "worst": self._worst, "random": self._random,
                   "most_likely_wrong": self._most_likely_wrong, "nearest": self._nearest,
                   "near_miss": self._near_miss}[self.strategy]
        out = chooser(plans, seed, ctx)
        if self.similarity and self.strategy != "nearest":
            sims = self._similarities([(p.chosen["text"], r["text"]) for p, (r, _) in zip(plans, out)])
            out = [(r, {**extra, "similarity": s}) for (r, extra), s in zip(out, sims)]
        return out

    def _near_tie(self, plans, seed, ctx):
        out = []
        for p in plans:
            top = max(c["score"] for c in p.pool)
            out.append((pick([c for c in p.pool if c["score"] == top], seed, p.example["id"], "hard_negatives"), {}))
        return out

    def _worst(self, plans, seed, ctx):
        out = []
        for p in plans:
            low = min(c["score"] for c in p.pool)
            out.append((pick([c for c in p.pool if c["score"] == low], seed, p.example["id"], "hard_negatives"), {}))
        return out

    def _random(self, plans, seed, ctx):
        return [(pick(p.pool, seed, p.example["id"], "hard_negatives:random"), {}) for p in plans]

    def _near_miss(self, plans, seed, ctx):
        """A near miss is scored by the Countdown verifier's default reward (0.1: well-formed, wrong),
        so its margin against a verifier-scored chosen answer is reported like any other pair's."""
        from harness.rewards.countdown import score

        out = []
        for p in plans:
            by_text = dict(p.near_misses)
            text = pick([{"text": t} for t in by_text], seed, p.example["id"], "hard_negatives:near_miss")["text"]
            ctx.count(f"near_miss_edit:{by_text[text].split(':')[0]}")
            meta = p.example["metadata"]
            value = score(text, list(meta["numbers"]), int(meta["target"]))
            out.append((cands.candidate(text, score=value, correct=False, origin="near_miss"),
                        {"near_miss_edit": by_text[text]}))
        return out

    def _most_likely_wrong(self, plans, seed, ctx):
        flat = [(p, c) for p in plans for c in p.pool]
        if self.model is not None:
            if ctx.models is None:
                raise HarnessError(f"step '{self.name}': no model loader to load '{self.model}'; run this step "
                                   f"through `harness data` or `harness run`")
            from harness.data.logprobs import response_logprobs

            model, tokenizer = ctx.models.load(self.model)
            scored = response_logprobs(model, tokenizer, [p.example["prompt"] for p, _ in flat],
                                       [c["text"] for _, c in flat], batch_size=self.batch_size)
            values = [s.per_token if self.per_token else s.total for s in scored]
            ctx.count("logprob_tokens", sum(s.tokens for s in scored))
        else:
            values = [self._own_logprob(p, c) for p, c in flat]
        by_plan: dict[int, list[tuple[float, dict]]] = {}
        for (p, c), v in zip(flat, values):
            by_plan.setdefault(id(p), []).append((v, c))
        out = []
        for p in plans:
            top = max(v for v, _ in by_plan[id(p)])
            rejected = pick([c for v, c in by_plan[id(p)] if v == top], seed, p.example["id"], "hard_negatives")
            out.append((rejected, {"rejected_logprob": top, "logprob_model": self.model or "sampler",
                                   "per_token": self.per_token}))
        return out

    def _own_logprob(self, plan: _Plan, c: dict) -> float:
        if c.get("logprob") is None:
            raise HarnessError(f"step '{self.name}': strategy most_likely_wrong without `model` ranks by the "
                               f"candidates' own logprob, but a candidate of example {plan.example['id']} (origin "
                               f"'{c.get('origin')}') has none; set `model:` (base, a stage, a path) to score them")
        if self.per_token:
            if not c.get("tokens"):
                raise HarnessError(f"step '{self.name}': per_token needs each candidate's token count, but a "
                                   f"candidate of example {plan.example['id']} has none; set `model:` to rescore")
            return c["logprob"] / c["tokens"]
        return float(c["logprob"])

    def _nearest(self, plans, seed, ctx):
        texts = list(dict.fromkeys([p.chosen["text"] for p in plans] + [c["text"] for p in plans for c in p.pool]))
        vectors = embeddings.embed(texts, self.embedding_model, self.batch_size)
        row = {t: i for i, t in enumerate(texts)}
        out = []
        for p in plans:
            sims = [(float(vectors[row[p.chosen["text"]]] @ vectors[row[c["text"]]]), c) for c in p.pool]
            top = max(s for s, _ in sims)
            rejected = pick([c for s, c in sims if s == top], seed, p.example["id"], "hard_negatives")
            out.append((rejected, {"similarity": round(top, 6)}))
        return out

    def _similarities(self, pairs: list[tuple[str, str]]) -> list[float]:
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        vectors = embeddings.embed(texts, self.embedding_model, self.batch_size)
        row = {t: i for i, t in enumerate(texts)}
        return [round(float(vectors[row[a]] @ vectors[row[b]]), 6) for a, b in pairs]
