"""The data card's Pairs section, for preference sets built from scored candidates.

What a reader of a built set needs to judge it: how many candidates each prompt had, how often
they all scored the same (the tie rate: prompts that gave no pair), how far apart chosen and
rejected score (the margin), whether the chosen is systematically longer (length bias, a known
DPO confounder; Park et al., 2024), and for hard negatives how similar the two responses are.
For LLM-judged candidates, the judge's own quality: how often its verdict flipped when the two
answers swapped places (position bias; Zheng et al., 2023), how often a comparison ended in a tie,
how many verdicts could not be read, and, where a verifier can check the task, how often the
judge ranked the verified-correct answer higher. Building-step figures come from the manifest (counters and drops of `build_pairs` /
`hard_negatives`); pair figures from the pairs' `metadata.pairing` and scores in the dataset, so
later steps (sampling, label noise) are reflected.
"""

from __future__ import annotations

import io

import numpy as np

BUILDERS = ("build_pairs", "hard_negatives")
PAIRING = "pairing"


def _dist(values) -> str:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return "- | - | - | - | - | -"
    return " | ".join(f"{v:.3g}" for v in (values.mean(), np.median(values), np.percentile(values, 10),
                                            np.percentile(values, 90), values.min(), values.max()))


def candidates_per_prompt(counters: dict) -> dict[int, int]:
    """{candidates: prompts} from a building step's `candidates_per_prompt:<k>` counters."""
    prefix = "candidates_per_prompt:"
    return {int(k[len(prefix):]): v for k, v in sorted(counters.items(), key=lambda kv: kv[0])
            if k.startswith(prefix)}


def figures(examples: list[dict], builders: list[dict]) -> dict:
    """The numbers behind the section (also what the tests check)."""
    records = [e["metadata"][PAIRING] for e in examples]
    scored = [e for e in examples if e.get("score_chosen") is not None]
    out = {
        "pairs": len(examples),
        "prompts": len({r["prompt_id"] for r in records}),
        "score_chosen": np.array([e["score_chosen"] for e in scored], dtype=float),
        "score_rejected": np.array([e["score_rejected"] for e in scored], dtype=float),
        "margin": np.array([e["score_chosen"] - e["score_rejected"] for e in scored], dtype=float),
        "similarity": np.array([r["similarity"] for r in records if r.get("similarity") is not None], dtype=float),
        "candidates": {}, "tie_rate": {},
    }
    for step in builders:
        out["candidates"][step["label"]] = candidates_per_prompt(step["counters"])
        prompts = step["rows_in"] or 0
        out["tie_rate"][step["label"]] = step["dropped"].get("tie", 0) / prompts if prompts else 0.0
    return out


def judge_figures(counters: dict) -> dict:
    """Rates from a `score` step's judge counters (see `harness.scorers.judge`); None where undefined."""
    def rate(part, whole):
        return counters.get(part, 0) / counters[whole] if counters.get(whole) else None

    decided = counters.get("judge_consistent", 0) + counters.get("position_flip", 0)
    pairs = counters.get("judge_pairs", 0)
    return {
        "verdicts": counters.get("judge_verdicts", 0), "calls": counters.get("judge_calls", 0),
        "cached": counters.get("judge_cached", 0), "unparseable_rate": rate("judge_unparseable", "judge_verdicts"),
        "pairs": pairs, "position_flip_rate": counters.get("position_flip", 0) / decided if decided else None,
        "tie_rate": (counters.get("position_flip", 0) - counters.get("judge_calibrated", 0)
                     + counters.get("judge_identical_pairs", 0)) / pairs if pairs else None,
        "calibrated": counters.get("judge_calibrated", 0),
        "verifier_pairs": counters.get("verifier_pairs", 0), "verifier_agreement": rate("verifier_agree", "verifier_pairs"),
    }


def judge_section(manifest: dict) -> list[str]:
    """The judge table: one row per `score` step that asked an LLM judge."""
    judged = [s for s in manifest["steps"] if s.get("step") == "score" and "judge_verdicts" in s["counters"]]
    if not judged:
        return []
    shown = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    out = ["### Judge", "", "| step | verdicts | asked / cached | unparseable | comparisons | position flips | "
           "ties | agrees with verifier |", "|---|---|---|---|---|---|---|---|"]
    for step in judged:
        f = judge_figures(step["counters"])
        agreement = f"{shown(f['verifier_agreement'])} of {f['verifier_pairs']}" if f["verifier_pairs"] else "-"
        out.append(f"| {step['label']} | {f['verdicts']} | {f['calls']} / {f['cached']} | "
                   f"{shown(f['unparseable_rate'])} | {f['pairs'] or '-'} | {shown(f['position_flip_rate'])} | "
                   f"{shown(f['tie_rate'])} | {agreement} |")
    calibrated = sum(judge_figures(step["counters"])["calibrated"] for step in judged)
    out += ["", "Position flips: the share of readable comparisons whose verdict followed the order the answers "
            "were shown in (a tie). Ties: flips and identical answers, of all comparisons. Agreement: of candidate "
            "pairs where the verifier finds exactly one correct, the share the judge ranks correct-first."]
    if calibrated:
        out.append(f"Logprob verdicts: {calibrated} flipped comparisons were decided by the margin averaged over "
                   "both orders (balanced position calibration) instead of tying.")
    return out + [""]


