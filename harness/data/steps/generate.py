"""On-policy candidates: sample `n` responses per prompt from a model.

The model is the recipe's base model (`base`), an earlier stage's checkpoint (its name), a local
folder or a hub id. The step's cache key includes that model's fingerprint, the prompts (the input
fingerprint), the sampling parameters and the seed, so a rerun samples nothing and retraining the
stage it samples from regenerates exactly this data. A stage whose data samples from an earlier
stage is prepared just before it trains, once that checkpoint exists.

Generation is the eval suite's batched generator (length-sorted, left-padded batches; vLLM when
installed on a GPU), seeded per batch. This is how CS224R's on-policy DPO and SimPO's
self-generated pairs (Meng et al., 2024: five samples per UltraFeedback prompt) are built.
"""

from __future__ import annotations

import dataclasses
import time

from harness.data import candidates
from harness.data.step import STEPS, Step
from harness.errors import FieldError
from harness.schema import param


@STEPS.register()
@dataclasses.dataclass(frozen=True)
class Generate(Step):
    """Add `n` sampled responses (`candidates`) to every prompt example."""

    name = "generate"
    version = 1
    provides = ("candidates",)

    model: str = param("base", help="base, an earlier stage's name, a local folder or a hub id")
    n: int = param(4, ge=1, le=64, help="responses per prompt")
    temperature: float = param(1.0, ge=0.0, help="sampling temperature (0: greedy, needs n: 1)")
    max_new_tokens: int = param(256, ge=1)
    batch_size: int = param(16, ge=1, help="prompts per generation batch (each with its n samples)")
    stop: tuple[str, ...] = param([], help="end a response after the first of these strings (kept)")
    seed: int | None = param(None, help="sampling seed (default: the recipe seed)")

    def __post_init__(self) -> None:
        if self.temperature == 0 and self.n > 1:
            raise FieldError("temperature", f"greedy decoding gives {self.n} identical responses; "
                                            f"set temperature > 0 (e.g. 1.0) or n: 1")

    def model_refs(self):
        return (self.model,)

    def apply(self, examples, ctx):
        from harness.evaluate.generate import Generator, Stop

        examples = list(examples)
        for example in examples:
            if example["kind"] != "prompt":
                from harness.errors import HarnessError

                raise HarnessError(f"step 'generate' needs prompt examples, but source '{example['source']}' "
                                   f"gives {example['kind']} examples; use `kind: prompt` for that source")
        model, tokenizer = ctx.models.load(self.model)
        generator = Generator.create(model, tokenizer, ctx.models.location(self.model), self.batch_size)
        start = time.perf_counter()
        result = generator.generate([e["prompt"] for e in examples], max_new_tokens=self.max_new_tokens, n=self.n,
                                    temperature=self.temperature, seed=ctx.seed if self.seed is None else self.seed,
                                    stop=[Stop.literal(s, keep=True) for s in self.stop] or None)
        seconds = time.perf_counter() - start
        ctx.count("generated_tokens", result.new_tokens)
        ctx.count("generation_ms", round(seconds * 1000))
        ctx.count("generated_tokens_per_s", round(result.new_tokens / max(seconds, 1e-9)))
        for example, texts in zip(examples, result.texts):
            ctx.count("candidates", len(texts))
            found = [candidates.candidate(t, tokens=len(tokenizer(t, add_special_tokens=False).input_ids))
                     for t in texts]
            yield candidates.with_candidates(example, found)
