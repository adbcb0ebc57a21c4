"""The lm_eval runner on our offline `instruction_format` task, its scorer, and offline hub tasks."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.evaluate import EvalContext
from harness.evaluate.lm_eval import LmEvalTask, _number
from harness.evaluate.lm_eval_tasks import TASKS_DIR, _absolute_data_paths
from harness.recipe import load_suite

DATA = TASKS_DIR / "instruction_format.jsonl"


def scorer():
    spec = importlib.util.spec_from_file_location("instruction_format_scorer", TASKS_DIR / "instruction_format.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def docs() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines()]


# ---------------------------------------------------------------------- the scorer

def test_every_reference_reply_passes_its_own_check():
    fmt = scorer()
    rows = docs()
    assert 40 <= len(rows) <= 60 and len({r["id"] for r in rows}) == len(rows)
    assert {r["check"] for r in rows} == set(fmt.CHECKS)
    failing = [r["id"] for r in rows if not fmt.follows(r["check"], r["arg"], r["example"])]
    assert failing == []


@pytest.mark.parametrize("check,arg,good,bad", [
    ("lowercase_word", "", "blue.", "Blue"),
    ("lowercase_word", "", "  blue\n", "deep blue"),
    ("json_key", "city", '```json\n{"city": "Paris"}\n```', '{"town": "Paris"}'),
    ("json_key", "city", '{"city": null}', "city: Paris"),
    ("ends_with", "DONE", "Tea is warm. done!", "DONE. Tea is warm."),
    ("bullets", "3", "Fruits:\n- apple\n* pear\n- plum", "- apple\n- pear"),
    ("bullets", "2", "- a\n- b", "**a**\n**b**"),
    ("uppercase", "", "ROME!", "Rome"),
    ("max_words", "3", "Bees make honey", "Bees make sweet honey"),
    ("starts_with", "Once", "once upon a time", "Onceler was here"),
    ("starts_with", "Answer:", "Answer: 6", "The Answer: 6"),
    ("integer_only", "", "42", "42 days"),
    ("includes", "ocean", "The Ocean is deep.", "Oceans are deep."),
    ("numbered_list", "2", "1. bread\n2) toast", "1. bread\n2. toast\n3. jam"),
    ("no_commas", "", "Rain fell all day.", "Rain fell, all day."),
    ("quoted", "", '"Time flies."', 'He said "time flies".'),
])
def test_checks_pass_and_fail(check, arg, good, bad):
    fmt = scorer()
    assert fmt.follows(check, arg, good)
    assert not fmt.follows(check, arg, bad)


def test_empty_reply_never_passes_and_loose_forgives_a_preamble():
    fmt = scorer()
    assert not any(fmt.follows(check, "3", "   \n") for check in fmt.CHECKS)
    doc = {"check": "lowercase_word", "arg": ""}
    assert fmt.process_results(doc, ["Sure! Here it is:\nblue"]) == {"format_following": 0.0,
                                                                     "format_following_loose": 1.0}
    assert fmt.process_results(doc, ["**blue**"]) == {"format_following": 0.0, "format_following_loose": 1.0}
    assert fmt.process_results(doc, ["blue"]) == {"format_following": 1.0, "format_following_loose": 1.0}
    assert fmt.process_results(doc, ["It is blue"]) == {"format_following": 0.0, "format_following_loose": 0.0}


# ---------------------------------------------------------------------- the runner

def test_runner_on_tiny_model(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    runner = LmEvalTask(lm_task="instruction_format", limit=5, batch_size=4, max_new_tokens=8)
    lines: list[str] = []
    result = runner.evaluate(EvalContext(model_name=tiny_model, model=model, tokenizer=tok, log=lines.append))
    # generation progress reaches the log: the closing line counts every item
    assert lines and lines[-1].startswith("instruction_format: 5/5 items,") and "tokens/s" in lines[-1]

    assert list(result.metrics) == ["format_following", "format_following_loose"]
    assert result.item_ids == ["0", "1", "2", "3", "4"] and result.counts["items"] == 5
    for metric, value in result.metrics.items():
        scores = result.per_item[metric]
        assert len(scores) == 5 and value == pytest.approx(sum(scores) / 5)
    assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in result.stderr.values())
    assert set(result.stderr) == set(result.metrics)

    # provenance: task version, config hash, and the data file's own sha256
    assert result.version == "1.0"
    digest = hashlib.sha256(b"instruction_format.jsonl\0" + DATA.read_bytes()).hexdigest()[:16]
    assert result.data_hash == digest
    assert len(result.info["config_hash"]) == 16 and result.info["filter"] == "none"
    assert result.info["generation_kwargs"]["max_gen_toks"] == 8   # max_new_tokens overrides the YAML's 48
    assert result.info["primary_metric"] == runner.primary == "format_following"

    # every reported score is what the scorer says about the logged output
    fmt = scorer()
    rows = docs()
    for sample in result.samples:
        doc = rows[int(sample["id"])]
        assert sample["prompt"].rstrip().endswith("assistant") and doc["instruction"] in sample["prompt"]
        expected = fmt.process_results(doc, [sample["output"]])
        assert {m: sample[m] for m in expected} == expected
    assert result.counts["unparseable"] == sum(not s["output"].strip() for s in result.samples)

    assert result.throughput["examples_per_s"] > 0 and result.throughput["tokens_per_s"] > 0
    assert result.throughput["seconds"] <= result.throughput["wall_seconds"]


def test_batch_size_on_each_device():
    """The suite's CPU-sized batch on a CPU; on a GPU a fixed `gpu_batch_size`, else lm-eval's `auto`."""
    assert LmEvalTask(lm_task="instruction_format", batch_size=4).device_batch_size("cpu") == 4
    assert LmEvalTask(lm_task="instruction_format", batch_size=4).device_batch_size("cuda:0") == "auto"
    assert LmEvalTask(lm_task="instruction_format", batch_size=4, gpu_batch_size=96).device_batch_size("cuda") == 96


def test_items_are_the_task_docs():
    items = LmEvalTask(lm_task="instruction_format").items(EvalContext(model_name="none"))
    rows = docs()
    assert [i.id for i in items] == [str(k) for k in range(len(rows))]
    assert [(i.prompt, i.answer) for i in items] == [(r["instruction"], r["example"]) for r in rows]
    assert len(LmEvalTask(lm_task="instruction_format", limit=7).items(EvalContext(model_name="none"))) == 7


def test_builtin_task_offline_is_one_clear_line():
    runner = LmEvalTask(lm_task="gsm8k")
    with pytest.raises(HarnessError) as err:
        runner.evaluate(EvalContext(model_name="none"))
    message = str(err.value)
    assert "\n" not in message and "gsm8k" in message and "network" in message and "evals/tasks/" in message
    assert runner.items(EvalContext(model_name="none")) is None   # decontamination skips it, offline
    assert runner.primary == "exact_match"                       # read from lm-eval's YAML, no network


def test_wrong_metric_or_filter_fails_before_the_model_runs():
    with pytest.raises(HarnessError, match="reports format_following, format_following_loose, not 'accuracy'"):
        LmEvalTask(lm_task="instruction_format", metric="accuracy").evaluate(EvalContext(model_name="none"))
    with pytest.raises(HarnessError, match="no filter 'strict-match'"):
        LmEvalTask(lm_task="instruction_format", filter="strict-match").evaluate(EvalContext(model_name="none"))


def test_lm_eval_stderr_placeholders_become_none():
    assert _number("N/A") is None and _number(float("nan")) is None and _number(True) is None
    assert _number(0) == 0.0 and _number(0.25) == 0.25


def test_relative_data_paths_resolve_against_the_yaml(tmp_path):
    config = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "a.jsonl", "train": ["b.jsonl"]},
                                                         "data_dir": "/abs/dir"}}
    fixed = _absolute_data_paths(config, tmp_path)
    assert fixed["dataset_kwargs"]["data_files"] == {"test": str(tmp_path / "a.jsonl"),
                                                      "train": [str(tmp_path / "b.jsonl")]}
    assert fixed["dataset_kwargs"]["data_dir"] == "/abs/dir"
    assert config["dataset_kwargs"]["data_files"]["test"] == "a.jsonl"   # the input is left alone
    web = _absolute_data_paths({"dataset_kwargs": {"data_files": "hf://datasets/x/y.jsonl"}}, tmp_path)
    assert web["dataset_kwargs"]["data_files"] == "hf://datasets/x/y.jsonl"


def test_suite_entry_validates(tmp_path):
    path = tmp_path / "evals" / "format.yaml"
    path.parent.mkdir()
    path.write_text("name: format\ntasks:\n  - runner: lm_eval\n    lm_task: instruction_format\n"
                    "    limit: 50\n    index: [prompt, answer]\n")
    task = load_suite(path).tasks[0]
    assert isinstance(task, LmEvalTask) and task.task_name == "instruction_format" and task.apply_chat_template
    path.write_text("name: format\ntasks:\n  - runner: lm_eval\n    lm_tsk: instruction_format\n")
    with pytest.raises(HarnessError, match="lm_task"):
        load_suite(path)


def test_task_yaml_dir_is_not_a_suite_folder():
    assert Path(TASKS_DIR / "instruction_format.yaml").is_file()
    from harness.recipe import discover

    assert all("tasks" not in f.parts for _, f in discover([str(TASKS_DIR.parent)]))
