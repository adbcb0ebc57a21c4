"""Log-probability of a response given its prompt under a causal LM, by a teacher-forced forward pass.

The prompt is rendered with the tokenizer's chat template (generation prompt on), the response
is everything the template adds after it for the assistant turn (the response and its end-of-turn
tokens), so a response is scored on exactly the tokens a DPO trainer would train on. Sequences are
sorted by length and run in right-padded batches; each row's log-softmax is taken only over its
response positions, so memory stays at one batch of logits. Used to rank candidates by how likely a
model finds them (the "most likely wrong" hard negative), and reusable for reference log-probs.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ResponseLogprob:
    total: float  # summed log-probability of the response tokens (nats)
    tokens: int   # how many tokens were scored

    @property
    def per_token(self) -> float:
        return self.total / self.tokens if self.tokens else 0.0


def encode(tokenizer, prompt: list[dict], response: str) -> tuple[list[int], int]:
    """(token ids of prompt + response, number of prompt tokens)."""
    prompt = [dict(m) for m in prompt]
    if getattr(tokenizer, "chat_template", None):
        prefix = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": response}], tokenize=False)
        prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        if len(full_ids) > len(prefix_ids) and full_ids[:len(prefix_ids)] == prefix_ids:
            return full_ids, len(prefix_ids)
    else:  # a base model without a template: the turns as plain text, a newline before the response
        prefix_ids = tokenizer("\n".join(m["content"] for m in prompt) + "\n")["input_ids"]
    # a template that rewrites earlier turns once a reply follows: score the response text as tokenized alone
    return list(prefix_ids) + tokenizer(response, add_special_tokens=False)["input_ids"], len(prefix_ids)


def response_logprobs(model, tokenizer, prompts: list[list[dict]], responses: list[str],
                      batch_size: int = 8) -> list[ResponseLogprob]:
    """The log-probability of each response given its prompt, in input order."""
    import torch

    encoded = [encode(tokenizer, p, r) for p, r in zip(prompts, responses)]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[ResponseLogprob | None] = [None] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        for b in range(0, len(order), batch_size):
            rows = order[b:b + batch_size]
            width = len(encoded[rows[0]][0])
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for k, i in enumerate(rows):
                seq = encoded[i][0]
                ids[k, :len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[k, :len(seq)] = 1
            with torch.inference_mode():
                logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
                for k, i in enumerate(rows):
                    seq, n_prompt = encoded[i]
                    start = max(n_prompt, 1)  # the first token of a sequence has no prediction
                    if start >= len(seq):
                        out[i] = ResponseLogprob(0.0, 0)
                        continue
                    targets = ids[k, start:len(seq)].to(logits.device)
                    logp = torch.log_softmax(logits[k, start - 1:len(seq) - 1].float(), dim=-1)
                    out[i] = ResponseLogprob(float(logp.gather(-1, targets[:, None]).sum()), len(seq) - start)
            del logits
    finally:
        model.train(was_training)
    return out
