"""Bradley-Terry reward model training (Ouyang et al., 2022) with `trl.RewardTrainer`.

The result is a one-label sequence classifier; a later `trl_rloo` stage can use it
through the `reward_model` reward by naming this stage.
"""

from __future__ import annotations

from harness.train import lora, trainer_setup as setup


def train(job):
    from trl import RewardTrainer

    dataset, manifest = setup.load_data(job)
    config = setup.make_config(job, manifest)
    tokenizer = setup.load_tokenizer(job)
    model = setup.load_model(job, job.start, classifier=True, tokenizer=tokenizer)
    trainer = RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                            peft_config=lora.peft_config(job.recipe.model, "SEQ_CLS"),
                            callbacks=[setup.nan_guard(job.stage.name)])
    return setup.fit(trainer, job, manifest, curves=("loss", "accuracy", "margin"))
