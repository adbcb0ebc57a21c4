"""Supervised fine-tuning with `trl.SFTTrainer` on `messages` data."""

from __future__ import annotations

from harness.train import lora, trainer_setup as setup


def train(job):
    from trl import SFTTrainer

    dataset, manifest = setup.load_data(job)
    config = setup.make_config(job, manifest)
    tokenizer = setup.load_tokenizer(job)
    trainer = SFTTrainer(model=setup.load_model(job, job.start), args=config,
                         train_dataset=dataset, processing_class=tokenizer,
                         peft_config=lora.peft_config(job.recipe.model, "CAUSAL_LM"),
                         callbacks=[setup.nan_guard(job.stage.name)])
    return setup.fit(trainer, job, manifest, curves=("loss", "mean_token_accuracy", "grad_norm"))
