"""Keep examples whose token count (recipe model tokenizer) lies in [min_tokens, max_tokens]."""

from __future__ import annotations

import dataclasses

from harness.data.lengths import Field, measure
from harness.data.step import STEPS, Step
from harness.errors import FieldError
from harness.schema import param


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class LengthFilter(Step):
    """Drop examples shorter than `min_tokens` or longer than `max_tokens`.

    Counted in tokens of the recipe model's tokenizer, on the prompt, the
    response (the longer of chosen/rejected for pairs) or the total.
    """

    name = "length_filter"
    version = 1
    uses_tokenizer = True

    field: Field = "total"
    min_tokens: int = param(0, ge=0)
    max_tokens: int | None = param(None, ge=1)

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < self.min_tokens:
            raise FieldError("max_tokens", f"must be >= min_tokens ({self.min_tokens})")

    def apply(self, examples, ctx):
        examples = list(examples)
        lengths = measure(examples, self.field, ctx.tokenizer)
        for example, n in zip(examples, lengths.tolist()):
            if n < self.min_tokens:
                ctx.drop(example, f"too_short_{self.field}", tokens=n)
            elif self.max_tokens is not None and n > self.max_tokens:
                ctx.drop(example, f"too_long_{self.field}", tokens=n)
            else:
                yield example
