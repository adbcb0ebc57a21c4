"""A learned reward: a sequence-classification checkpoint scores prompt + completion
(a `trl_reward` stage of the same recipe, or a hub/local model)."""

from __future__ import annotations

import dataclasses

from harness.rewards import REWARDS, Reward, completion_text
from harness.schema import param


@REWARDS.register()
@dataclasses.dataclass(frozen=True, kw_only=True)
class RewardModel(Reward):
    """Scores with a reward model; `model` is an earlier stage's name or a model id/path."""

    name = "reward_model"

    model: str = param(help="an earlier trl_reward stage, or a sequence-classification model id or path")
    batch_size: int = param(8, ge=1)
    max_length: int = param(1024, ge=8)

    def make(self, resolve):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve(self.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path).eval()

        def reward_model(prompts, completions, **_):
            texts = []
            for prompt, completion in zip(prompts, completions):
                if isinstance(prompt, list):
                    conversation = prompt + [{"role": "assistant", "content": completion_text(completion)}]
                    texts.append(tokenizer.apply_chat_template(conversation, tokenize=False))
                else:
                    texts.append(prompt + completion_text(completion))
            scores = []
            for i in range(0, len(texts), self.batch_size):
                batch = tokenizer(texts[i:i + self.batch_size], return_tensors="pt", padding=True,
                                  truncation=True, max_length=self.max_length)
                with torch.no_grad():
                    scores += model(**batch).logits[:, 0].float().tolist()
            return scores
        return reward_model
