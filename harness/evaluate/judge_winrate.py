"""Win rate against a reference model, judged pairwise by an LLM, with a length-controlled variant.

The model and the reference answer each prompt greedily. A judge model sees
the instruction and both answers and names the better one with a letter. LLM
judges favour whichever answer is shown first (Zheng et al., 2023, MT-Bench),
so every pair is judged in both orders: the model wins or loses a prompt only
when the two verdicts agree; verdicts that flip with the order are ties and
are counted as `inconsistent`. A judge output with no readable letter is
counted as `unparseable` and also scored as a tie: it is never a win.

Judges also favour longer answers. `lc_win_rate` follows the idea of
AlpacaEval 2.0's length-controlled win rate (Dubois et al., 2024): regress the
per-prompt outcome on the standardised, tanh-squashed length difference
between the two answers, and report the predicted win rate at zero length
difference. AlpacaEval's model also has per-model and per-instruction terms;
this one, fitted on one model's outcomes, keeps the intercept and the length
slope. When length and outcome cannot be told apart (the model's answer is
longer, or shorter, on nearly every prompt; the lengths do not vary; too few
prompts; or the outcome is separated by length) `lc_win_rate` is None and the
result carries a warning saying why.
"""

from __future__ import annotations

import dataclasses

from harness import verdicts
from harness.evaluate import RUNNERS, EvalContext, TaskResult
from harness.evaluate.pairwise import LOSS, TIE, WIN, PairwiseTask, tally, win_rate
from harness.schema import param
from harness.verdicts import parse_preference  # noqa: F401  (shared with the judge scorer)

JUDGE_PROMPT = """You are comparing two responses to the same instruction.

[Instruction]
{instruction}

[Response A]
{a}

[Response B]
{b}

Which response follows the instruction better: more helpful, correct and relevant? Do not let the order \
or the length of the responses decide. Answer with a single letter: A or B."""

# below this many prompts a two-parameter fit says nothing
MIN_PROMPTS_FOR_LC = 10
BOOTSTRAP_RESAMPLES = 200


def combine(model_first: str | None, model_second: str | None) -> tuple[float, str]:
    """(outcome, status) from the verdict with the model's answer as A and the one with it as B.

    status is `consistent` (both verdicts pick the same answer), `inconsistent`
    (they pick by position: a tie) or `unparseable` (a verdict is unreadable: a tie).
    """
    found = verdicts.both_orders(model_first, model_second)
    return {verdicts.FIRST: (WIN, "consistent"), verdicts.SECOND: (LOSS, "consistent"),
            verdicts.FLIP: (TIE, "inconsistent"), verdicts.UNPARSEABLE: (TIE, "unparseable")}[found]


@dataclasses.dataclass(frozen=True)
class LengthControl:
    """A length-controlled win rate, or None with the reason it cannot be identified."""

    value: float | None
    reason: str = ""
    intercept: float | None = None
    slope: float | None = None
    longer_share: float = 0.0
    shorter_share: float = 0.0


