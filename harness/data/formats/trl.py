"""Data already in a TRL layout: `messages` (sft), `prompt`/`chosen`/`rejected`
(preference; strings or message lists) or `prompt` (+ extra columns as metadata)."""

from __future__ import annotations

from harness.data import example as ex
from harness.data.formats import FORMATS, Format, Unparseable, parse_messages

_PAIR = ("prompt", "chosen", "rejected", "score_chosen", "score_rejected", "id", "messages")


def _turns(value, column, role):
    if isinstance(value, str):
        if not value.strip():
            raise Unparseable(f"empty_{column}")
        return [{"role": role, "content": value}]
    return parse_messages(value, column)


@FORMATS.register()
class TRL(Format):
    name = "trl"
    kinds = ("auto", "sft", "preference", "prompt")

    def convert(self, row, kind, source):
        if kind == "auto":
            kind = "sft" if "messages" in row else "preference" if "chosen" in row else "prompt"
        meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {
            k: v for k, v in row.items() if k not in _PAIR}
        if kind == "sft":
            return ex.sft(parse_messages(row.get("messages"), "messages"), source, meta)
        prompt = _turns(row.get("prompt"), "prompt", "user")
        if kind == "prompt":
            return ex.prompt(prompt, source, meta)
        scores = {k: row[k] for k in ("score_chosen", "score_rejected")
                  if isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)}
        return ex.preference(prompt, _turns(row.get("chosen"), "chosen", "assistant"),
                             _turns(row.get("rejected"), "rejected", "assistant"), source,
                             metadata=meta, **scores)
