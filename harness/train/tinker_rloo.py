"""REINFORCE Leave-One-Out (Ahmadian et al., 2024) on a Tinker engine (`trl_rloo` stages).

Each step: sample `num_generations` completions per prompt from a sampling client of the current
weights (`save_weights_and_get_sampling_client`), score them with the stage's `rewards:` (the same
registry, hence the same functions, as the TRL engine), subtract `beta` times the sequence KL to the
start model (TRL's RLOO: first-order log-ratio summed over completion tokens, with the reference's
`compute_logprobs`), and take leave-one-out advantages within each prompt's group. The loss is
Tinker's `importance_sampling` with the sampler's log-probs; each completion token carries
advantage / (completions in the step), so the on-policy gradient equals that of TRL's per-sequence
loss averaged over the batch.
"""

from __future__ import annotations

from harness.train import tinker_data, tinker_engine as engine
from harness.train import trainer_setup as setup


def leave_one_out(rewards: list[float], group: int) -> list[float]:
    """r_i minus the mean of the other completions of the same prompt."""
    out = []
    for start in range(0, len(rewards), group):
        chunk = rewards[start:start + group]
        total = sum(chunk)
        out += [r - (total - r) / (len(chunk) - 1) if len(chunk) > 1 else 0.0 for r in chunk]
    return out


def weighted_reward(reward_fns, weights, completions, rows, prompts) -> list[float]:
    """Sum of weight * reward over the stage's rewards; dataset columns go in as keyword arguments."""
    columns = {key: [row[key] for row in rows] for key in rows[0] if key not in ("prompt",)}
    total = [0.0] * len(completions)
    for fn, weight in zip(reward_fns, weights):
        scores = fn(completions=completions, prompts=prompts, **columns)
        total = [t + weight * float(0.0 if s is None else s) for t, s in zip(total, scores)]
    return total


def train(job):
    from tinker import types

    rows, manifest = engine.load_rows(job)
    tokenizer = setup.load_tokenizer(job)
    schedule = engine.Schedule(job, len(rows))
    config = schedule.config
    session = engine.Session(job)
    base, parent_state, start_sampler = engine.start_points(job)
    reference = session.sampler(**start_sampler) if config.beta else None
    first = session.start_training(base, parent_state)
    plan = engine.batches(len(rows), schedule, job.recipe.seed, bool(manifest.get("order")))
    reward_fns = [r.make(job.resolve) for r in job.stage.rewards]
    reward_weights = [r.weight for r in job.stage.rewards]
    g = schedule.generations
    params = types.SamplingParams(max_tokens=config.max_completion_length, temperature=config.temperature,
                                  top_p=config.top_p, seed=job.recipe.seed)
    stop_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for step in range(first, schedule.steps):
        batch = [rows[i] for i in plan[step]]
        prompts = [tinker_data.prompt_ids(tokenizer, row) for row in batch]
        budget_tokens = sum(len(p) for p in prompts)
        session.check_budget(step, {"prefill": budget_tokens, "sample": g * len(batch) * config.max_completion_length,
                                    "train": g * (budget_tokens + len(batch) * config.max_completion_length)})
        sampler = session.wait(lambda: session.training.save_weights_and_get_sampling_client(),
                               f"step {step + 1}: sampler weights")
        samples = []  # (prompt index, completion tokens, completion logprobs)
        for p, ids in enumerate(prompts):
            answer = session.wait(lambda: sampler.sample(types.ModelInput.from_ints(ids), g, params),
                                  f"step {step + 1}: sampling")
            session.record("prefill", len(ids))
            for seq in answer.sequences:
                session.record("sample", len(seq.tokens))
                samples.append((p, list(seq.tokens), list(seq.logprobs or [0.0] * len(seq.tokens))))
        texts = [tokenizer.decode([t for t in tokens if t not in stop_ids], skip_special_tokens=True)
                 for _, tokens, _ in samples]
        conversational = not isinstance(batch[0]["prompt"], str)
        completions = [[{"role": "assistant", "content": t}] for t in texts] if conversational else texts
        per_sample_rows = [batch[p] for p, _, _ in samples]
        rewards = weighted_reward(reward_fns, reward_weights, completions, per_sample_rows,
                                  [row["prompt"] for row in per_sample_rows])
        kl = [0.0] * len(samples)
        if reference is not None:
            for k, (p, tokens, logprobs) in enumerate(samples):
                full = prompts[p] + tokens
                ref = session.wait(lambda: reference.compute_logprobs(types.ModelInput.from_ints(full)),
                                   f"step {step + 1}: reference log-probs")
                session.record("prefill", len(full))
                kl[k] = sum(lp - (r or 0.0) for lp, r in zip(logprobs, ref[len(prompts[p]):]))
        shaped = [r - config.beta * d for r, d in zip(rewards, kl)]
        advantages = leave_one_out(shaped, g)
        n = max(len(samples), 1)
        data, tokens_sent = [], 0
        for (p, tokens, logprobs), adv in zip(samples, advantages):
            if not tokens:
                continue
            full = prompts[p] + tokens
            pad = [0.0] * (len(prompts[p]) - 1)
            data.append(tinker_data.datum(full, None, logprobs=pad + logprobs,
                                          advantages=pad + [adv / n] * len(tokens)))
            tokens_sent += len(full)
        if data:
            session.wait(lambda: session.training.forward_backward(data, "importance_sampling"),
                         f"step {step + 1}: forward_backward")
            session.record("train", tokens_sent)
        session.wait(lambda: session.training.optim_step(schedule.adam(step)), f"step {step + 1}: optim_step")
        mean = sum(rewards) / n
        session.after_step({"reward": mean, "kl": sum(kl) / n, "learning_rate": schedule.learning_rate(step)}, schedule.steps)
    return engine.finish(session, job, manifest, tokenizer, schedule.steps)
