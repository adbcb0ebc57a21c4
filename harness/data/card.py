"""Data cards: markdown with Hugging Face dataset-card YAML metadata.

A card records where the data came from (sources, revisions, licences), what
each step removed and why, the token-length distribution (a PNG histogram),
chosen-vs-rejected length statistics for preference data (length bias is a
known confounder of DPO; Park et al., 2024) and a few examples.

A preference set built from scored candidates (`build_pairs`, `hard_negatives`: its pairs carry
`metadata.pairing`) also gets a Pairs section and figure: candidates per prompt and the tie rate
(from the building step's counters and drops), the chosen/rejected score and margin distributions,
the length bias per rule, and the chosen-rejected similarity of hard negatives where measured.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import yaml

from harness.data import example as ex
from harness.data.lengths import token_counts

PAIRING = "pairing"  # metadata of pairs built from scored candidates (harness.data.steps.build_pairs)


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "n>1M"


def _lengths(examples, tokenizer):
    """(unit, {name: lengths}) — tokens of the recipe tokenizer, or words if it cannot be loaded."""
    if tokenizer is None:
        count, unit = (lambda texts: np.array([len(t.split()) for t in texts])), "words"
    else:
        count, unit = (lambda texts: token_counts(tokenizer, texts)), "tokens"
    out = {"prompt": count([ex.prompt_text(e) for e in examples])}
    out["response"] = count([ex.response_text(e, "chosen") for e in examples])
    if all(e["kind"] == "preference" for e in examples):
        out["chosen"] = out.pop("response")
        out["rejected"] = count([ex.response_text(e, "rejected") for e in examples])
    return unit, out


def histogram_png(lengths: dict, unit: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    top = max(int(v.max()) for v in lengths.values() if len(v)) + 1
    bins = np.linspace(0, top, 40)
    for name, values in lengths.items():
        if name != "prompt" or len(lengths) == 2:
            ax.hist(values, bins=bins, alpha=0.55, label=name)
    ax.set_xlabel(f"{unit} per response")
    ax.set_ylabel("examples")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _stats(values: np.ndarray) -> str:
    return (f"{values.mean():.1f} | {np.median(values):.0f} | {np.percentile(values, 90):.0f} | "
            f"{values.min()} | {values.max()}")


@dataclasses.dataclass(frozen=True)
class Card:
    text: str                   # the markdown, linking each figure as `<prefix>.<name>.png`
    figures: dict[str, bytes]   # name -> PNG: `lengths` always, `pairs` for built preference sets


def render(recipe_name: str, manifest: dict, examples: list[dict], tokenizer, png_name: str) -> tuple[str, bytes]:
    """(markdown, length histogram PNG bytes) for a prepared dataset; `render_card` gives every figure."""
    prefix = png_name.removesuffix(".png").removesuffix(".lengths")
    card = render_card(recipe_name, manifest, examples, tokenizer, prefix)
    return card.text, card.figures["lengths"]


def render_card(recipe_name: str, manifest: dict, examples: list[dict], tokenizer, prefix: str) -> Card:
    """The card of a prepared dataset and its figures, linked as `<prefix>.<figure>.png`."""
    unit, lengths = _lengths(examples, tokenizer)
    png_name = f"{prefix}.lengths.png"
    licenses = sorted({s.get("license") or "unknown" for s in manifest["sources"]})
    meta = {
        "pretty_name": f"{recipe_name} ({manifest['format']})",
        "license": licenses[0] if len(licenses) == 1 else "other",
        "language": ["en"],
        "size_categories": [_size_category(manifest["rows"])],
        "task_categories": ["text-generation"],
        "source_datasets": [s.get("path") or f"generated:{s['source']}" for s in manifest["sources"]],
        "tags": ["harness", manifest["format"]],
    }
    out = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
           f"# Data card: {recipe_name}", "",
           f"Prepared by `harness data {recipe_name}`: {manifest['rows']} examples in TRL "
           f"`{manifest['format']}` format. Data fingerprint `{manifest['data_fingerprint']}`.", ""]
    if manifest.get("order"):
        out += [f"Row order is a curriculum set by step `{manifest['order']['step']}` "
                f"({manifest['order'].get('order')}); trainers must not shuffle it.", ""]
    out += ["## Sources", "", "| label | source | path | revision | licence | rows |", "|---|---|---|---|---|---|"]
    for s in manifest["sources"]:
        out.append(f"| {s['label']} | {s['source']} | {s.get('path', '-')} | {s.get('revision', '-')} | "
                   f"{s.get('license') or 'unknown'} | {s['rows']} |")
    out += ["", "## Steps", "", "| step | in | out | dropped | reasons | notes |", "|---|---|---|---|---|---|"]
    for step in manifest["steps"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(step["dropped"].items())) or "-"
        notes = ", ".join(f"{k}: {v}" for k, v in sorted(step["counters"].items())) or "-"
        out.append(f"| {step['label']} | {step['rows_in'] if step['rows_in'] is not None else '-'} | "
                   f"{step['rows_out']} | {sum(step['dropped'].values())} | {reasons} | {notes} |")
    generated = [step for step in manifest["steps"] if "generated_tokens" in step["counters"]]
    if generated:
        out += ["", "## Generation", "", "| step | prompts | responses | generated tokens | seconds | tokens/s |",
                "|---|---|---|---|---|---|"]
        for step in generated:
            c = step["counters"]
            seconds = c.get("generation_ms", 0) / 1000
            rate = f"{c['generated_tokens'] / seconds:.0f}" if seconds else "-"
            out.append(f"| {step['label']} | {step['rows_in']} | {c.get('candidates', '-')} | {c['generated_tokens']} | "
                       f"{seconds:.1f} | {rate} |")
    out += ["", f"## Lengths ({unit})", "", f"![length histogram]({png_name})", "",
            "| part | mean | median | p90 | min | max |", "|---|---|---|---|---|---|"]
    out += [f"| {name} | {_stats(values)} |" for name, values in lengths.items()]
    if "rejected" in lengths:
        chosen, rejected = lengths["chosen"], lengths["rejected"]
        out += ["", "### Chosen vs rejected", "",
                f"- chosen longer than rejected: {np.mean(chosen > rejected):.1%} of pairs; "
                f"equal: {np.mean(chosen == rejected):.1%}",
                f"- mean length difference (chosen - rejected): {np.mean(chosen - rejected):+.1f} {unit}"]
    figures = {"lengths": histogram_png(lengths, unit)}
    if any(e["kind"] == "preference" and PAIRING in e.get("metadata", {}) for e in examples):
        from harness.data import pair_card

        section, png = pair_card.section(manifest, examples, lengths, unit, f"{prefix}.pairs.png")
        out += ["", *section]
        figures["pairs"] = png
    out += ["", "## Examples", ""]
    for e in examples[:3]:
        shown = {k: e[k] for k in ("id", "source", "messages", "prompt", "chosen", "rejected") if k in e}
        text = json.dumps(shown, ensure_ascii=False, indent=1)
        out += ["```json", text[:1500] + ("\n..." if len(text) > 1500 else ""), "```", ""]
    return Card("\n".join(out), figures)
