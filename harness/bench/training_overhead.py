"""`make bench` section: the harness's SFT stage against a plain TRL script on identical data and config
(`--section training_overhead` runs it alone), on whatever device is present.

Both sides train the same model folder (a random-init Llama with the SmolLM2 tokenizer, as the tests
use) on the same prepared dataset with the same stage args and seed:

- harness: `harness.train.trl_sft.train(job)` on a job built the way `harness run` builds it, so
  everything the harness adds (its config defaults, callbacks, resume points, the final checkpoint
  with its sidecar, model card and curves) is inside the timing;
- plain TRL: `SFTTrainer(model, args=SFTConfig(**stage args, seed, save_strategy="no"), ...)` (plus
  `use_cpu` where there is no GPU, as the harness sets it), then
  `trainer.train()` and `trainer.save_model()`, as a user without the harness would write it.

Each side's `trainer.train()` is wrapped with the same clock (wall and CPU timers and an on_step_end
timestamp callback), so the figures are: steady-state samples/s (the steps after the first fifth),
samples/s over the whole `train()` call (fixed costs included: dataloader and optimizer set-up,
checkpoint writes), the same per CPU-second (the cross-check on a shared machine, where other
processes stretch wall time much more than CPU time), and the whole stage's wall time. On a CPU,
torch runs one thread unless OMP_NUM_THREADS is set.

After a short, discarded warm-up of each side, the sides run in rounds, back to back, alternating
which goes first; each side's best of `repeats` is printed, and the headline is the median over
rounds of the within-round ratio, which load that comes and goes on a shared machine disturbs
least. One run of plain TRL with TRL's default `save_strategy` (which writes a `checkpoint-N` with
the optimizer state at the end of training, as the harness once did) shows what that write costs on
this device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

SIDES = ("harness", "plain TRL", "plain TRL, default save")

RECIPE = """
name: bench_training
seed: 0
model: {model}
data:
  sources: [{{source: countdown, kind: sft, n: 200, num_numbers: [2, 3], max_number: 30, seed: 7}}]
stages:
  - name: sft
    backend: trl_sft
    args: {{learning_rate: 1.0e-4, per_device_train_batch_size: {batch}, max_steps: {steps}, max_length: 256,
           gradient_checkpointing: false}}
