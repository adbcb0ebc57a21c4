"""Prepared rows -> the token ids, loss masks and `tinker.types.Datum`s the Tinker engine sends.

Tokenization is local, with the recipe model's HF tokenizer and chat template (never the SDK's
`get_tokenizer`, which downloads from the hub), and follows TRL's own preparation so that a recipe
trains on the same tokens under either engine:
- SFT (`messages`): `apply_chat_template(messages, tokenize=True)`, cut to `max_length` from the
  start; every token is a loss token, as in `SFTTrainer` with `assistant_only_loss=False`.
- DPO (`prompt`/`chosen`/`rejected`): the prompt with the generation prompt, prompt+chosen and
  prompt+rejected; the completion starts where the prompt and prompt+completion diverge
  (`trl.data_utils.common_prefix_length`); each sequence is cut to `max_length`.
- RL (`prompt`): the prompt with the generation prompt.
A Datum holds `tokens[:-1]` as input and `tokens[1:]` as `target_tokens`, with the loss mask shifted
the same way into `weights`.
"""

from __future__ import annotations


def chat_ids(tokenizer, messages, *, generation_prompt: bool = False) -> list[int]:
    out = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                        add_generation_prompt=generation_prompt)
    return list(out["input_ids"])


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def sft_example(tokenizer, row: dict, max_length: int | None) -> tuple[list[int], list[int]]:
    """(ids, loss mask) of one conversation."""
    ids = chat_ids(tokenizer, row["messages"])
    if max_length is not None:
        ids = ids[:max_length]
    return ids, [1] * len(ids)


def preference_example(tokenizer, row: dict, max_length: int | None) -> list[tuple[list[int], list[int]]]:
    """[(ids, completion mask) of prompt+chosen, (ids, mask) of prompt+rejected]."""
    prompt = chat_ids(tokenizer, row["prompt"], generation_prompt=True)
    chosen = chat_ids(tokenizer, list(row["prompt"]) + list(row["chosen"]))
    rejected = chat_ids(tokenizer, list(row["prompt"]) + list(row["rejected"]))
    start = min(common_prefix(prompt, chosen), common_prefix(prompt, rejected))
    out = []
    for ids in (chosen, rejected):
        mask = [0] * start + [1] * (len(ids) - start)
        if max_length is not None:
            ids, mask = ids[:max_length], mask[:max_length]
        out.append((ids, mask))
    return out


def kept_pairs(tokenizer, rows: list[dict], max_length: int | None) -> list[dict]:
    """The pairs TRL's DPOTrainer keeps: those whose prompt leaves room for a completion within `max_length`
    (it drops the others as fully truncated before training)."""
    if max_length is None:
        return rows
    out = []
    for row in rows:
        (ids, mask), _ = preference_example(tokenizer, row, None)
        if len(ids) - sum(mask) < max_length:
            out.append(row)
    return out


def prompt_ids(tokenizer, row: dict) -> list[int]:
    prompt = row["prompt"]
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    return chat_ids(tokenizer, prompt, generation_prompt=True)


def token_counts(tokenizer, row: dict, algorithm: str) -> dict:
    """Token counts of one prepared row, for cost estimates (see `harness.tinker_cost.estimate`)."""
    if algorithm == "sft":
        return {"total": len(chat_ids(tokenizer, row["messages"]))}
    if algorithm == "dpo":
        (chosen, cmask), (rejected, rmask) = preference_example(tokenizer, row, None)
        start = len(chosen) - sum(cmask)
        return {"prompt": start, "chosen": sum(cmask), "rejected": sum(rmask)}
    return {"prompt": len(prompt_ids(tokenizer, row))}


def datum(ids: list[int], weights: list[float] | None, **extra):
    """A next-token Datum: input `ids[:-1]`, targets `ids[1:]`, per-target `weights` (length len(ids)-1;
    None for losses that take none); `extra` per-target fields (RL: `logprobs`, `advantages`) are
    passed as loss_fn_inputs."""
    from tinker import types

    for name, values in {"weights": weights, **extra}.items():
        if values is not None and len(values) != len(ids) - 1:
            raise ValueError(f"{name} has {len(values)} entries for {len(ids) - 1} targets")
    inputs = {"target_tokens": list(ids[1:])}
    if weights is not None:
        inputs["weights"] = [float(w) for w in weights]
    inputs.update({k: [float(v) for v in values] for k, values in extra.items()})
    return types.Datum(model_input=types.ModelInput.from_ints(list(ids[:-1])), loss_fn_inputs=inputs)
