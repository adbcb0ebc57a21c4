"""OLMo 2 preference mixes (allenai/olmo-2-1124-*-preference-mix): full `chosen`/
`rejected` conversations with `chosen_rating`/`rejected_rating` and per-row `source`."""

from __future__ import annotations

from harness.data.formats import FORMATS, Format, from_pair, pair_from_conversations, parse_messages
from harness.data.formats.ultrafeedback_binarized import _score


@FORMATS.register()
class OLMo2Preference(Format):
    name = "olmo2_preference"
    kinds = ("preference", "sft", "prompt")
    columns = ("chosen", "rejected")

    def convert(self, row, kind, source):
        prompt, chosen, rejected = pair_from_conversations(parse_messages(row["chosen"], "chosen"),
                                                           parse_messages(row["rejected"], "rejected"))
        meta = {k: row[k] for k in ("id", "source", "chosen_model", "rejected_model") if row.get(k)}
        return from_pair(kind, prompt, chosen, rejected, source, metadata=meta,
                         score_chosen=_score(row, "chosen_rating"), score_rejected=_score(row, "rejected_rating"))
