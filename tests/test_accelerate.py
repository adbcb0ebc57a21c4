"""Multi-process training: `accelerate launch` with 2 CPU processes (gloo) runs real DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, write_recipe

RECIPE = """
name: ddp
model: {tiny}
data:
  sources: [{{source: countdown, kind: sft, n: 24, num_numbers: [2], max_number: 20, max_target: 40}}]
stages:
  - name: sft
    backend: trl_sft
    args: {{max_steps: 4, per_device_train_batch_size: 2, max_length: 256}}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_cpu_processes_train_one_checkpoint(tmp_path, workspace, tiny_model):
    path = write_recipe(tmp_path / "recipes", RECIPE.format(tiny=tiny_model), "ddp")
    env = os.environ.copy()
    subprocess.run([sys.executable, "-m", "harness", "data", str(path)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    accelerate = Path(sys.executable).parent / "accelerate"
    # CPU processes even on a GPU host (one GPU cannot hold two ranks), and a free rendezvous port
    # rather than the default 29500, which another job on the machine may hold
    env["CUDA_VISIBLE_DEVICES"] = ""
    out = subprocess.run([str(accelerate), "launch", "--config_file", "recipes/accelerate/ddp_cpu.yaml",
                          "--num_processes", "2", "--main_process_port", str(free_port()),
                          "-m", "harness", "run", str(path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    # 4 steps: past step 3, where the ranks agree on the resume-point schedule (a collective)
    assert "sft: rank 0/2 trained 4 steps" in out.stdout and "sft: rank 1/2 trained 4 steps" in out.stdout
    finals = list((workspace / "runs" / "ddp").glob("sft-*/final"))
    assert len(finals) == 1
    info = json.loads((finals[0] / "checkpoint.json").read_text())
    assert info["world_size"] == 2 and info["steps"] == 4
    assert not list(finals[0].parent.glob("checkpoint-*"))