def fit_logistic(x, y, iterations: int = 100) -> tuple[float, float] | None:
    """(intercept, slope) of a logistic regression of y in [0, 1] on x, by Newton's method; None if it diverges.

    Fractional outcomes (0.5 for a tie) enter the binomial log-likelihood
    directly, which is the same as a win and a loss of weight 0.5 each.
    """
    import numpy as np
    from scipy.special import expit

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(iterations):
        p = expit(design @ beta)
        gradient = design.T @ (y - p)
        hessian = (design * (p * (1 - p))[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            return None
        if np.max(np.abs(step)) < 1e-8:
            return float(beta[0]), float(beta[1])
    return None  # no convergence: the outcome is (quasi-)separated by length


def length_controlled(outcomes, model_lengths, reference_lengths, max_longer_share: float = 0.9) -> LengthControl:
    """The win rate predicted at zero length difference, or None with a reason.

    x = tanh(d / sd(d)) with d the model's answer length minus the reference's,
    as in AlpacaEval 2.0 LC. Not identified when the model's answer is longer
    (or shorter) on more than `max_longer_share` of prompts: then length and
    quality are confounded and the intercept is an extrapolation.
    """
    import numpy as np
    from scipy.special import expit

    y = np.asarray(outcomes, dtype=np.float64)
    difference = np.asarray(model_lengths, dtype=np.float64) - np.asarray(reference_lengths, dtype=np.float64)
    longer, shorter = (float(np.mean(difference > 0)), float(np.mean(difference < 0))) if len(y) else (0.0, 0.0)
    shares = {"longer_share": longer, "shorter_share": shorter}
    if len(y) < MIN_PROMPTS_FOR_LC:
        return LengthControl(None, f"only {len(y)} prompts (a length-controlled fit needs {MIN_PROMPTS_FOR_LC})",
                             **shares)
    spread = float(difference.std())
    if spread == 0:
        return LengthControl(None, "the answer lengths differ by the same amount on every prompt", **shares)
    if max(longer, shorter) > max_longer_share:
        side, share = ("longer", longer) if longer >= shorter else ("shorter", shorter)
        return LengthControl(None, f"the model's answer is {side} on {share:.0%} of prompts, so length and "
                                   f"quality are confounded", **shares)
    fit = fit_logistic(np.tanh(difference / spread), y)
    if fit is None:
        return LengthControl(None, "the outcome is separated by the length difference; the fit does not converge",
                             **shares)
    intercept, slope = fit
    return LengthControl(float(expit(intercept)), "", intercept, slope, **shares)


def bootstrap_stderr(outcomes, model_lengths, reference_lengths, max_longer_share: float = 0.9,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> float | None:
    """Standard deviation of the LC win rate over prompt resamples (None if most resamples are unidentified)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, m, r = (np.asarray(v, dtype=np.float64) for v in (outcomes, model_lengths, reference_lengths))
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(y), size=len(y))
        value = length_controlled(y[pick], m[pick], r[pick], max_longer_share).value
        if value is not None:
            values.append(value)
    return float(np.std(values, ddof=1)) if len(values) >= resamples // 2 else None


@RUNNERS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class JudgeWinRate(PairwiseTask):
    """Share of prompts where an LLM judge prefers the model's answer in both orders (ties count half)."""

    name = "judge_winrate"
    version = 1
    metrics = ("win_rate", "lc_win_rate")

    judge: str = param(help="causal LM that compares the answers: an earlier stage, a local folder, a hub id "
                            "or embedded:<name>")
    judge_max_new_tokens: int = param(16, ge=1, help="generation budget of a verdict")
    max_longer_share: float = param(0.9, gt=0.5, le=1.0,
                                    help="lc_win_rate is None when the model's answer is longer (or shorter) on "
                                         "more than this share of prompts")

    def evaluate(self, ctx: EvalContext) -> TaskResult:
        from harness.evaluate import auxiliary

        answers = self.answers(ctx)
        prompts = answers.prompt_set.prompts
        identical = [m == r for m, r in zip(answers.model, answers.reference)]
        judged = [i for i, same in enumerate(identical) if not same]
        verdict_texts: dict[int, tuple[str, str]] = {}
        if judged:
            with auxiliary.causal_lm(ctx, self.judge, "judge", self.task_name, self.batch_size) as judge:
                requests = []
                for i in judged:
                    instruction = auxiliary.conversation_text(prompts[i].messages)
                    for a, b in ((answers.model[i], answers.reference[i]), (answers.reference[i], answers.model[i])):
                        text = JUDGE_PROMPT.format(instruction=instruction, a=a, b=b)
                        requests.append(auxiliary.chat_or_text(judge.tokenizer, text))
                outputs = judge.generate(requests, max_new_tokens=self.judge_max_new_tokens).texts
            for k, i in enumerate(judged):
                verdict_texts[i] = (outputs[2 * k][0], outputs[2 * k + 1][0])

        outcomes, statuses, unreadable = [], [], 0
        for i in range(len(prompts)):
            if identical[i]:
                outcomes.append(TIE)
                statuses.append("identical")
                continue
            first, second = (parse_preference(t) for t in verdict_texts[i])
            unreadable += (first is None) + (second is None)
            result, status = combine(first, second)
            outcomes.append(result)
            statuses.append(status)

        model_lengths = [len(t) for t in answers.model]
        reference_lengths = [len(t) for t in answers.reference]
        lc = length_controlled(outcomes, model_lengths, reference_lengths, self.max_longer_share)
        warnings = [] if lc.value is not None else [f"{self.task_name}: lc_win_rate not reported: {lc.reason}"]
        lc_stderr = None if lc.value is None else bootstrap_stderr(
            outcomes, model_lengths, reference_lengths, self.max_longer_share, seed=ctx.seed)
        samples = [{"id": p.id, "prompt": p.text, "output": out, "reference": ref,
                    "verdicts": list(verdict_texts.get(i, ())), "status": status, "outcome": o}
                   for i, (p, out, ref, status, o) in enumerate(zip(prompts, answers.model, answers.reference,
                                                                    statuses, outcomes))][:5]
        return TaskResult(
            metrics={"win_rate": win_rate(outcomes), "lc_win_rate": lc.value},
            item_ids=[p.id for p in prompts], per_item={"win_rate": outcomes},
            stderr={"lc_win_rate": lc_stderr},
            counts={**tally(outcomes), **{s: statuses.count(s) for s in
                                          ("consistent", "inconsistent", "unparseable", "identical")},
                    "unparseable_verdicts": unreadable},
            throughput=answers.throughput, version=str(self.version), data_hash=answers.prompt_set.data_hash,
            info={"prompts": answers.prompt_set.source, "reference": self.reference, "judge": self.judge,
                  "length_unit": "characters",
                  "mean_length": {"model": sum(model_lengths) / len(prompts),
                                  "reference": sum(reference_lengths) / len(prompts)},
                  "length_control": dataclasses.asdict(lc)},
            warnings=warnings, samples=samples)
