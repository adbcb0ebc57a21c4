"""Alpaca-style instructions (Taori et al., 2023): `instruction`, optional `input`, `output`."""

from __future__ import annotations

from harness.data import example as ex
from harness.data.formats import FORMATS, Format, Unparseable, text


@FORMATS.register()
class Alpaca(Format):
    name = "alpaca"
    kinds = ("sft", "prompt")
    columns = ("instruction", "output")

    def convert(self, row, kind, source):
        instruction = text(row, "instruction").strip()
        extra = row.get("input") or ""
        if not isinstance(extra, str):
            raise Unparseable("bad_input")
        prompt = [ex.user(f"{instruction}\n\n{extra.strip()}" if extra.strip() else instruction)]
        if kind == "prompt":
            return ex.prompt(prompt, source)
        return ex.sft(prompt + [ex.assistant(text(row, "output").strip())], source)
