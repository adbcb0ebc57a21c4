"""Anthropic HH-RLHF (Bai et al., 2022): `chosen`/`rejected` are whole transcripts
of `\\n\\nHuman: ...` / `\\n\\nAssistant: ...` turns that share all but the last reply."""

from __future__ import annotations

import re

from harness.data.formats import FORMATS, Format, Unparseable, from_pair, pair_from_conversations, text

_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def parse_transcript(transcript: str, column: str) -> list[dict]:
    parts = _TURN.split(transcript)
    if parts[0].strip() or len(parts) < 3:
        raise Unparseable(f"bad_transcript_{column}")
    turns = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        turns.append({"role": "user" if speaker == "Human" else "assistant", "content": content.strip()})
    return turns


@FORMATS.register()
class HHRLHF(Format):
    name = "hh_rlhf"
    kinds = ("preference", "sft", "prompt")
    columns = ("chosen", "rejected")

    def convert(self, row, kind, source):
        chosen = parse_transcript(text(row, "chosen"), "chosen")
        rejected = parse_transcript(text(row, "rejected"), "rejected")
        prompt, chosen_turn, rejected_turn = pair_from_conversations(chosen, rejected)
        return from_pair(kind, prompt, chosen_turn, rejected_turn, source)
