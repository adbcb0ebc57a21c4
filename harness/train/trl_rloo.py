"""REINFORCE Leave-One-Out (Ahmadian et al., 2024) with `trl.RLOOTrainer`.

Rewards come from the stage's `rewards:` list (harness/rewards); their weights
become RLOOConfig's `reward_weights`. Dataset columns such as `numbers`/`target`
reach the reward functions as keyword arguments.
"""

from __future__ import annotations

from harness.train import lora, trainer_setup as setup


def train(job):
    from trl import RLOOTrainer

    dataset, manifest = setup.load_data(job)
    rewards = job.stage.rewards
    config = setup.make_config(job, manifest, reward_weights=[r.weight for r in rewards])
    tokenizer = setup.load_tokenizer(job)
    trainer = RLOOTrainer(model=setup.load_model(job, job.start),
                          reward_funcs=[r.make(job.resolve) for r in rewards], args=config,
                          train_dataset=dataset, processing_class=tokenizer,
                          peft_config=lora.peft_config(job.recipe.model, "CAUSAL_LM"),
                          callbacks=[setup.nan_guard(job.stage.name)])
    return setup.fit(trainer, job, manifest, curves=("loss", "reward", "kl"))
