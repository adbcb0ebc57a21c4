"""Supervised fine-tuning on a Tinker engine (`trl_sft` stages under `engine: tinker | tinker_local`).

The loss is TRL's: `SFTTrainer` averages the token negative log-likelihood over every loss token of
the whole (accumulated) batch; Tinker's `cross_entropy` sums over tokens and datums, so each token's
weight is 1 / (loss tokens in the step's batch). One `forward_backward` per step, then one `optim_step`.
"""

from __future__ import annotations

from harness.train import tinker_data, tinker_engine as engine
from harness.train import trainer_setup as setup


def step_data(tokenizer, rows: list[dict], max_length: int | None):
    """The step's Datums, weighted so their summed cross-entropy is the batch's mean token loss, and the
    number of tokens sent."""
    examples = [tinker_data.sft_example(tokenizer, row, max_length) for row in rows]
    loss_tokens = sum(sum(mask[1:]) for _, mask in examples)
    scale = 1.0 / max(loss_tokens, 1)
    data = [tinker_data.datum(ids, [m * scale for m in mask[1:]]) for ids, mask in examples if len(ids) > 1]
    return data, sum(len(ids) for ids, _ in examples)


def run_step(session, data, tokens: int, step: int, schedule) -> float:
    """forward_backward (cross_entropy) then optim_step; returns the batch's mean token loss."""
    out = session.wait(lambda: session.training.forward_backward(data, "cross_entropy"), f"step {step + 1}: forward_backward")
    session.record("train", tokens)
    session.wait(lambda: session.training.optim_step(schedule.adam(step)), f"step {step + 1}: optim_step")
    return float(out.metrics["loss:sum"])


def train(job):
    rows, manifest = engine.load_rows(job)
    tokenizer = setup.load_tokenizer(job)
    schedule = engine.Schedule(job, len(rows))
    session = engine.Session(job)
    base, parent_state, _ = engine.start_points(job)
    first = session.start_training(base, parent_state)
    plan = engine.batches(len(rows), schedule, job.recipe.seed, bool(manifest.get("order")))
    for step in range(first, schedule.steps):
        data, tokens = step_data(tokenizer, [rows[i] for i in plan[step]], schedule.config.max_length)
        session.check_budget(step, {"train": tokens})
        loss = run_step(session, data, tokens, step, schedule)
        session.after_step({"loss": loss, "learning_rate": schedule.learning_rate(step)}, schedule.steps)
    return engine.finish(session, job, manifest, tokenizer, schedule.steps)
