"""LIMA (Zhou et al., 2023, "LIMA: Less Is More for Alignment"; `GAIR/lima`): 1,000 curated
conversations, each a `conversations` list of plain strings that alternate user, assistant, user, ...

`sft` keeps the whole conversation (it must end on an answer); `prompt` keeps everything before the
last answer, the instruction a model answers when LIMA prompts seed preference data. A conversation
ending on a user turn (the dataset's test split has single instructions) is a prompt as it is.
"""

from __future__ import annotations

from harness.data import example as ex
from harness.data.formats import FORMATS, Format, Unparseable


@FORMATS.register()
class Lima(Format):
    name = "lima"
    kinds = ("sft", "prompt")
    columns = ("conversations",)

    def convert(self, row, kind, source):
        turns = row["conversations"]
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise Unparseable("bad_conversations")
        if any(not t.strip() for t in turns):
            raise Unparseable("empty_turn")
        messages = [ex.user(t.strip()) if i % 2 == 0 else ex.assistant(t.strip()) for i, t in enumerate(turns)]
        meta = {k: row[k] for k in ("source",) if isinstance(row.get(k), str)}
        if kind == "sft":
            if messages[-1]["role"] != "assistant":
                raise Unparseable("no_assistant_turn")
            return ex.sft(messages, source, meta)
        prompt = messages[:-1] if messages[-1]["role"] == "assistant" else messages
        return ex.prompt(prompt, source, meta)