"""


def random_llama(folder: Path, hidden: int, layers: int) -> str:
    """A random-init Llama with the embedded SmolLM2 tokenizer (49k vocabulary), saved to `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models import load_tokenizer
    from harness.recipe import ModelConfig

    tokenizer = load_tokenizer(ModelConfig())
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return str(folder)


@contextlib.contextmanager
def clocked_train(runs: list):
    """Wrap `SFTTrainer.train` (the same function on every side) with a timer and per-step timestamps."""
    from transformers import TrainerCallback
    from trl import SFTTrainer

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    own = "train" in SFTTrainer.__dict__
    original = SFTTrainer.train

    def train(trainer, *args, **kwargs):
        steps = StepTimes()
        trainer.add_callback(steps)
        start, cpu = time.perf_counter(), time.process_time()
        result = original(trainer, *args, **kwargs)
        _synchronize()
        a = trainer.args
        runs.append({"train_s": time.perf_counter() - start, "train_cpu_s": time.process_time() - cpu,
                     "step_ends": steps.ends,
                     "samples_per_step": a.per_device_train_batch_size * a.gradient_accumulation_steps * a.world_size,
                     "train_loss": result.training_loss, "device": str(a.device)})
        return result

    SFTTrainer.train = train
    try:
        yield
    finally:
        if own:
            SFTTrainer.train = original
        else:
            del SFTTrainer.train


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_trl(model: str, data_dir: Path, stage_args: dict, seed: int, out: Path, save_default: bool) -> None:
    """What a user writes without the harness: the same model, data and stage args, straight into TRL."""
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    import torch

    tokenizer = AutoTokenizer.from_pretrained(model)
    dataset = datasets.load_from_disk(str(data_dir / "dataset"))
    # TRL turns bf16 on by default, which a CPU-only machine refuses without `use_cpu`
    args = {**stage_args, "seed": seed, "output_dir": str(out), "use_cpu": not torch.cuda.is_available()}
    if not save_default:
        args["save_strategy"] = "no"
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model, dtype="auto"), args=SFTConfig(**args),
                         train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(out / "final"))


def steady_step_s(run: dict) -> float:
    """Seconds per optimizer step after the first fifth of the steps (warm-up, compilation)."""
    ends = run["step_ends"]
    skip = max(1, len(ends) // 5)
    return (ends[-1] - ends[skip - 1]) / (len(ends) - skip)


def training_overhead(steps: int = 8, batch: int = 2, repeats: int = 3, hidden: int = 64,
                      layers: int = 2) -> float:
    """Harness SFT stage vs plain TRL; returns the harness/plain ratio of samples/s over the whole `train()`
    call (median over rounds)."""
    from harness.recipe import load
    from harness.run import prepare_data
    from harness.stages import plan_stages, resolver
    from harness.train import trl_sft
    from harness.train.job import TrainJob

    import torch

    from harness import paths

    threads = torch.get_num_threads()
    if not torch.cuda.is_available() and "OMP_NUM_THREADS" not in os.environ:
        # one thread on a CPU unless OMP_NUM_THREADS says otherwise: on a shared 2-core machine two
        # threads ran a step of this model 4x slower than one, and their times varied far more
        torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} torch thread(s)"
    saved = {k: os.environ.get(k) for k in ("HARNESS_RUNS", "HARNESS_CARDS", "HARNESS_CACHE", "HARNESS_MODELS")}
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # everything in a temporary folder, except the converted tokenizer, which is reused
        os.environ.update({"HARNESS_RUNS": str(tmp / "runs"), "HARNESS_CARDS": str(tmp / "cards"),
                           "HARNESS_CACHE": str(tmp / "cache"), "HARNESS_MODELS": str(paths.models_root())})
        try:
            model = random_llama(tmp / "model", hidden, layers)
            (tmp / "recipes").mkdir()
            (tmp / "recipes" / "bench_training.yaml").write_text(
                RECIPE.format(model=model, batch=batch, steps=steps), encoding="utf-8")
            recipe = load(tmp / "recipes" / "bench_training.yaml")
            data_dir = prepare_data(recipe, log=lambda _: None)["sft"]
            plan = plan_stages(recipe)[0]
            job = TrainJob(recipe=recipe, stage=plan.stage, fingerprint=plan.fingerprint, data_dir=data_dir,
                           start=resolver([plan])(plan.start), parent=plan.parent, reference=None,
                           resolve=resolver([plan]), run_dir=plan.run_dir, log=lambda _: None)
            stage_args = dict(plan.stage.args)

            def once(side: str, k: int, max_steps: int = steps) -> dict:
                out = tmp / "out" / f"{side.replace(' ', '_').replace(',', '')}-{k}"
                args = {**stage_args, "max_steps": max_steps}
                start = time.perf_counter()
                with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink), \
                        contextlib.redirect_stderr(sink):
                    if side == "harness":
                        stage = dataclasses.replace(job.stage, args=args)
                        trl_sft.train(dataclasses.replace(job, stage=stage, run_dir=out))
                    else:
                        plain_trl(model, data_dir, args, recipe.seed, out, save_default=side != "plain TRL")
                stage_s = time.perf_counter() - start
                leftover = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and "final" not in f.parts)
                return {**clock[-1], "stage_s": stage_s, "leftover_bytes": leftover}

            clock: list[dict] = []
            with clocked_train(clock):
                for side in SIDES[:2]:  # a short warm-up of each: lazy imports, allocator, CUDA/BLAS handles
                    once(side, -1, max_steps=2)
                for k in range(repeats):
                    for side in (SIDES[:2] if k % 2 == 0 else SIDES[1::-1]):
                        runs[side].append(once(side, k))
                runs[SIDES[2]].append(once(SIDES[2], 0))  # once: only to show what that write costs
        finally:
            torch.set_num_threads(threads)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return report(runs, steps=steps, batch=batch, hidden=hidden, layers=layers, repeats=repeats, device=device)


def report(runs: dict[str, list[dict]], **setup) -> float:
    """Print each side's best figures beside plain TRL's; return the median over rounds of the harness/plain
    ratio of train() samples/s."""
    best = {}
    for side, rs in runs.items():
        per_step = rs[0]["samples_per_step"]
        samples = per_step * len(rs[0]["step_ends"])  # every run trains the same steps
        best[side] = {"steady": per_step / min(steady_step_s(r) for r in rs),
                      "train": samples / min(r["train_s"] for r in rs),
                      "cpu": samples / min(r["train_cpu_s"] for r in rs),
                      "stage_s": min(r["stage_s"] for r in rs),
                      "leftover": max(r["leftover_bytes"] for r in rs),
                      "losses": sorted({round(r["train_loss"], 6) for r in rs})}
    plain = best["plain TRL"]
    print(f"training overhead: SFT, random-init Llama (hidden {setup['hidden']}, {setup['layers']} layers, SmolLM2 "
          f"tokenizer), {setup['steps']} steps of batch {setup['batch']}, on {setup['device']} "
          f"({runs['harness'][0]['device']}); best of {setup['repeats']}, alternating; samples/s (x plain TRL)")
    for side, b in best.items():
        print(f"  {side:24s} steady {b['steady']:7.2f} ({b['steady'] / plain['steady']:.3f}x)  "
              f"train() {b['train']:7.2f} ({b['train'] / plain['train']:.3f}x)  "
              f"per CPU-second {b['cpu']:7.2f} ({b['cpu'] / plain['cpu']:.3f}x)  stage {b['stage_s']:6.2f}s  "
              f"left beside final/ {b['leftover'] / 1e6:6.1f} MB  train loss {b['losses']}")
        print(f"  {'':24s} train() of each run: " + ", ".join(f"{r['train_s']:.2f}" for r in runs[side]) + " s")
    ours = best["harness"]
    # each round ran the two sides back to back, so a round's ratio sees the same machine load on both
    paired = statistics.median(p["train_s"] / h["train_s"] for h, p in zip(runs["harness"], runs["plain TRL"]))
    print(f"  -> harness/plain TRL samples/s: train() {ours['train'] / plain['train']:.3f}x best, {paired:.3f}x "
          f"median of rounds; steady {ours['steady'] / plain['steady']:.3f}x; "
          f"per CPU-second {ours['cpu'] / plain['cpu']:.3f}x (target >= 0.97x)")
    return paired


def run(args) -> None:
    training_overhead(steps=args.train_steps, batch=args.train_batch, hidden=args.train_hidden,
                      layers=args.train_layers)
