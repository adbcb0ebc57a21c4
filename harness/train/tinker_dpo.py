"""Direct Preference Optimization (Rafailov et al., 2023) on a Tinker engine (`trl_dpo` stages).

The loss is TRL's `DPOTrainer` loss, computed client-side by `forward_backward_custom` over the
per-token log-probs of prompt+chosen and prompt+rejected (completion tokens only):
`sigmoid`: -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), averaged over a micro-batch's
pairs; `sft` (with `loss_type: [sigmoid, sft]`): the mean negative log-likelihood of the micro-batch's
chosen completion tokens; weighted by `loss_weights`; micro-batch losses averaged over the
`gradient_accumulation_steps`, as the HF Trainer does. The reference log-probs come from a sampling
client of the stage's start model (or `reference:`), computed with `compute_logprobs` before training.
A custom loss costs two passes on the service: the ledger counts its training tokens twice.
"""

from __future__ import annotations

from harness.train import tinker_data, tinker_engine as engine
from harness.train import trainer_setup as setup


def pair_data(tokenizer, rows: list[dict], max_length: int | None):
    """([chosen, rejected] Datums per pair, weights = completion mask), and the pairs' (ids, mask) lists."""
    sequences = []
    for row in rows:
        sequences += tinker_data.preference_example(tokenizer, row, max_length)
    data = [tinker_data.datum(ids, mask[1:]) for ids, mask in sequences]
    return data, sequences


def reference_logps(session, sampler, sequences, what: str) -> list[float]:
    """Sum of the reference model's log-probs over each sequence's completion tokens."""
    from tinker import types

    out = []
    for ids, mask in sequences:
        logprobs = session.wait(lambda: sampler.compute_logprobs(types.ModelInput.from_ints(ids)), what)
        session.record("prefill", len(ids))
        out.append(sum(lp for lp, m in zip(logprobs, mask) if m and lp is not None))
    return out


def dpo_loss(beta: float, losses: list[str], weights: list[float], ref: list[float], pairs_per_micro: int):
    """The custom loss: (data, per-datum log-prob tensors) -> (loss, metrics), TRL's DPO loss on a batch
    laid out [chosen_0, rejected_0, chosen_1, rejected_1, ...] with `ref` in the same order."""

    def loss_fn(data, logprobs_list):
        import torch
        import torch.nn.functional as F

        mask = [d.loss_fn_inputs["weights"].to_torch().to(logprobs_list[0].dtype) for d in data]
        logps = torch.stack([(lp * m).sum() for lp, m in zip(logprobs_list, mask)])
        ref_t = torch.tensor(ref, dtype=logps.dtype)
        chosen, rejected = logps[0::2], logps[1::2]
        delta = (chosen - ref_t[0::2]) - (rejected - ref_t[1::2])
        total = torch.zeros((), dtype=logps.dtype)
        pairs = len(chosen)
        micros = [range(i, min(i + pairs_per_micro, pairs)) for i in range(0, pairs, pairs_per_micro)]
        for micro in micros:
            idx = list(micro)
            part = torch.zeros((), dtype=logps.dtype)
            for name, weight in zip(losses, weights):
                if name == "sigmoid":
                    part = part + weight * (-F.logsigmoid(beta * delta[idx])).mean()
                elif name == "sft":
                    tokens = torch.cat([logprobs_list[2 * i][mask[2 * i] > 0] for i in idx])
                    part = part + weight * (-tokens.mean())
            total = total + part / len(micros)
        margins = (beta * delta).detach()
        metrics = {"loss": float(total.detach()), "margin": float(margins.mean()),
                   "accuracy": float((margins > 0).float().mean())}
        return total, metrics

    return loss_fn


def train(job):
    from harness.schema import plain

    rows, manifest = engine.load_rows(job)
    tokenizer = setup.load_tokenizer(job)
    schedule = engine.Schedule(job, len(rows))
    config = schedule.config
    kept = tinker_data.kept_pairs(tokenizer, rows, config.max_length)
    if len(kept) < len(rows):  # as DPOTrainer does; the schedule counts the rows that remain
        job.log(f"{job.stage.name}: dropped {len(rows) - len(kept)} of {len(rows)} pairs whose prompt fills "
                f"max_length={config.max_length} (fully truncated, as TRL drops them)")
        if len(kept) < schedule.rows_per_step:
            from harness.errors import HarnessError

            raise HarnessError(f"stage '{job.stage.name}': {len(kept)} pairs fit max_length={config.max_length}, "
                               f"fewer than one batch; raise max_length")
        rows = kept
        schedule = engine.Schedule(job, len(rows))
    session = engine.Session(job)
    base, parent_state, start_sampler = engine.start_points(job)
    reference = reference_sampler(session, job, start_sampler)
    first = session.start_training(base, parent_state)
    plan = engine.batches(len(rows), schedule, job.recipe.seed, bool(manifest.get("order")))
    losses = [config.loss_type] if isinstance(config.loss_type, str) else list(plain(config.loss_type))
    weights = list(config.loss_weights or [1.0] * len(losses))
    for step in range(first, schedule.steps):
        data, sequences = pair_data(tokenizer, [rows[i] for i in plan[step]], config.max_length)
        tokens = sum(len(ids) for ids, _ in sequences)
        session.check_budget(step, {"prefill": tokens, "train": 2 * tokens})
        ref = reference_logps(session, reference, sequences, f"step {step + 1}: reference log-probs")
        fn = dpo_loss(config.beta, losses, weights, ref, schedule.micro)
        out = session.wait(lambda: session.training.forward_backward_custom(data, fn),
                           f"step {step + 1}: forward_backward_custom")
        session.record("train", 2 * tokens)
        session.wait(lambda: session.training.optim_step(schedule.adam(step)), f"step {step + 1}: optim_step")
        metrics = {k: float(out.metrics[k]) for k in ("loss", "margin", "accuracy") if k in out.metrics}
        if "loss" not in metrics:
            metrics["loss"] = float(out.metrics.get("loss:sum", float("nan")))
        session.after_step({**metrics, "learning_rate": schedule.learning_rate(step)}, schedule.steps)
    return engine.finish(session, job, manifest, tokenizer, schedule.steps)


def reference_sampler(session, job, start_sampler: dict):
    """A sampling client of the reference: `reference:` (an earlier stage or a model) or the start model."""
    if job.reference:
        location = job.resolve(job.reference)
        from pathlib import Path

        from harness import checkpoint

        info = checkpoint.read(Path(location)) if Path(location).is_dir() else None
        if job.recipe.engine == "tinker" and info and info.get("tinker"):
            return session.sampler(model_path=info["tinker"]["weights"])
        return session.sampler(base_model=location if job.recipe.engine == "tinker_local" else job.reference)
    return session.sampler(**start_sampler)
