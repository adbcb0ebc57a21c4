"""UltraFeedback binarized (Cui et al., 2023; HuggingFaceH4/ultrafeedback_binarized):
`chosen`/`rejected` are full conversations, with `score_chosen`/`score_rejected`."""

from __future__ import annotations

from typing import ClassVar

from harness.data.formats import FORMATS, Format, Unparseable, from_pair, pair_from_conversations, parse_messages


def _score(row, column):
    value = row.get(column)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unparseable(f"bad_{column}")
    return float(value)


@FORMATS.register()
class UltraFeedbackBinarized(Format):
    name = "ultrafeedback_binarized"
    kinds = ("preference", "sft", "prompt")
    columns = ("chosen", "rejected")
    score_columns: ClassVar[tuple[str, str]] = ("score_chosen", "score_rejected")
    metadata_columns: ClassVar[tuple[str, ...]] = ("prompt_id",)

    def convert(self, row, kind, source):
        prompt, chosen, rejected = pair_from_conversations(parse_messages(row["chosen"], "chosen"),
                                                           parse_messages(row["rejected"], "rejected"))
        meta = {k: row[k] for k in self.metadata_columns if row.get(k)}
        return from_pair(kind, prompt, chosen, rejected, source, metadata=meta,
                         score_chosen=_score(row, self.score_columns[0]),
                         score_rejected=_score(row, self.score_columns[1]))
