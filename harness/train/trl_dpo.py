"""Direct Preference Optimization (Rafailov et al., 2023) with `trl.DPOTrainer`.

The reference model is the stage's starting model unless `reference:` names an
earlier stage or a model id; with LoRA, TRL uses the adapter-free base as reference.
"""

from __future__ import annotations

from harness.train import lora, trainer_setup as setup


def train(job):
    from trl import DPOTrainer

    dataset, manifest = setup.load_data(job)
    config = setup.make_config(job, manifest)
    tokenizer = setup.load_tokenizer(job)
    reference = setup.load_model(job, job.resolve(job.reference)) if job.reference else None
    trainer = DPOTrainer(model=setup.load_model(job, job.start), ref_model=reference, args=config,
                         train_dataset=dataset, processing_class=tokenizer,
                         peft_config=lora.peft_config(job.recipe.model, "CAUSAL_LM"),
                         callbacks=[setup.nan_guard(job.stage.name)])
    return setup.fit(trainer, job, manifest, curves=("loss", "rewards/margins", "rewards/accuracies"))
