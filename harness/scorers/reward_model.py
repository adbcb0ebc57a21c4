"""Reward-model scorer: a sequence classifier's scalar for prompt + response.

The model is a `trl_reward` stage of the same recipe (by stage name), a local folder or a hub
sequence-classification reward model (e.g. Skywork-Reward). Scores are only meaningful relative
to other responses to the same prompt (Bradley-Terry models fix no absolute scale), so pair
builders compare them within one prompt only.
"""

from __future__ import annotations

import dataclasses

from harness.data import candidates
from harness.schema import param
from harness.scorers import SCORERS, Score, Scorer


@SCORERS.register()
@dataclasses.dataclass(frozen=True)
class RewardModelScorer(Scorer):
    """Score = the classifier's first logit on the chat-templated conversation."""

    name = "reward_model"

    model: str = param(help="an earlier trl_reward stage, or a sequence-classification model id or path")
    batch_size: int = param(8, ge=1)
    max_length: int = param(1024, ge=8, help="tokens kept per conversation (truncated from the right)")

    def model_refs(self):
        return (self.model,)

    def score(self, examples, ctx):
        import torch

        model, tokenizer = ctx.models.load(self.model, kind="reward")
        texts, owners = [], []
        for i, example in enumerate(examples):
            for c in candidates.of(example):
                conversation = list(example["prompt"]) + [{"role": "assistant", "content": c["text"]}]
                texts.append(tokenizer.apply_chat_template(conversation, tokenize=False))
                owners.append(i)
        values: list[float] = []
        for b in range(0, len(texts), self.batch_size):
            batch = tokenizer(texts[b:b + self.batch_size], return_tensors="pt", padding=True, truncation=True,
                              max_length=self.max_length).to(model.device)
            with torch.inference_mode():
                values += model(**batch).logits[:, 0].float().tolist()
        out: list[list[Score]] = [[] for _ in examples]
        for owner, value in zip(owners, values):
            out[owner].append(Score(value))
        return out
