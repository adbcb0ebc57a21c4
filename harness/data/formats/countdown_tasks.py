"""Countdown-Tasks-3to4 (Jiayi-Pan/Countdown-Tasks-3to4, used by TinyZero): `nums` and `target`."""

from __future__ import annotations

from harness.data import example as ex
from harness.data.formats import FORMATS, Format, Unparseable
from harness.data.sources.countdown import question


@FORMATS.register()
class CountdownTasks(Format):
    name = "countdown_tasks"
    kinds = ("prompt",)
    columns = ("nums", "target")

    def convert(self, row, kind, source):
        nums, target = row["nums"], row["target"]
        if (not isinstance(nums, list) or len(nums) < 2
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in nums)):
            raise Unparseable("bad_nums")
        if not isinstance(target, int) or isinstance(target, bool):
            raise Unparseable("bad_target")
        return ex.prompt([ex.user(question(nums, target))], source, {"numbers": list(nums), "target": target})
