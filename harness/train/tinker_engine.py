"""What the Tinker backends share: argument checks, the session (clients, bounded calls, resume,
budget, ledger), the TRL-equivalent schedule, and the final checkpoint.

A recipe switches engines with one key (`engine: tinker` or `tinker_local`); its stages keep their
backends (`trl_sft`, `trl_dpo`, `trl_rloo`) and their TRL-named `args`, read through TRL's own
config classes so every default is TRL's (learning rate, AdamW betas and epsilon, weight decay,
gradient clipping at `max_grad_norm`, the scheduler and warmup). Tinker's service is LoRA-only:
the rank is the recipe's `model.lora.r` (Tinker's default, 32, without a `lora:` block); LoRA
covers attention and MLP, as PEFT's `all-linear` does for the TRL engine (`tinker.train_unembed`
adds the unembedding). Gradients accumulate over a whole step's batch in one `forward_backward`
call, then one `optim_step`; the learning-rate schedule is client-side.

Every blocking SDK call goes through `harness.tinker_clients.bounded`. State is saved every
`tinker.save_every` steps and its URI written to `<run_dir>/tinker_state.json`, so a rerun after a
crash, a timeout or a budget stop resumes from it with the optimizer state.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from harness import checkpoint
from harness.atomic import atomic_dir, write_text
from harness.errors import HarnessError

#: stage backend -> the algorithm the Tinker engine runs for it
ALGORITHMS = {"trl_sft": "sft", "trl_dpo": "dpo", "trl_rloo": "rl"}
MODULES = {"sft": "tinker_sft", "dpo": "tinker_dpo", "rl": "tinker_rloo"}

#: TRL args the engine honours, with TRL's meaning. Anything else in a stage's args is refused.
COMMON_ARGS = {"learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
               "max_steps", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps",
               "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "seed"}
#: TRL args about local compute only (precision, memory, kernels, logging, TRL's own checkpoints): they do not
#: change what is trained, the service decides them, so a recipe keeps them when it switches engine; the
#: stage says it ignores them.
IGNORED_ARGS = {"bf16", "fp16", "tf32", "use_cpu", "gradient_checkpointing", "gradient_checkpointing_kwargs",
                "use_liger_kernel", "torch_compile", "padding_free", "dataloader_num_workers",
                "dataloader_pin_memory", "disable_tqdm", "logging_steps", "logging_nan_inf_filter", "report_to",
                "run_name", "save_strategy", "save_steps", "save_total_limit", "ds3_gather_for_generation",
                "use_vllm", "vllm_mode", "optim"}
SUPPORTED_ARGS = {
    "sft": COMMON_ARGS | {"max_length", "assistant_only_loss", "completion_only_loss"},
    "dpo": COMMON_ARGS | {"beta", "loss_type", "loss_weights", "max_length"},
    "rl": COMMON_ARGS | {"num_generations", "max_completion_length", "temperature", "beta", "top_p"},
}
SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
DPO_LOSSES = ("sigmoid", "sft")
STATE_FILE = "tinker_state.json"
LEDGER_FILE = "tinker_ledger.json"


def recipe_problem(recipe) -> tuple[tuple, str] | None:
    """(key path, message) for the first part of a recipe the Tinker engine cannot honour, else None."""
    if recipe.engine == "trl":
        return None
    engine = recipe.engine
    if recipe.model.qlora:
        return ("model", "qlora"), f"engine {engine} trains LoRA on the service's weights; remove qlora"
    lora = dict(recipe.model.lora or {})
    for key in lora:
        if key not in ("r", "lora_alpha", "lora_dropout", "target_modules", "task_type"):
            return ("model", "lora", key), f"engine {engine} takes only the rank (`r`) of a LoRA config, not '{key}'"
    if lora.get("lora_alpha", 32) != 32:
        return ("model", "lora", "lora_alpha"), (f"engine {engine} fixes lora_alpha at 32 (LoRA Without Regret); "
                                                 "remove it or set 32")
    if lora.get("target_modules", "all-linear") != "all-linear":
        return ("model", "lora", "target_modules"), (f"engine {engine} trains attention and MLP layers "
                                                     "(all-linear); remove target_modules")
    if float(lora.get("lora_dropout", 0.0)) != 0.0:
        return ("model", "lora", "lora_dropout"), f"engine {engine} has no LoRA dropout; remove lora_dropout"
    for i, stage in enumerate(recipe.stages):
        algorithm = ALGORITHMS.get(stage.backend)
        if algorithm is None:
            return (("stages", i, "backend"), f"backend {stage.backend} cannot run on engine {engine}: a reward "
                    f"model's value head is not trainable through a LoRA language-model API; train it with "
                    f"`engine: trl` in a separate recipe and name it as a `reward_model` reward")
        for key, value in stage.args.items():
            if key == "optim" and not str(value).startswith("adamw"):
                return ("stages", i, "args", key), f"engine {engine} optimizes with AdamW; optim '{value}' is not available"
            if key not in SUPPORTED_ARGS[algorithm] and key not in IGNORED_ARGS:
                return ("stages", i, "args", key), (f"'{key}' is not supported by engine {engine} for "
                                                    f"{stage.backend}; supported: "
                                                    f"{', '.join(sorted(SUPPORTED_ARGS[algorithm]))}")
            problem = _value_problem(algorithm, key, value)
            if problem:
                return ("stages", i, "args", key), f"engine {engine}: {problem}"
        if stage.keep_checkpoints:
            return ("stages", i, "keep_checkpoints"), (f"engine {engine} keeps its saved states on the service; "
                                                       f"use tinker.save_every")
    return None


def _value_problem(algorithm: str, key: str, value) -> str | None:
    if key == "lr_scheduler_type" and value not in SCHEDULERS:
        return f"lr_scheduler_type '{value}' is not supported (use one of {', '.join(SCHEDULERS)})"
    if key == "assistant_only_loss" and value:
        return "assistant_only_loss: true is not supported; the engine trains on every token as TRL does by default"
    if key == "loss_type":
        losses = [value] if isinstance(value, str) else list(value)
        bad = [x for x in losses if x not in DPO_LOSSES]
        if bad or "sigmoid" not in losses:
            return f"loss_type {value!r} is not supported (use sigmoid or [sigmoid, sft])"
    return None


def ignored_args(stage) -> list[str]:
    return sorted(key for key in stage.args if key in IGNORED_ARGS)


def lora_rank(recipe) -> int:
    return int((recipe.model.lora or {}).get("r", 32))


# --------------------------------------------------------------------------- the schedule

class Schedule:
    """The TRL config of a stage (TRL's defaults included) and the learning rate at each step."""

    def __init__(self, job, rows: int):
        import tempfile

        from harness.schema import plain
        from harness.train import build_config

        args = {"seed": job.recipe.seed, **plain(job.stage.args)}
        with tempfile.TemporaryDirectory() as tmp:
            self.config = build_config(job.stage, **{"use_cpu": True, **args, "output_dir": tmp})
        c = self.config
        self.batch = c.per_device_train_batch_size * c.gradient_accumulation_steps
        self.micro = c.per_device_train_batch_size
        self.generations = int(getattr(c, "num_generations", None) or 1)
        self.rows_per_step = max(1, self.batch // self.generations)
        per_epoch = max(1, math.ceil(rows / self.rows_per_step))
        self.steps = c.max_steps if c.max_steps > 0 else max(1, math.ceil(c.num_train_epochs * per_epoch))
        self._lrs = self._learning_rates()

    def _learning_rates(self) -> list[float]:
        """The rate TRL's scheduler gives each step (transformers' own schedule functions)."""
        import torch
        from transformers import get_scheduler

        c = self.config
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=c.learning_rate)
        scheduler = get_scheduler(c.lr_scheduler_type, optimizer, num_warmup_steps=c.get_warmup_steps(self.steps),
                                  num_training_steps=self.steps, scheduler_specific_kwargs=c.lr_scheduler_kwargs or {})
        rates = []
        for _ in range(self.steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return rates

    def learning_rate(self, step: int) -> float:
        return self._lrs[step]

    def adam(self, step: int):
        from tinker import types

        c = self.config
        return types.AdamParams(learning_rate=self.learning_rate(step), beta1=c.adam_beta1, beta2=c.adam_beta2,
                                eps=c.adam_epsilon, weight_decay=c.weight_decay,
                                grad_clip_norm=float(c.max_grad_norm or 0.0))


def batches(rows: int, schedule: Schedule, seed: int, ordered: bool):
    """Row indices of each step's batch: epochs of the rows, shuffled per epoch by the seed unless the data
    carries an order (curriculum), then cut into steps; deterministic, so a resumed run reads the same ones."""
    order: list[int] = []
    epoch = 0
    need = schedule.steps * schedule.rows_per_step
    while len(order) < need:
        ids = list(range(rows))
        if not ordered:
            random.Random(f"{seed}:{epoch}").shuffle(ids)
        order += ids
        epoch += 1
    k = schedule.rows_per_step
    return [order[i * k:(i + 1) * k] for i in range(schedule.steps)]


# --------------------------------------------------------------------------- the session

class BudgetStop(HarnessError):
    """The stage stopped before a step that would take the run past `budget_usd`."""


class Session:
    """One stage's clients and bookkeeping: every SDK call bounded, tokens counted, state saved."""

    def __init__(self, job, service=None):
        from harness import tinker_clients, tinker_cost

        self.job, self.recipe, self.settings, self.log = job, job.recipe, job.recipe.tinker, job.log
        self.service = service or tinker_clients.service_client(self.recipe, log=self.log)
        self.ledger = tinker_cost.Ledger(job.run_dir / LEDGER_FILE, tinker_cost.prices_for(self.recipe),
                                         tinker_cost.service_equivalent(self.recipe))
        self.spent_before = spent_by_ancestors(job)
        self.state_file = job.run_dir / STATE_FILE
        self.saved = json.loads(self.state_file.read_text(encoding="utf-8")) if self.state_file.is_file() else None
        self.history: list[dict] = list((self.saved or {}).get("history", []))  # one entry per finished step
        self.training = None
        ignored = ignored_args(job.stage)
        if ignored:
            self.log(f"{job.stage.name}: engine {self.recipe.engine} ignores {', '.join(ignored)} (local compute "
                     f"settings; the service decides them)")

    # every blocking call goes through here
    def wait(self, make, what: str, timeout: float | None = None):
        """`make()` returns a future (or a value); wait for its result, bounded by tinker.max_wait_s."""
        from harness.tinker_clients import TinkerTimeout, bounded

        def call():
            out = make()
            return out.result() if hasattr(out, "result") else out

        limit = timeout or self.settings.max_wait_s
        try:
            return bounded(call, what, limit, log=self.log, progress_every_s=self.settings.progress_every_s,
                           fix=self._resume_hint(f"raise tinker.max_wait_s (now {limit:g} s) or retry later"))
        except TinkerTimeout as err:
            raise TinkerTimeout(f"stage '{self.job.stage.name}': {err}") from None

    def _resume_hint(self, first: str) -> str:
        saved = self.saved["state"] if self.saved else None
        return first + (f"; the rerun resumes from the last saved state {saved}" if saved else
                        "; nothing was saved yet, so a rerun starts the stage again")

    def start_training(self, base_model: str, parent_state: str | None = None) -> int:
        """The training client: resumed from the last saved state (returns its step), else a fresh LoRA on
        `base_model`, or (remote stage after a remote stage) the parent's weights with a fresh optimizer."""
        connect = self.settings.connect_timeout_s
        if self.saved:
            self.log(f"{self.job.stage.name}: resuming from step {self.saved['step']} ({self.saved['state']})")
            self.training = self.wait(lambda: self.service.create_training_client_from_state_with_optimizer(
                self.saved["state"]), "resuming the training client", connect)
            return int(self.saved["step"])
        if parent_state:
            self.training = self.wait(lambda: self.service.create_training_client_from_state(parent_state),
                                      "creating the training client from the parent stage", connect)
            return 0
        rank = lora_rank(self.recipe)
        if self.recipe.model.lora is None:
            self.log(f"{self.job.stage.name}: engine {self.recipe.engine} trains LoRA; rank {rank} (add "
                     f"model.lora.r to choose)")
        self.training = self.wait(lambda: self.service.create_lora_training_client(
            base_model=base_model, rank=rank, seed=self.recipe.seed, train_unembed=self.settings.train_unembed,
            user_metadata={"harness_stage": self.job.stage.name}), "creating the training client", connect)
        return 0

    def sampler(self, base_model: str | None = None, model_path: str | None = None):
        return self.wait(lambda: self.service.create_sampling_client(model_path=model_path, base_model=base_model),
                         "creating a sampling client", self.settings.connect_timeout_s)

    def check_budget(self, step: int, tokens: dict) -> None:
        """Stop (saving state first) when the next step would take the run past budget_usd."""
        budget = self.recipe.budget_usd
        if budget is None or self.ledger.prices is None:
            return
        spent = self.spent_before + (self.ledger.dollars or 0.0)
        upcoming = self.ledger.prices.dollars(tokens)
        if spent + upcoming <= budget:
            return
        uri = self.save_state(step) if step > (self.saved or {}).get("step", 0) else (self.saved or {}).get("state")
        self.ledger.save()
        raise BudgetStop(f"stage '{self.job.stage.name}': stopped before step {step + 1}: the run has spent "
                         f"${spent:.4f} of budget_usd ${budget:g} and the next step would cost about ${upcoming:.4f}; "
                         + (f"state saved at {uri}; " if uri else "")
                         + "raise budget_usd and rerun to continue")

    def record(self, kind: str, count: int) -> None:
        self.ledger.add(kind, count)

    def save_state(self, step: int) -> str:
        name = f"step-{step:06d}"
        answer = self.wait(lambda: self.training.save_state(name), f"saving state {name}")
        self.saved = {"state": answer.path, "step": step, "history": self.history[:step]}
        write_text(self.state_file, json.dumps(self.saved, indent=1))
        self.ledger.save()
        self.log(f"{self.job.stage.name}: saved state at step {step}: {answer.path}")
        return answer.path

    def after_step(self, metrics: dict, total: int) -> None:
        """Log a finished step, keep its metrics, save the ledger, and the state when it is due."""
        import math

        step_done = len(self.history) + 1
        self.history.append({"step": step_done, **metrics})
        loss = metrics.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise HarnessError(f"stage '{self.job.stage.name}': loss is {loss} at step {step_done}; lower the "
                               f"learning rate or check the data")
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != "learning_rate")
        self.log(f"{self.job.stage.name}: step {step_done}/{total}  {shown}")
        self.ledger.save()
        every = self.settings.save_every
        if every and step_done % every == 0 and step_done < total:
            self.save_state(step_done)


def spent_by_ancestors(job) -> float:
    """Dollars the stages this one descends from have spent (their checkpoints' ledgers)."""
    chain = checkpoint.lineage(Path(job.start)) if Path(str(job.start)).is_dir() else []
    return sum(float((info.get("ledger") or {}).get("dollars") or 0.0) for info in chain)


def parent_tinker(job) -> dict | None:
    """The `tinker` block of the parent checkpoint (a stage trained on a Tinker engine), if any."""
    info = checkpoint.read(Path(job.start)) if Path(str(job.start)).is_dir() else None
    return (info or {}).get("tinker")


def start_points(job) -> tuple[str, str | None, dict]:
    """(base model for a fresh LoRA, parent's training state to continue from, sampling-client kwargs for the
    stage's start model). Locally a parent's final/ is a merged HF folder: a new LoRA on it, as the TRL engine
    does. Remotely the parent's adapter is continued, and sampled from its saved weights."""
    parent = parent_tinker(job)
    if job.recipe.engine == "tinker" and parent:
        return parent["base_model"], parent["state"], {"model_path": parent["weights"]}
    if job.recipe.engine == "tinker":
        return job.recipe.model.name_or_path, None, {"base_model": job.recipe.model.name_or_path}
    return job.start, None, {"base_model": job.start}


def load_rows(job):
    """(rows as dicts, manifest); fails before any client is created when one step's batch cannot be filled."""
    from harness.train import trainer_setup as setup

    dataset, manifest = setup.load_data(job)
    return [dict(row) for row in dataset], manifest


def finish(session: Session, job, manifest: dict, tokenizer, steps: int) -> Path:
    """Save the final state and sampler weights; write final/ (checkpoint.json with the tinker:// paths,
    engine and ledger; locally also the merged HF model, so evaluation and later TRL stages can load it)."""
    from harness.train import trainer_setup as setup

    stage = job.stage.name
    history = session.history
    final_state = session.wait(lambda: session.training.save_state("final"), "saving the final state").path
    weights = session.wait(lambda: session.training.save_weights_for_sampler("final"),
                           "saving the final weights").path
    session.ledger.save()
    base, _, _ = start_points(job)
    metrics = {k: v for k, v in (history[-1] if history else {}).items() if isinstance(v, (int, float))}
    ledger = session.ledger.as_dict()
    metrics.update({f"tinker_{kind}_tokens": n for kind, n in ledger["tokens"].items()})
    if ledger["dollars"] is not None:
        metrics["tinker_dollars"] = ledger["dollars"]
    info = setup.sidecar(job, manifest, metrics, steps)
    parent = parent_tinker(job)
    info.update(engine=job.recipe.engine, ledger=ledger, history=history,
                tinker={"state": final_state, "weights": weights, "base_model": parent["base_model"]
                        if parent and job.recipe.engine == "tinker" else base, "rank": lora_rank(job.recipe)})
    with atomic_dir(job.final_dir) as tmp:
        if job.recipe.engine == "tinker_local":  # a merged HF model, so evaluation and TRL stages use it as is
            from harness.tinker_export import merge_adapter
            from harness.tinker_local import local_path

            merge_adapter(local_path(weights), base, tmp, log=lambda _: None)
        tokenizer.save_pretrained(str(tmp))
        setup.plot_curves(history, ("loss", "reward", "margin", "kl"),
                          tmp / "curves.png")
        checkpoint.write(tmp, info)
    job.log(f"{stage}: wrote {job.final_dir} ({len(history)} steps; {_spent(ledger)})")
    return job.final_dir


def _spent(ledger: dict) -> str:
    from harness.tinker_cost import format_tokens

    dollars, service = ledger["dollars"], ledger.get("service_dollars")
    return format_tokens(ledger["tokens"]) + (f", ${dollars:.4f}" if dollars is not None else ", no price") + (
        f"; ${service:.4f} {ledger['service_prices']['source']}" if service is not None else "")
