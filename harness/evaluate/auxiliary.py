"""Models a task loads besides the one under evaluation: a reference policy, a judge, a reward model.

Each is named by a model reference (an earlier stage, a local folder, a hub id
or `embedded:<name>`), resolved with `ctx.resolve`, loaded when the task needs
it, in eval mode on the task's device, and freed when its `with` block ends, so
a reference and a judge never sit in memory together with each other.
"""

from __future__ import annotations

import contextlib
import gc

from harness.errors import HarnessError, one_line


def _load(ctx, reference: str, role: str, task: str, auto_class: str, head: str):
    import torch
    import transformers

    path = ctx.resolve(reference)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        config = transformers.AutoConfig.from_pretrained(path)
    except Exception as err:  # offline hub, missing folder, gated repo: one line
        raise HarnessError(f"task '{task}': cannot load {role} '{reference}' ({one_line(err)}); give an earlier "
                           f"stage, a local folder or a hub id (downloaded once with network access)") from None
    architectures = config.architectures or []
    if architectures and not any(a.endswith(head) for a in architectures):
        # loading anyway would put a randomly initialised head on top and score noise
        raise HarnessError(f"task '{task}': {role} '{reference}' is a {architectures[0]}, not a *{head}; "
                           f"give a {head} checkpoint")
    dtype = torch.float32 if str(ctx.device) == "cpu" else "auto"
    model = getattr(transformers, auto_class).from_pretrained(path, dtype=dtype).to(ctx.device).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    ctx.log(f"{task}: loaded {role} {reference}")
    return model, tokenizer


def _free() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def causal_lm(ctx, reference: str, role: str, task: str, batch_size: int):
    """A `Generator` on a causal LM (a reference policy or a judge)."""
    from harness.evaluate.generate import Generator

    model, tokenizer = _load(ctx, reference, role, task, "AutoModelForCausalLM", "ForCausalLM")
    generator = Generator(model, tokenizer, batch_size, log=ctx.log)
    generator.task = f"{task} ({role})"
    try:
        yield generator
    finally:
        generator.model = None
        del model
        _free()


class RewardScorer:
    """Scalar rewards for (prompt, response) pairs from a sequence classifier with one output.

    The text is the chat-formatted conversation prompt + response, exactly as
    the `reward_model` RLOO reward formats it, so a reward model scores the same
    text at training and at eval time.
    """

    def __init__(self, model, tokenizer, batch_size: int, max_length: int) -> None:
        self.model, self.tokenizer, self.batch_size, self.max_length = model, tokenizer, batch_size, max_length

    def text(self, prompt: list[dict], response: str) -> str:
        conversation = list(prompt) + [{"role": "assistant", "content": response}]
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(conversation, tokenize=False)
        return "\n".join(m["content"] for m in conversation)

    def score(self, prompts: list[list[dict]], responses: list[str]) -> list[float]:
        import torch

        texts = [self.text(p, r) for p, r in zip(prompts, responses)]
        scores: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[i:i + self.batch_size], return_tensors="pt", padding=True,
                                   truncation=True, max_length=self.max_length).to(self.model.device)
            with torch.inference_mode():
                scores += self.model(**batch).logits[:, 0].float().tolist()
        return scores


@contextlib.contextmanager
def reward_model(ctx, reference: str, task: str, batch_size: int, max_length: int):
    """A `RewardScorer` on a `trl_reward` checkpoint or a hub sequence classifier."""
    model, tokenizer = _load(ctx, reference, "reward model", task, "AutoModelForSequenceClassification",
                             "ForSequenceClassification")
    scorer = RewardScorer(model, tokenizer, batch_size, max_length)
    try:
        if model.config.num_labels != 1:
            raise HarnessError(f"task '{task}': reward model '{reference}' has {model.config.num_labels} outputs; "
                               f"a reward model has one (num_labels=1), e.g. a trl_reward stage")
        yield scorer
    finally:
        scorer.model = None
        del model
        _free()


def chat_or_text(tokenizer, text: str):
    """A judge prompt as one user turn when the judge has a chat template, else as plain text."""
    return [{"role": "user", "content": text}] if tokenizer.chat_template else text


def conversation_text(messages: list[dict]) -> str:
    """A prompt's messages as the judge sees them: the bare text for one user turn, else `role: text` lines."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)
