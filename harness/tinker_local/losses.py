"""Target log-probabilities of a batch of datums, and Tinker's built-in losses over them.

Tinker's contract (docs "Loss functions"; SDK 0.38 `TrainingClient.forward_backward`): a
datum's `model_input` holds the input tokens and `loss_fn_inputs["target_tokens"]` the token
each position must predict (the inputs shifted by one), shape (N,) or (N, K) for top-K
targets. Built-in losses are computed per token and SUMMED over tokens and datums, with no
normalisation; the sum is reported as `metrics["loss:sum"]` and each datum's target logprobs
come back as `loss_fn_outputs[i]["logprobs"]`.
"""

from __future__ import annotations

from collections.abc import Callable

# rows * padded length per forward pass; bounds activation memory, not the result
TOKENS_PER_PASS = 2048


def datum_tokens(datum) -> tuple[list[int], object]:
    """(input token ids, target token tensor) of one datum, checked against each other."""
    tokens = datum.model_input.to_ints()
    if "target_tokens" not in datum.loss_fn_inputs:
        raise ValueError("datum has no loss_fn_inputs['target_tokens']; give the inputs shifted by one")
    targets = datum.loss_fn_inputs["target_tokens"].to_torch().long()
    if not tokens:
        raise ValueError("datum has an empty model_input")
    if targets.shape[0] != len(tokens):
        raise ValueError(f"target_tokens has {targets.shape[0]} positions but model_input has {len(tokens)} tokens; "
                         f"targets are the inputs shifted by one, one per input position")
    return tokens, targets


def chunks(data: list, limit: int = TOKENS_PER_PASS) -> list[list[int]]:
    """Consecutive index groups whose padded size (rows x longest) stays within `limit`."""
    groups, current, longest = [], [], 0
    for i, datum in enumerate(data):
        n = datum.model_input.length
        if current and max(longest, n) * (len(current) + 1) > limit:
            groups.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        groups.append(current)
    return groups


def target_logprobs(model, data: list, indices: list[int]) -> list:
    """log p(target | prefix) for the datums at `indices`, one tensor per datum shaped like its
    target_tokens; one right-padded forward pass (padding never reaches a real position under
    the causal mask)."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    rows = [datum_tokens(data[i]) for i in indices]
    longest = max(len(tokens) for tokens, _ in rows)
    ids = torch.zeros((len(rows), longest), dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for r, (tokens, _) in enumerate(rows):
        ids[r, :len(tokens)] = torch.tensor(tokens)
        mask[r, :len(tokens)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    out = []
    for r, (tokens, targets) in enumerate(rows):
        row = logits[r, :len(tokens)].float()
        targets = targets.to(device)
        if targets.dim() == 1:
            out.append(-F.cross_entropy(row, targets, reduction="none"))
        else:
            out.append(torch.log_softmax(row, dim=-1).gather(1, targets.reshape(len(tokens), -1))
                       .reshape(targets.shape))
    return out


def _input(datum, key: str, like, default=None):
    value = datum.loss_fn_inputs.get(key)
    if value is None:
        if default is None:
            raise ValueError(f"loss_fn_inputs['{key}'] is missing")
        return like.new_full(like.shape, float(default))
    tensor = value.to_torch().to(like.device, dtype=like.dtype)
    if tensor.shape != like.shape:
        raise ValueError(f"loss_fn_inputs['{key}'] has shape {list(tensor.shape)}, target_tokens {list(like.shape)}")
    return tensor


def cross_entropy(datum, logprobs, config):
    """sum(-logprobs * weights); weights default to 1 (docs: "Cross-Entropy")."""
    weights = _input(datum, "weights", logprobs, default=1.0)
    return -(logprobs * weights).sum()


def importance_sampling(datum, logprobs, config):
    """REINFORCE with an importance weight for the sampler/learner mismatch (docs: "Loss
    functions", importance_sampling): ratio = exp(logprobs - sampling logprobs), loss =
    -sum(ratio * advantages), summed over tokens. `loss_fn_inputs["logprobs"]` are the
    sampler's logprobs of the target tokens; prompt positions carry advantage 0."""
    import torch

    sampling = _input(datum, "logprobs", logprobs)
    advantages = _input(datum, "advantages", logprobs)
    ratio = torch.exp(logprobs - sampling)
    return -(ratio * advantages).sum()


LOSSES: dict[str, Callable] = {"cross_entropy": cross_entropy, "importance_sampling": importance_sampling}


def loss_function(name: str) -> Callable:
    if name not in LOSSES:
        from harness.errors import did_you_mean

        raise ValueError(f"loss_fn '{name}' is not implemented by the local Tinker service"
                         f"{did_you_mean(name, LOSSES)}; use forward_backward_custom for other losses")
    return LOSSES[name]


def run(model, data: list, per_datum_loss: Callable, *, backward: bool, config=None) -> tuple[list, float]:
    """Per-datum target logprobs (detached, CPU) and the summed loss; with `backward`, the
    gradient of that sum is added to the parameters' .grad (accumulating across calls)."""
    import contextlib

    import torch

    if not data:
        raise ValueError("No data provided")
    outputs: list = [None] * len(data)
    total = 0.0
    for indices in chunks(data):
        with contextlib.nullcontext() if backward else torch.no_grad():
            logprobs = target_logprobs(model, data, indices)
            loss = sum(per_datum_loss(i, data[i], lp, config) for i, lp in zip(indices, logprobs))
            if backward and loss.requires_grad:
                loss.backward()
        total += float(loss.detach())
        for i, lp in zip(indices, logprobs):
            outputs[i] = lp.detach().float().cpu()
    return outputs, total
