"""Resume points: their schedule, no redundant end-of-training write, removal once final/ exists."""

from __future__ import annotations

import pytest
from conftest import write_recipe

from harness import checkpoint
from harness.recipe import load
from harness.run import run
from harness.train import resume_points

RECIPE = """
name: {name}
seed: 0
model: {tiny}
data:
  sources: [{{source: countdown, kind: sft, n: 24, num_numbers: [2], max_number: 20, max_target: 40}}]
stages:
  - name: sft
    backend: trl_sft
    {keep}
    args: {{max_length: 256, {args}}}
"""


def train(tmp_path, tiny_model, name, args, keep=""):
    text = RECIPE.format(name=name, tiny=tiny_model, args=args, keep=keep)
    lines = []
    final = run(load(write_recipe(tmp_path / "recipes", text, name)), log=lines.append)["sft"]
    return final, lines


def test_user_schedule_resume_points_are_removed_and_none_is_written_at_the_end(tmp_path, workspace, tiny_model):
    final, lines = train(tmp_path, tiny_model, "steps", "max_steps: 5, save_steps: 2, per_device_train_batch_size: 2")
    assert checkpoint.read(final)["steps"] == 5
    assert resume_points.checkpoints(final.parent) == []
    removed = [line for line in lines if "removed resume point" in line]
    # save_total_limit 1: checkpoint-2 made way for checkpoint-4; no checkpoint-5 beside final/
    assert len(removed) == 1 and "checkpoint-4 (" in removed[0] and "checkpoint-5" not in removed[0], removed


def test_epoch_schedule_skips_the_save_at_the_last_epoch(tmp_path, workspace, tiny_model):
    final, lines = train(tmp_path, tiny_model, "epochs", "num_train_epochs: 2, save_strategy: epoch, "
                                                         "per_device_train_batch_size: 6")
    steps = checkpoint.read(final)["steps"]
    assert steps % 2 == 0 and steps >= 4
    removed = [line for line in lines if "removed resume point" in line]
    assert len(removed) == 1 and f"checkpoint-{steps // 2} (" in removed[0], removed
    assert resume_points.checkpoints(final.parent) == []


def test_keep_checkpoints_keeps_every_resume_point_and_the_end_state(tmp_path, workspace, tiny_model, monkeypatch):
    # the harness's own schedule, with a zero interval: timed over steps 1-3, then a resume point every step
    monkeypatch.setattr(resume_points, "RESUME_EVERY_S", 0)
    final, lines = train(tmp_path, tiny_model, "keep", "max_steps: 6, per_device_train_batch_size: 2",
                        keep="keep_checkpoints: true")
    kept = resume_points.checkpoints(final.parent)
    assert [p.name for p in kept] == ["checkpoint-4", "checkpoint-5", "checkpoint-6"]
    for folder in kept:  # complete resume points, optimizer state included
        assert (folder / "trainer_state.json").is_file() and (folder / "optimizer.pt").is_file()
    assert not any("removed resume point" in line for line in lines)


def test_harness_schedule_removes_its_resume_points_too(tmp_path, workspace, tiny_model, monkeypatch):
    monkeypatch.setattr(resume_points, "RESUME_EVERY_S", 0)
    final, lines = train(tmp_path, tiny_model, "timed", "max_steps: 6, per_device_train_batch_size: 2")
    removed = [line for line in lines if "removed resume point" in line]
    assert len(removed) == 1 and "checkpoint-5 (" in removed[0], removed  # 4 and 5 written, 5 the newest
    assert resume_points.checkpoints(final.parent) == []


def test_a_rerun_removes_resume_points_left_by_a_crash_after_final(tmp_path, workspace, tiny_model):
    final, _ = train(tmp_path, tiny_model, "left", "max_steps: 3, per_device_train_batch_size: 2")
    left = final.parent / "checkpoint-2"  # as if the process died between final/ and the removal
    left.mkdir()
    (left / "trainer_state.json").write_text("{}", encoding="utf-8")
    again, lines = train(tmp_path, tiny_model, "left", "max_steps: 3, per_device_train_batch_size: 2")
    assert again == final and any("finished earlier" in line for line in lines)
    assert resume_points.checkpoints(final.parent) == []
    assert any("removed resume point checkpoint-2 (" in line for line in lines), lines


@pytest.mark.parametrize(("step_s", "interval_s", "expected"), [
    (0.1, 1800, 18000),   # a fast GPU step: a resume point every 30 minutes of training
    (700.0, 1800, 3),     # ceil, so the interval is never shorter than asked
    (5000.0, 1800, 1),    # a step longer than the interval: every step
    (0.5, 0, 1),
])
def test_steps_between_resume_points(step_s, interval_s, expected):
    assert resume_points.steps_until_next(step_s, interval_s) == expected


def test_schedule_and_retention_defaults_follow_the_stage(tmp_path, tiny_model):
    def stage(args, keep=""):
        text = RECIPE.format(name="d", tiny=tiny_model, args=args, keep=keep)
        return load(write_recipe(tmp_path / "recipes", text, "d")).stages[0]

    assert resume_points.config_defaults(stage("max_steps: 5")) == {"save_strategy": "no", "save_total_limit": 1}
    assert resume_points.config_defaults(stage("max_steps: 5, save_steps: 2")) == {"save_total_limit": 1}
    assert resume_points.config_defaults(stage("max_steps: 5", keep="keep_checkpoints: true")) == {
        "save_strategy": "no"}
    assert resume_points.config_defaults(stage("save_strategy: epoch", keep="keep_checkpoints: true")) == {}


def test_keep_checkpoints_must_be_a_boolean(tmp_path, tiny_model):
    from harness.errors import ConfigError

    text = RECIPE.format(name="b", tiny=tiny_model, args="max_steps: 5", keep="keep_checkpoints: often")
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        load(write_recipe(tmp_path / "recipes", text, "b"))
