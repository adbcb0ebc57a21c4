"""Resume after `kill -9`: finished data and stages are reused, the killed stage continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, write_recipe

from harness import checkpoint

RECIPE = """
name: resume
seed: 0
model: {tiny}
data:
  sources: [{{source: countdown, kind: preference, n: 40, num_numbers: [2], max_number: 20, max_target: 40}}]
stages:
  - name: sft
    backend: trl_sft
    args: {{max_steps: 2, per_device_train_batch_size: 2, max_length: 256}}
  - name: dpo
    backend: trl_dpo
    args: {{max_steps: 12, per_device_train_batch_size: 2, save_steps: 2, max_length: 256}}
"""


def harness(log, *args):
    """The CLI in a child process, its output going to a file: a pipe nobody drains while the test
    polls would block the child once its logs filled the pipe's buffer (64 KiB)."""
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, text=True, env=os.environ.copy())


def test_kill_9_then_rerun_resumes(tmp_path, workspace, tiny_model):
    path = write_recipe(tmp_path / "recipes", RECIPE.format(tiny=tiny_model), "resume")
    log = tmp_path / "first.log"
    with open(log, "w", encoding="utf-8") as sink:
        first = harness(sink, "run", str(path))
    runs = workspace / "runs" / "resume"
    deadline = time.time() + 300
    while not list(runs.glob("dpo-*/checkpoint-4")):
        assert first.poll() is None, log.read_text(encoding="utf-8")
        assert time.time() < deadline, "no checkpoint appeared:\n" + log.read_text(encoding="utf-8")[-3000:]
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not list(runs.glob("dpo-*/final"))
    sft_final = next(runs.glob("sft-*/final"))
    sft_stamp = (sft_final / "checkpoint.json").stat().st_mtime_ns

    second = harness(subprocess.PIPE, "run", str(path))
    out, _ = second.communicate(timeout=600)  # drains the pipe while it waits
    assert second.returncode == 0, out
    assert "sft: finished earlier" in out and "dpo: resuming from the last checkpoint" in out
    assert "[cached]" in out and "wrote" not in out.split("dpo: resuming")[0].replace("reusing", "")
    resumed_at = int(out.split("resuming from the last checkpoint, checkpoint-")[1].split()[0])
    assert resumed_at >= 2  # checkpoint-4 may have been cut mid-write; then checkpoint-2 is used
    assert out.count("'loss':") == 12 - resumed_at  # it continued instead of starting over
    info = checkpoint.read(next(runs.glob("dpo-*/final")))
    assert info["steps"] == 12
    # the resume points served their purpose: none is left beside final/, and none was written at step 12
    assert not list(runs.glob("*/checkpoint-*"))
    assert "dpo: removed resume point checkpoint-10 (" in out
    assert (sft_final / "checkpoint.json").stat().st_mtime_ns == sft_stamp
