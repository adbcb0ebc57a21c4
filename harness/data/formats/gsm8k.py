"""GSM8K (Cobbe et al., 2021): `question`, and an `answer` whose last line is `#### <n>`.
Calculator annotations (`<<48/2=24>>`) are removed from worked solutions."""

from __future__ import annotations

import re

from harness.data import example as ex
from harness.data.formats import FORMATS, Format, Unparseable, text
from harness.rewards.gsm8k import reference_answer

_CALC = re.compile(r"<<[^>]*>>")


@FORMATS.register()
class GSM8K(Format):
    name = "gsm8k"
    kinds = ("prompt", "sft")
    columns = ("question", "answer")

    def convert(self, row, kind, source):
        question, solution = text(row, "question"), text(row, "answer")
        answer = reference_answer(solution)
        if answer is None:
            raise Unparseable("no_final_answer")
        prompt = [ex.user(question.strip())]
        if kind == "prompt":
            return ex.prompt(prompt, source, {"answer": answer})
        worked = _CALC.sub("", solution).rsplit("####", 1)[0].strip()
        return ex.sft(prompt + [ex.assistant(f"{worked}\nThe answer is {answer}.")], source, {"answer": answer})
