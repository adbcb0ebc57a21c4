"""LLM-judge scorer: a language model labels the candidates, by rubric rating or by pairwise comparison.

    - step: score
      scorer: {scorer: judge, model: sft, mode: pairwise}                      # a local model
      scorer: {scorer: judge, model: gpt-4o-mini, base_url: https://api.openai.com/v1,
               api_key_env: OPENAI_API_KEY, mode: pointwise}                   # an endpoint

The judge is either a model the data steps load by name (`base`, an earlier stage, a folder or a
hub id), as in Self-Rewarding Language Models (Yuan et al., 2024), where the policy judges its own
samples, or an OpenAI-compatible endpoint (`base_url`; the key is read from the environment
variable named by `api_key_env`, never written in the recipe).

Modes (prompt templates in `judge_templates/`, or any file; their text joins the cache key):

- `pointwise`: each candidate is rated alone on a 1..`max_rating` rubric (MT-Bench single-answer
  grading, Zheng et al., 2023); score = the rating.
- `pairwise`: every two candidates of a prompt are compared, in both orders, because judges favour
  the answer shown first (Zheng et al., 2023). A verdict that flips with the order is a tie and is
  counted as `position_flip`. Score = round-robin wins over the comparisons that could be read,
  ties counting half, scaled to the number of opponents (so with every verdict readable it is
  the win count).

With `verdict: logprob` (a local judge, pairwise), the judge writes nothing: each order gives the
margin log p("A") - log p("B") of its next token, and the pair goes to the answer the two orders
favour on average (balanced position calibration, Wang et al., 2023). A comparison whose two
margins pick the same position still counts as a `position_flip` (the judge's bias is reported),
and as `judge_calibrated` when the averaged margin decides it rather than leaving a tie.

A verdict with no readable answer is counted (`judge_unparseable`) and never scored: a candidate
none of whose verdicts can be read keeps `score: None`, which pair builders leave out. Every verdict
is cached on disk (`harness.judge_client.VerdictCache`), so a rerun asks nothing. With
`verifier_agreement: countdown` the step also reports how often the judge's order agrees with the
Countdown verifier's on pairs where exactly one candidate is correct.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path
from typing import Literal

from harness.data import candidates
from harness.evaluate.auxiliary import conversation_text
from harness.errors import FieldError
from harness.schema import param
from harness.scorers import SCORERS, Score, Scorer

TEMPLATES = Path(__file__).with_name("judge_templates")
PLACEHOLDERS = {"pointwise": ("instruction", "response"), "pairwise": ("instruction", "a", "b")}
_FIELD = re.compile(r"\{(instruction|response|a|b|max_rating)\}")


def template_path(name: str) -> Path:
    """A shipped template by name (`pairwise_v1`), else a file path."""
    if "/" not in name and "\\" not in name and not name.endswith(".txt"):
        return TEMPLATES / f"{name}.txt"
    return Path(name).expanduser()


def render(template: str, **values: str) -> str:
    """The template with its `{placeholders}` filled in one pass (braces inside the values are kept)."""
    return _FIELD.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


@SCORERS.register()
@dataclasses.dataclass(frozen=True)
class Judge(Scorer):
    """Score = a rubric rating (pointwise) or round-robin wins judged in both orders (pairwise)."""

    name = "judge"

    model: str = param(help="a local judge (base, an earlier stage, a folder, a hub id), or the endpoint's model "
                            "name when base_url is set")
    mode: Literal["pointwise", "pairwise"] = param("pairwise", help="rate each candidate, or compare every two")
    base_url: str | None = param(None, help="an OpenAI-compatible endpoint (e.g. http://localhost:8000/v1)")
    api_key_env: str = param("OPENAI_API_KEY", help="NAME of the environment variable holding the endpoint's key")
    template: str | None = param(None, help="prompt template: a shipped name (pairwise_v1, pointwise_v1) or a file; "
                                            "default <mode>_v1")
    max_rating: int = param(10, ge=2, help="pointwise: the top of the 1..max_rating scale")
    max_new_tokens: int = param(64, ge=1, help="verdict length budget")
    temperature: float = param(0.0, ge=0.0, help="endpoint sampling temperature (a local judge is greedy)")
    concurrency: int = param(8, ge=1, le=256, help="endpoint calls in flight at once")
    timeout: float = param(60.0, gt=0.0, help="seconds per endpoint call before it is retried")
    max_retries: int = param(2, ge=0, le=10, help="retries per endpoint call (with back-off) before the step fails")
    batch_size: int = param(16, ge=1, help="local judge: prompts per generation batch")
    answer_prefix: str = param("", help="local judge: text its answer starts with (e.g. '[['), so a small model "
                                        "completes a verdict in the template's format instead of echoing the prompt")
    verdict: Literal["text", "logprob"] = param(
        "text", help="text: read the verdict the judge writes; logprob (local judge, pairwise): compare its "
                     "probabilities of 'A' and 'B' after answer_prefix, averaged over both orders")
    verifier_agreement: Literal["countdown"] | None = param(
        None, help="also report agreement with this verifier (needs its metadata)")

    def __post_init__(self) -> None:
        if self.base_url is not None and not re.match(r"^https?://", self.base_url):
            raise FieldError("base_url", f"expected an http(s) URL, got {self.base_url!r}")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", self.api_key_env):
            raise FieldError("api_key_env", "give the NAME of the environment variable that holds the key "
                                            "(e.g. OPENAI_API_KEY), not the key itself")
        if self.base_url is not None and self.answer_prefix:
            raise FieldError("answer_prefix", "only a local judge's answer can be prefilled; remove answer_prefix "
                                              "or judge with a local model")
        if self.verdict == "logprob" and (self.base_url is not None or self.mode != "pairwise"):
            raise FieldError("verdict", "logprob verdicts need a local judge in pairwise mode (an endpoint's "
                                        "probabilities are not read); use verdict: text")
        self.template_text()  # a missing file or placeholder fails at validation

    @property
    def pairwise(self) -> bool:  # type: ignore[override]
        return self.mode == "pairwise"

    def template_file(self) -> Path:
        return template_path(self.template or f"{self.mode}_v1")

    def template_text(self) -> str:
        path = self.template_file()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            shipped = ", ".join(sorted(p.stem for p in TEMPLATES.glob("*.txt")))
            raise FieldError("template", f"template file {path} not found; give a shipped template ({shipped}) "
                                         f"or an existing file") from None
        for name in PLACEHOLDERS[self.mode]:
            if "{" + name + "}" not in text:
                needed = ", ".join("{" + n + "}" for n in PLACEHOLDERS[self.mode])
                raise FieldError("template", f"template {path} lacks the placeholder {{{name}}} (a {self.mode} "
                                             f"template needs {needed})")
        return text

    def model_refs(self):
        return () if self.base_url else (self.model,)

    def required_fields(self):
        return ("numbers", "target") if self.verifier_agreement == "countdown" else ()

    def identity(self) -> dict:
        return {"template": self.template_text()}

    def judge(self, ctx=None):
        from harness.judge_client import EndpointJudge, LocalJudge

        if self.base_url:
            return EndpointJudge(self.base_url, self.model, self.api_key_env, self.max_new_tokens, self.temperature,
                                 self.concurrency, self.timeout, self.max_retries)
        return LocalJudge(self.model, ctx.models, self.max_new_tokens, self.batch_size, self.answer_prefix,
                          logprob=self.verdict == "logprob")

    def preflight(self) -> None:
        if self.base_url:
            self.judge().preflight()

    def score(self, examples, ctx):
        from harness.judge_client import VerdictCache

        template = self.template_text()
        judge, cache = self.judge(ctx), VerdictCache()
        try:
            if self.mode == "pointwise":
                out = self._pointwise(examples, template, judge, cache, ctx)
            else:
                out = self._pairwise(examples, template, judge, cache, ctx)
        finally:
            cache.close()
        if self.verifier_agreement:
            _agreement(examples, out, ctx)
        return out

    def _pointwise(self, examples, template, judge, cache, ctx):
        from harness.judge_client import ask
        from harness.verdicts import parse_rating

        prompts = [render(template, instruction=conversation_text(e["prompt"]), response=c["text"],
                          max_rating=str(self.max_rating)) for e in examples for c in candidates.of(e)]
        texts = iter(ask(judge, template, prompts, cache, ctx.count))
        out = []
        for example in examples:
            scores = []
            for _ in candidates.of(example):
                rating = parse_rating(next(texts), 1, self.max_rating)
                ctx.count("judge_unparseable", rating is None)
                scores.append(Score(rating))
            out.append(scores)
        return out

    def compare(self, pairs: list[tuple[str, str, str]], template, judge, cache, ctx) -> list[str]:
        """Per (instruction, x, y): FIRST (x wins in both orders), SECOND, FLIP (a tie) or UNPARSEABLE.
        Two identical answers are a tie without asking. Counts `judge_pairs`, `judge_consistent`,
        `position_flip`, `judge_identical_pairs`, `judge_unparseable` (verdicts),
        `judge_unparseable_pairs` and, for logprob verdicts, `judge_calibrated`."""
        from harness.judge_client import ask
        from harness.verdicts import FIRST, FLIP, SECOND, UNPARSEABLE, both_orders, parse_margin, parse_preference

        asked = [k for k, (_, x, y) in enumerate(pairs) if x != y]
        prompts = []
        for k in asked:
            instruction, x, y = pairs[k]
            prompts += [render(template, instruction=instruction, a=x, b=y),
                        render(template, instruction=instruction, a=y, b=x)]
        texts = ask(judge, template, prompts, cache, ctx.count) if prompts else []
        out = [FLIP] * len(pairs)
        ctx.count("judge_pairs", len(pairs))
        ctx.count("judge_identical_pairs", len(pairs) - len(asked))
        logprob = self.verdict == "logprob"
        for n, k in enumerate(asked):
            if logprob:  # margins for "A": x shown first, then y shown first
                margins = parse_margin(texts[2 * n]), parse_margin(texts[2 * n + 1])
                first, second = (None if m is None else "A" if m > 0 else "B" for m in margins)
            else:
                first, second = parse_preference(texts[2 * n]), parse_preference(texts[2 * n + 1])
            ctx.count("judge_unparseable", (first is None) + (second is None))
            out[k] = both_orders(first, second)
            ctx.count({UNPARSEABLE: "judge_unparseable_pairs", FLIP: "position_flip"}.get(out[k], "judge_consistent"))
            if logprob and out[k] == FLIP and margins[0] != margins[1]:
                out[k] = FIRST if margins[0] > margins[1] else SECOND  # x's calibrated margin: (m1 - m2) / 2
                ctx.count("judge_calibrated")
        return out

    def _pairwise(self, examples, template, judge, cache, ctx):
        from harness.verdicts import FIRST, FLIP, SECOND

        jobs, pairs = [], []
        for e, example in enumerate(examples):
            texts = [c["text"] for c in candidates.of(example)]
            instruction = conversation_text(example["prompt"])
            for i, j in itertools.combinations(range(len(texts)), 2):
                jobs.append((e, i, j))
                pairs.append((instruction, texts[i], texts[j]))
        outcomes = self.compare(pairs, template, judge, cache, ctx)
        points = [[0.0] * len(candidates.of(e)) for e in examples]
        judged = [[0] * len(candidates.of(e)) for e in examples]
        for (e, i, j), outcome in zip(jobs, outcomes):
            share = {FIRST: (1.0, 0.0), SECOND: (0.0, 1.0), FLIP: (0.5, 0.5)}.get(outcome)
            for c, won in zip((i, j), share or ()):
                points[e][c] += won
                judged[e][c] += 1
        out = []
        for e, example in enumerate(examples):
            opponents = len(candidates.of(example)) - 1
            out.append([Score(None if judged[e][c] == 0 else points[e][c] * opponents / judged[e][c])
                        for c in range(opponents + 1)])
        return out


def _agreement(examples, scores, ctx) -> None:
    """Count, over candidate pairs where the Countdown verifier finds exactly one correct and the
    judge scored both: `verifier_pairs`, `verifier_agree` (judge ranks the correct one higher) and
    `verifier_ties` (equal scores)."""
    from harness.scorers.verifier import TASKS

    correct = TASKS["countdown"][2]
    for example, found in zip(examples, scores):
        meta = example["metadata"]
        verdicts = [correct(c["text"], meta["numbers"], meta["target"]) for c in candidates.of(example)]
        for i, j in itertools.combinations(range(len(found)), 2):
            if verdicts[i] == verdicts[j] or found[i].value is None or found[j].value is None:
                continue
            good, bad = (i, j) if verdicts[i] else (j, i)
            ctx.count("verifier_pairs")
            if found[good].value > found[bad].value:
                ctx.count("verifier_agree")
            elif found[good].value == found[bad].value:
                ctx.count("verifier_ties")
