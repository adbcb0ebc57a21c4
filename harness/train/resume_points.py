"""Resume points: when a stage writes `checkpoint-N` folders, and when they are removed.

A resume point (model, optimizer, scheduler and RNG state) exists so that a killed
stage can continue instead of starting over. It costs a full write of the model and
its optimizer state (about 12 bytes a parameter in fp32 Adam: 1.6 GB for a 135M model,
about 12 GB for 1B), so it is written on a schedule proportionate to the run and kept
no longer than it is useful:

- **Schedule.** If the stage's `args` name `save_strategy` or `save_steps`, TRL's own
  schedule applies, verbatim. Otherwise the harness writes a resume point about every
  `RESUME_EVERY_S` seconds (30 minutes) of training: the step time is measured over the
  first steps (and again at each resume point), and the next resume point is placed
  that many steps later. A run shorter than that writes none (rerunning it costs less
  than saving it would); a long run loses at most about 30 minutes to a kill, and pays
  one write per 30 minutes for it. The step is agreed across processes (the slowest
  rank's time), so every rank saves at the same step, as DeepSpeed and FSDP require.
  Wall-clock intervals for checkpoints follow PyTorch Lightning's `train_time_interval`.
- **No end-of-training resume point.** The stage writes `final/` as soon as training
  ends; a `checkpoint-N` of the same weights written just before is redundant, so
  TRL's end-of-training save is skipped.
- **Retention.** Only the newest resume point stays on disk while training
  (`save_total_limit: 1` unless the args say otherwise), and it is removed once
  `final/` is complete.
- **Keeping them.** `keep_checkpoints: true` on the stage keeps every resume point TRL
  writes, plus one at the end of training (with the optimizer state, to continue
  training later), and removes nothing.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

#: the harness's default interval between resume points, in seconds of training
RESUME_EVERY_S = 30 * 60
#: steps timed before the first resume point is placed (the first step, with its warm-up, is not timed)
TIMED_STEPS = 2
#: TRL arguments that mean "the recipe chose the schedule"
SCHEDULE_ARGS = ("save_strategy", "save_steps")


def keeps(stage) -> bool:
    return bool(getattr(stage, "keep_checkpoints", False))


def harness_schedule(stage_args) -> bool:
    """True when the stage leaves the resume-point schedule to the harness."""
    return not any(key in stage_args for key in SCHEDULE_ARGS)


def config_defaults(stage) -> dict:
    """TRL arguments the harness fills in where the stage's `args` are silent."""
    defaults = {}
    if harness_schedule(stage.args):
        defaults["save_strategy"] = "no"  # TRL saves nothing by itself; the callback below places resume points
    if not keeps(stage):
        defaults["save_total_limit"] = 1
    return defaults


def steps_until_next(step_seconds: float, interval_s: float) -> int:
    """Optimizer steps from one resume point to the next: `interval_s` of training at `step_seconds` a step."""
    return max(1, math.ceil(interval_s / max(step_seconds, 1e-9)))


def slowest(value: float, device) -> float:
    """The largest `value` over all processes (a no-op in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    import torch

    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def callback(stage, interval_s: float | None = None):
    """The TrainerCallback that applies the schedule and skips the end-of-training save."""
    from transformers import TrainerCallback

    keep, timed = keeps(stage), harness_schedule(stage.args)
    every_s = RESUME_EVERY_S if interval_s is None else interval_s

    class ResumePoints(TrainerCallback):
        def __init__(self):
            self.window_start: float | None = None  # when the current timing window began ...
            self.window_step = 0                    # ... and at which optimizer step
            self.next_save: int | None = None       # where the next resume point goes (agreed by all ranks)

        def _place_next(self, args, step: int) -> None:
            seconds = (time.perf_counter() - self.window_start) / max(1, step - self.window_step)
            self.next_save = step + steps_until_next(slowest(seconds, args.device), every_s)

        def on_step_end(self, args, state, control, **kwargs):
            step, last = state.global_step, state.global_step >= state.max_steps
            if timed and not last:
                if self.window_start is None:  # the first step (warm-up, compilation) is not timed
                    self.window_start, self.window_step = time.perf_counter(), step
                elif self.next_save is None and step - self.window_step >= TIMED_STEPS:
                    self._place_next(args, step)
                elif self.next_save is not None and step >= self.next_save:
                    self._place_next(args, step)  # re-timed over the last window; on_save restarts it
                    control.should_save = True
            if last and not keep:
                control.should_save = False  # final/ is about to hold these very weights
            elif last and timed:
                control.should_save = True  # kept: the end state, optimizer included, to continue training later
            return control

        def on_epoch_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps and not keep:
                control.should_save = False  # `save_strategy: epoch` would save the final weights again
            return control

        def on_save(self, args, state, control, **kwargs):
            if self.window_start is not None:  # the save's own time is not a training step's
                self.window_start, self.window_step = time.perf_counter(), state.global_step
            return control

    return ResumePoints()


def checkpoints(run_dir: Path) -> list[Path]:
    """The `checkpoint-N` folders of a run folder, oldest step first."""
    found = [p for p in Path(run_dir).glob("checkpoint-*") if p.is_dir() and p.name[len("checkpoint-"):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len("checkpoint-"):]))


def remove(run_dir: Path, stage, log) -> None:
    """Remove the stage's resume points once its `final/` is complete (unless `keep_checkpoints`)."""
    if keeps(stage):
        return
    found = checkpoints(run_dir)
    if not found:
        return
    size = sum(f.stat().st_size for p in found for f in p.rglob("*") if f.is_file())
    for folder in found:
        shutil.rmtree(folder, ignore_errors=True)
    log(f"{stage.name}: removed resume point{'s' if len(found) > 1 else ''} "
        f"{', '.join(p.name for p in found)} ({size / 1e6:,.0f} MB): final/ is complete "
        "(set `keep_checkpoints: true` on the stage to keep them)")
