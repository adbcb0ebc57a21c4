"""What every TRL backend does the same way: config, model, data checks, NaN guard, resume, save.

Backends stay thin: each builds its trainer from these pieces and calls `fit`.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from harness import checkpoint
from harness.atomic import atomic_dir
from harness.errors import HarnessError, one_line
from harness.models import model_location
from harness.schema import plain
from harness.train import build_config, resume_points
from harness.train.lora import quantization_config


def load_data(job):
    """(dataset, manifest); fails before any model is loaded if the data cannot fill one batch."""
    import datasets

    manifest = json.loads((job.data_dir / "manifest.json").read_text(encoding="utf-8"))
    dataset = datasets.load_from_disk(str(job.data_dir / "dataset"))
    batch = int(job.stage.args.get("per_device_train_batch_size", 8))
    needed = prompts_per_batch(batch, job.stage.args.get("num_generations"))
    if len(dataset) < needed:
        raise HarnessError(f"stage '{job.stage.name}': {len(dataset)} training examples is fewer than one batch "
                           f"(per_device_train_batch_size={batch}); add data or lower the batch size")
    return dataset, manifest


def make_config(job, manifest: dict, **defaults):
    """The TRL config: the stage's `args` verbatim, plus what the harness owns.

    The harness sets `output_dir` (the fingerprinted run folder), and fills in, only
    where the recipe is silent: `seed` (the recipe seed), `report_to: none`,
    `logging_steps: 1`, `logging_nan_inf_filter: false` (so a NaN loss is seen, not
    averaged away), the resume-point schedule and retention (`resume_points`) and, in a
    terminal, `disable_tqdm` (TRL's rich progress replaces it). A curriculum in the data
    forces sequential order.
    """
    import torch

    args = {"seed": job.recipe.seed, "report_to": "none", "logging_steps": 1, "logging_nan_inf_filter": False,
            **resume_points.config_defaults(job.stage), **defaults, **plain(job.stage.args),
            "output_dir": str(job.run_dir)}
    if not torch.cuda.is_available():
        args.setdefault("use_cpu", True)
        args.setdefault("bf16", False)  # see cpu_precision
        cpu_precision(job, args["bf16"])
    if sys.stdout.isatty():  # rich progress in a terminal (see `fit`); plain lines in logs and CI
        args.setdefault("disable_tqdm", True)
    if manifest.get("order"):  # the HF sampler, and RLOO's own shuffling, must keep the stored order
        args["train_sampling_strategy"] = "sequential"
        if job.stage.backend == "trl_rloo":
            args["shuffle_dataset"] = False
        job.log(f"{job.stage.name}: data order set by {manifest['order']['step']}; training reads it in order")
    config = build_config(job.stage, **args)
    reached = curriculum_reach(config, manifest)
    if reached is not None and reached < manifest["rows"]:
        end = {"ascending": "shortest", "descending": "longest"}.get(manifest["order"].get("order"), "first")
        job.log(f"{job.stage.name}: warning: max_steps={config.max_steps} reads {reached} of {manifest['rows']} "
                f"rows in curriculum order (the {end} {reached / manifest['rows']:.0%} only); sample fewer rows "
                "or raise max_steps so training covers the whole curriculum")
    return config


def cpu_precision(job, bf16: bool) -> None:
    """Training on a CPU is 32-bit unless the recipe sets `bf16: true`.

    TRL defaults `bf16` to True, which on a CPU means bf16 autocast. Without AVX512-BF16 or AMX
    the CPU emulates bf16 matrix products: one SFT step of the embedded 135M model (batch 8,
    ~1,150 tokens) took 196 s under autocast and 14.6 s in fp32 on a 2-core AVX2 machine. fp32
    is also the same numerics on every CPU, so a CPU run reproduces on another CPU.
    """
    import torch

    if bf16 and not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        job.log(f"{job.stage.name}: warning: bf16 on a CPU without AVX512-BF16 or AMX is emulated and about "
                "13x slower than fp32; remove `bf16: true` from the stage's args to train in fp32")


def curriculum_reach(config, manifest: dict) -> int | None:
    """How many rows of an ordered dataset `max_steps` reaches; None without an order or a step cap.

    An ordered dataset truncated by `max_steps` trains on one end of the order only
    (e.g. only the shortest problems), a distribution shift that is easy to miss.
    """
    if not manifest.get("order") or config.max_steps <= 0:
        return None
    batch = config.per_device_train_batch_size * config.gradient_accumulation_steps * config.world_size
    return min(manifest["rows"], config.max_steps * prompts_per_batch(batch, getattr(config, "num_generations", None)))


def prompts_per_batch(batch: int, num_generations: int | None) -> int:
    """Dataset rows one batch reads: RLOO's batch counts completions, `num_generations` per prompt."""
    return max(1, batch // max(1, int(num_generations or 1)))


def load_tokenizer(job):
    from transformers import AutoTokenizer

    model_cfg = job.recipe.model
    source = model_location(model_cfg.tokenizer) if model_cfg.tokenizer else job.start
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as err:
        raise HarnessError(f"stage '{job.stage.name}': cannot load tokenizer '{source}' ({one_line(err)}); "
                           f"check the id or path, or download it once with network access") from None
    if model_cfg.chat_template:
        template = Path(model_cfg.chat_template)
        tokenizer.chat_template = template.read_text(encoding="utf-8") if template.is_file() else model_cfg.chat_template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(job, path: str, *, classifier: bool = False, tokenizer=None):
    """A causal LM (or a 1-label sequence classifier for reward models) from a path or hub id."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    model_cfg = job.recipe.model
    dtype = "auto" if model_cfg.dtype == "auto" else getattr(torch, model_cfg.dtype)
    kwargs = {"dtype": dtype, "quantization_config": quantization_config(model_cfg)}
    try:
        if classifier:
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **kwargs)
            if tokenizer is not None and model.config.pad_token_id is None:
                model.config.pad_token_id = tokenizer.pad_token_id
            return model
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        raise HarnessError(f"stage '{job.stage.name}': cannot load model '{path}' ({one_line(err)}); "
                           f"with no network it must be a local folder or already cached") from None


def nan_guard(stage_name: str):
    """A callback that stops training at the first NaN/inf loss, naming the step."""
    from transformers import TrainerCallback

    class NanGuard(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise HarnessError(f"stage '{stage_name}': loss is {loss} at step {state.global_step}; lower the "
                                   f"learning rate, check the data, or use bf16/fp32 instead of fp16")

    return NanGuard()


def fit(trainer, job, manifest: dict, curves: tuple[str, ...]) -> Path:
    """Train (resuming from the last checkpoint-N if one exists), write the final checkpoint, then
    remove the resume points it makes redundant (see `resume_points`)."""
    trainer.add_callback(resume_points.callback(job.stage))
    if trainer.args.disable_tqdm and sys.stdout.isatty():
        from transformers.trainer_callback import PrinterCallback
        from trl import RichProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(RichProgressCallback())
    resume = last_complete_checkpoint(job)
    if resume:
        job.log(f"{job.stage.name}: resuming from the last checkpoint, {resume.name}")
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    world = trainer.args.world_size
    job.log(f"{job.stage.name}: rank {trainer.args.process_index}/{world} trained {trainer.state.global_step} steps")
    if trainer.is_world_process_zero():
        _write_final(trainer, job, manifest, result, curves)
    trainer.accelerator.wait_for_everyone()  # the next stage may start from this folder on every rank
    if trainer.is_world_process_zero():
        resume_points.remove(job.run_dir, job.stage, job.log)
    return job.final_dir


def _write_final(trainer, job, manifest: dict, result, curves: tuple[str, ...]) -> None:
    model = trainer.model
    if hasattr(model, "merge_and_unload"):  # LoRA: the next stage starts from merged weights
        model = model.merge_and_unload()
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    last = next((e for e in reversed(trainer.state.log_history) if "loss" in e), {})
    metrics.update({k: v for k, v in last.items() if isinstance(v, (int, float)) and k not in metrics})
    with atomic_dir(job.final_dir) as tmp:
        model.save_pretrained(str(tmp))
        trainer.processing_class.save_pretrained(str(tmp))
        plot_curves(trainer.state.log_history, curves, tmp / "curves.png")
        info = sidecar(job, manifest, metrics, trainer.state.global_step)
        checkpoint.write(tmp, {**info, "world_size": trainer.args.world_size})
    job.log(f"{job.stage.name}: wrote {job.final_dir}")


def last_complete_checkpoint(job) -> Path | None:
    """The newest `checkpoint-N` with its trainer state written; a process killed while saving
    leaves a partial folder, which HF would pick (and fail on), so partial ones are removed."""
    import shutil

    found = resume_points.checkpoints(job.run_dir)
    complete = [p for p in found if (p / "trainer_state.json").is_file()]
    for partial in set(found) - set(complete):
        job.log(f"{job.stage.name}: removing {partial.name}, interrupted while saving")
        shutil.rmtree(partial, ignore_errors=True)
    return complete[-1] if complete else None


def sidecar(job, manifest: dict, metrics: dict, steps: int) -> dict:
    from harness.plan import recipe_fingerprint

    recipe = job.recipe
    return checkpoint.record(
        recipe=recipe.name, recipe_fingerprint=recipe_fingerprint(recipe), stage=job.stage.name,
        backend=job.stage.backend, fingerprint=job.fingerprint, parent=job.parent, start=job.start,
        reference=job.reference, base_model=recipe.model.name_or_path, seed=recipe.seed,
        data_fingerprint=manifest["data_fingerprint"], data_dir=str(job.data_dir), data_rows=manifest["rows"],
        data_sources=[s["label"] for s in manifest["sources"]], data_order=manifest.get("order"),
        lora=plain(recipe.model.lora), args=plain(job.stage.args), steps=steps, metrics=metrics)


def plot_curves(history: list[dict], keys: tuple[str, ...], path: Path) -> None:
    """Loss, reward and KL (whichever the trainer logged) against the step, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [k for k in keys if any(k in e for e in history)]
    fig, axes = plt.subplots(1, max(len(present), 1), figsize=(4 * max(len(present), 1), 3), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], present):
        points = [(e["step"], e[key]) for e in history if key in e and "step" in e]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        ax.set_title(key)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