def section(manifest: dict, examples: list[dict], lengths: dict, unit: str, png_name: str) -> tuple[list[str], bytes]:
    """(markdown lines, figure PNG) for the built pairs among `examples` (lengths aligned with them)."""
    idx = [i for i, e in enumerate(examples) if e["kind"] == "preference" and PAIRING in e.get("metadata", {})]
    built = [examples[i] for i in idx]
    builders = [s for s in manifest["steps"] if s.get("step") in BUILDERS]
    f = figures(built, builders)
    if "rejected" in lengths:
        chosen_len, rejected_len = lengths["chosen"][idx], lengths["rejected"][idx]
    else:
        unit = "words"
        chosen_len = np.array([len(_text(e, "chosen").split()) for e in built])
        rejected_len = np.array([len(_text(e, "rejected").split()) for e in built])
    out = ["## Pairs", "", f"{f['pairs']} pairs from {f['prompts']} prompts, built from scored candidates.", "",
           f"![pair figures]({png_name})", ""]
    if builders:
        out += ["| step | prompts in | pairs out | candidates per prompt | tie rate | other drops |",
                "|---|---|---|---|---|---|"]
        for step in builders:
            per = f["candidates"][step["label"]]
            shown = ", ".join(f"{k}: {v}" for k, v in per.items()) if len(per) > 1 else (
                f"{next(iter(per))} (all)" if per else "-")
            if per:
                shown += f"; mean {sum(k * v for k, v in per.items()) / sum(per.values()):.2f}"
            other = ", ".join(f"{k}: {v}" for k, v in sorted(step["dropped"].items()) if k != "tie") or "-"
            out.append(f"| {step['label']} | {step['rows_in']} | {step['rows_out']} | {shown} | "
                       f"{f['tie_rate'][step['label']]:.1%} ({step['dropped'].get('tie', 0)}) | {other} |")
        out += ["", "Tie rate: the share of prompts whose distinct candidates all scored the same (no pair).", ""]
    out += judge_section(manifest)
    out += ["| figure | mean | median | p10 | p90 | min | max |", "|---|---|---|---|---|---|---|",
            f"| score (chosen) | {_dist(f['score_chosen'])} |", f"| score (rejected) | {_dist(f['score_rejected'])} |",
            f"| margin (chosen - rejected) | {_dist(f['margin'])} |"]
    if len(f["similarity"]):
        out.append(f"| similarity (cosine, chosen vs rejected) | {_dist(f['similarity'])} |")
    if len(f["margin"]) < f["pairs"]:
        out += ["", f"{f['pairs'] - len(f['margin'])} pairs have no scores (e.g. programmatic near misses)."]
    out += ["", f"Length bias ({unit}) and similarity by rule:", "",
            f"| rule | pairs | mean margin | chosen longer | mean length difference ({unit}) | mean similarity |",
            "|---|---|---|---|---|---|"]
    rules = [e["metadata"][PAIRING]["rule"] for e in built]
    for rule in list(dict.fromkeys(rules)) + (["all"] if len(set(rules)) > 1 else []):
        sel = np.array([rule in ("all", r) for r in rules])
        margins = [e["score_chosen"] - e["score_rejected"] for e, s in zip(built, sel)
                   if s and e.get("score_chosen") is not None]
        sims = [e["metadata"][PAIRING].get("similarity") for e, s in zip(built, sel) if s]
        sims = [x for x in sims if x is not None]
        diff = chosen_len[sel] - rejected_len[sel]
        out.append(f"| {rule} | {int(sel.sum())} | {np.mean(margins) if margins else float('nan'):.3g} | "
                   f"{np.mean(diff > 0):.1%} | {np.mean(diff):+.1f} | "
                   f"{np.mean(sims) if sims else float('nan'):.3g} |")
    return out, figure_png(f)


def _text(example: dict, which: str) -> str:
    return "\n".join(m["content"] for m in example[which])


def figure_png(f: dict) -> bytes:
    """Scores, margins, similarities and candidates per prompt, one panel each (those with data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (["scores", "margin"] if len(f["score_chosen"]) else []) + (
        ["similarity"] if len(f["similarity"]) else []) + (["candidates"] if any(f["candidates"].values()) else [])
    panels = panels or ["scores"]  # nothing measured: one empty panel that says so
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.0), dpi=100, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "scores":
            if len(f["score_chosen"]):
                both = np.concatenate([f["score_chosen"], f["score_rejected"]])
                bins = np.linspace(both.min(), both.max() + 1e-9, 25)
                ax.hist(f["score_chosen"], bins=bins, alpha=0.6, label="chosen")
                ax.hist(f["score_rejected"], bins=bins, alpha=0.6, label="rejected")
                ax.legend(fontsize=8)
            else:
                ax.text(0.5, 0.5, "no scores", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel("score")
        elif panel == "margin":
            ax.hist(f["margin"], bins=25, color="tab:green")
            ax.set_xlabel("margin (chosen - rejected)")
        elif panel == "similarity":
            ax.hist(f["similarity"], bins=np.linspace(min(-0.05, f["similarity"].min()), 1.0, 25), color="tab:purple")
            ax.set_xlabel("cosine similarity")
        else:
            merged: dict[int, int] = {}
            for per in f["candidates"].values():
                for k, v in per.items():
                    merged[k] = merged.get(k, 0) + v
            ax.bar(list(merged), list(merged.values()), color="tab:gray")
            ax.set_xticks(sorted(merged))
            ax.set_xlabel("candidates per prompt")
        ax.set_ylabel("pairs" if panel != "candidates" else "prompts")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
