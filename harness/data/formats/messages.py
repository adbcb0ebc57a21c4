"""Chat `messages` datasets: Tulu 3 SFT mixture (Lambert et al., 2024) and
smol-smoltalk (Allal et al., 2025) share this layout, with optional `id`/`source`."""

from __future__ import annotations

from harness.data.formats import FORMATS, Format, from_conversation, parse_messages


@FORMATS.register("messages")
@FORMATS.register("tulu3_sft")
@FORMATS.register("smoltalk")
class Messages(Format):
    name = "messages"
    kinds = ("sft", "prompt")
    columns = ("messages",)

    def convert(self, row, kind, source):
        meta = {k: row[k] for k in ("id", "source") if isinstance(row.get(k), str)}
        return from_conversation(kind, parse_messages(row["messages"]), source, meta)
