"""Training stages on a tiny random model: backends, chaining, lineage, reuse, order, guards."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
from conftest import write_recipe

from harness import checkpoint
from harness.errors import HarnessError
from harness.recipe import load
from harness.rewards import Reward
from harness.run import run

CHAIN = """
name: chain
seed: 0
model: {tiny}
stages:
  - name: sft
    backend: trl_sft
    data:
      sources: [{{source: countdown, kind: sft, n: 24, num_numbers: [2], max_number: 20, max_target: 40}}]
    args: {{max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 256}}
  - name: rm
    backend: trl_reward
    data:
      sources: [{{source: countdown, kind: preference, n: 24, num_numbers: [2], max_number: 20, max_target: 40}}]
    args: {{max_steps: 2, per_device_train_batch_size: 2, max_length: 256}}
  - name: dpo
    backend: trl_dpo
    init_from: sft
    data:
      sources: [{{source: countdown, kind: preference, n: 24, num_numbers: [2], max_number: 20, max_target: 40}}]
    args: {{max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 256}}
  - name: rloo
    backend: trl_rloo
    rewards:
      - {{reward: countdown, weight: 1.0}}
      - {{reward: reward_model, model: rm, weight: 0.5}}
    data:
      sources: [{{source: countdown, kind: prompt, n: 16, num_numbers: [2], max_number: 20, max_target: 40}}]
    args: {{max_steps: 2, per_device_train_batch_size: 2, num_generations: 2, max_completion_length: 8,
           learning_rate: 1.0e-3}}
"""


def weights(folder):
    from safetensors.numpy import load_file

    return load_file(str(folder) + "/model.safetensors")


def test_sft_reward_dpo_rloo_chain_with_lineage_and_reuse(tmp_path, workspace, tiny_model, monkeypatch):
    recipe = load(write_recipe(tmp_path / "recipes", CHAIN.format(tiny=tiny_model), "chain"))
    lines = []
    finals = run(recipe, log=lines.append)
    info = {name: checkpoint.read(folder) for name, folder in finals.items()}
    assert [info[n]["backend"] for n in ("sft", "rm", "dpo", "rloo")] == ["trl_sft", "trl_reward", "trl_dpo", "trl_rloo"]
    assert all(i["steps"] == 2 and i["metrics"]["loss"] == i["metrics"]["loss"] for i in info.values())
    # lineage: rm starts after sft (the previous stage), dpo from sft by init_from, rloo after dpo
    assert info["sft"]["parent"] == tiny_model
    assert info["rm"]["parent"] == info["sft"]["fingerprint"]
    assert info["dpo"]["parent"] == info["sft"]["fingerprint"]
    assert info["rloo"]["parent"] == info["dpo"]["fingerprint"]
    assert info["dpo"]["data_fingerprint"] != info["sft"]["data_fingerprint"]
    assert info["sft"]["libraries"]["trl"].startswith("1.16") and info["sft"]["seed"] == 0
    assert {"rewards/countdown/mean", "rewards/reward_model/mean"} <= set(info["rloo"]["metrics"])
    for folder in finals.values():
        assert (folder / "README.md").read_text().startswith("---\nbase_model:")
        assert not list(folder.parent.glob("checkpoint-*"))  # short runs write no resume point at all
        assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # training changed the weights, and each stage starts where its parent ended
    start, sft = weights(tiny_model), weights(finals["sft"])
    name = "model.layers.0.mlp.down_proj.weight"
    assert (abs(start[name] - sft[name]).max()) > 0
    assert not any("resume point" in line for line in lines)
    # a second run reuses every finished stage without training
    import harness.train.trainer_setup as setup

    monkeypatch.setattr(setup, "fit", lambda *a, **k: pytest.fail("a finished stage was retrained"))
    again = []
    assert run(recipe, log=again.append) == finals
    assert sum("finished earlier" in l for l in again) == 4


def test_changing_a_stage_retrains_it_and_later_stages_only(tmp_path, workspace, tiny_model):
    text = CHAIN.format(tiny=tiny_model)
    first = run(load(write_recipe(tmp_path / "recipes", text, "chain")), log=lambda _: None)
    changed = load(tmp_path / "recipes" / "chain.yaml", ("stages.2.args.learning_rate=5.0e-4",))
    lines = []
    second = run(changed, log=lines.append)
    assert second["sft"] == first["sft"] and second["rm"] == first["rm"]
    assert second["dpo"] != first["dpo"] and second["rloo"] != first["rloo"]
    assert sum("finished earlier" in l for l in lines) == 2


CURRICULUM = """
name: order
seed: 0
model: {tiny}
data:
  sources: [{{source: countdown, kind: sft, n: 12, num_numbers: [2, 3, 4]}}]
  steps: {steps}
stages:
  - name: sft
    backend: trl_sft
    args: {{max_steps: 12, per_device_train_batch_size: 1, max_length: 512}}
"""


def seen_order(tmp_path, tiny_model, steps, monkeypatch):
    """The user prompts of the examples SFT trained on, step by step."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    seen = []
    original = SFTTrainer.compute_loss

    def recording(self, model, inputs, *args, **kwargs):
        seen.append(tokenizer.decode(inputs["input_ids"][0]))
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(SFTTrainer, "compute_loss", recording)
    recipe = load(write_recipe(tmp_path / "recipes", CURRICULUM.format(tiny=tiny_model, steps=steps), "order"))
    finals = run(recipe, log=lambda _: None)
    import datasets

    info = checkpoint.read(finals["sft"])
    rows = datasets.load_from_disk(info["data_dir"] + "/dataset")
    numbers = [str(r["messages"][0]["content"].split("numbers ")[1].split("]")[0]) for r in rows]
    return [next(n for n in numbers if n in text) for text in seen], numbers


def test_curriculum_order_survives_into_training(tmp_path, workspace, tiny_model, monkeypatch):
    seen, stored = seen_order(tmp_path, tiny_model, "[{step: length_curriculum, order: descending}]", monkeypatch)
    assert len(seen) == 12 and seen == stored  # every example, in the stored (curriculum) order


def test_without_a_curriculum_training_shuffles(tmp_path, workspace, tiny_model, monkeypatch):
    seen, stored = seen_order(tmp_path, tiny_model, "[]", monkeypatch)
    assert sorted(seen) == sorted(stored) and seen != stored


def test_nan_loss_stops_with_the_step(tmp_path, workspace, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    broken = tmp_path / "nan-model"
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    model.save_pretrained(str(broken))
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(str(broken))
    text = CURRICULUM.format(tiny=broken, steps="[]")
    with pytest.raises(HarnessError, match=r"stage 'sft': loss is nan at step 1"):
        run(load(write_recipe(tmp_path / "recipes", text, "nan")), log=lambda _: None)


def test_too_little_data_fails_before_the_model_loads(tmp_path, workspace, tiny_model, monkeypatch):
    import harness.train.trainer_setup as setup

    monkeypatch.setattr(setup, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    text = CURRICULUM.format(tiny=tiny_model, steps="[]").replace("per_device_train_batch_size: 1",
                                                                  "per_device_train_batch_size: 64")
    with pytest.raises(HarnessError, match="12 training examples is fewer than one batch"):
        run(load(write_recipe(tmp_path / "recipes", text, "small")), log=lambda _: None)


def test_lora_stage_writes_merged_weights(tmp_path, workspace, tiny_model):
    text = CURRICULUM.format(tiny=tiny_model, steps="[]").replace(
        "model: " + tiny_model, "model: {name_or_path: %s, lora: {r: 4, lora_alpha: 8}}" % tiny_model)
    text = text.replace("max_steps: 12", "max_steps: 2, learning_rate: 1.0e-2")
    finals = run(load(write_recipe(tmp_path / "recipes", text, "lora")), log=lambda _: None)
    info = checkpoint.read(finals["sft"])
    assert info["lora"] == {"r": 4, "lora_alpha": 8}
    merged = weights(finals["sft"])
    assert not any("lora" in k for k in merged)  # plain weights: the next stage loads them directly
    start = weights(tiny_model)
    assert abs(merged["model.layers.0.self_attn.q_proj.weight"] - start["model.layers.0.self_attn.q_proj.weight"]).max() > 0


def test_qlora_on_cpu_is_refused_before_any_work(tmp_path, workspace, tiny_model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA host may run QLoRA; this checks the refusal on a machine without one")
    text = CURRICULUM.format(tiny=tiny_model, steps="[]").replace(
        "model: " + tiny_model, "model: {name_or_path: %s, lora: {r: 4}, qlora: true}" % tiny_model)
    with pytest.raises(HarnessError, match="model.qlora: 4-bit QLoRA needs a CUDA GPU"):
        run(load(write_recipe(tmp_path / "recipes", text, "qlora")), log=lambda _: None)
    assert not (workspace / "runs").exists()


def test_liger_kernel_without_its_package_fails_before_any_work(tmp_path, workspace, tiny_model):
    import importlib.util

    if importlib.util.find_spec("liger_kernel") is not None:
        pytest.skip("liger-kernel is installed here")
    text = CURRICULUM.format(tiny=tiny_model, steps="[]").replace("max_steps: 12",
                                                                  "max_steps: 12, use_liger_kernel: true")
    recipe = load(write_recipe(tmp_path / "recipes", text, "liger"))  # validation does not need the package
    with pytest.raises(HarnessError, match=r"stage 'sft': use_liger_kernel needs the liger-kernel package"):
        run(recipe, log=lambda _: None)
    assert not (workspace / "runs").exists()


def test_unreachable_hub_model_is_one_line(tmp_path, workspace, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = CURRICULUM.format(tiny="nobody/no-such-model-xyz", steps="[]")
    with pytest.raises(HarnessError) as err:
        run(load(write_recipe(tmp_path / "recipes", text, "hub")), log=lambda _: None)
    message = str(err.value)
    assert "nobody/no-such-model-xyz" in message and "network" in message and "\n" not in message


def test_embedded_default_is_converted_once_and_used_without_a_model_key(tmp_path, workspace):
    from harness.models import embedded_model_dir
    from harness.recipe import EMBEDDED_DEFAULT

    recipe = load(write_recipe(tmp_path / "recipes", "name: d\ndata:\n  sources: [countdown]\n", "d"))
    assert recipe.model.name_or_path == EMBEDDED_DEFAULT
    folder = embedded_model_dir(EMBEDDED_DEFAULT)
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert embedded_model_dir(EMBEDDED_DEFAULT) == folder and (folder / "config.json").stat().st_mtime_ns == stamp
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(folder))
    assert model.config.model_type == "llama"
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 134.5
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert "<|im_start|>" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


SEEN_IDS: list = []


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecordingReward(Reward):
    """Records the dataset `id` of every prompt RLOO scores (named as `test_train:RecordingReward`)."""

    name: ClassVar[str] = "recording"

    def make(self, resolve):
        def recording(completions, id, **_):
            SEEN_IDS.extend(id)
            return [0.0] * len(completions)
        return recording


def test_rloo_keeps_the_curriculum_order(tmp_path, workspace, tiny_model):
    text = f"""
name: rl_order
model: {tiny_model}
data:
  sources: [{{source: countdown, kind: prompt, n: 8, num_numbers: [2, 3, 4]}}]
  steps: [{{step: length_curriculum, order: descending, field: prompt}}]
stages:
  - name: rloo
    backend: trl_rloo
    rewards: [test_train:RecordingReward]
    args: {{max_steps: 4, per_device_train_batch_size: 2, num_generations: 2, max_completion_length: 4}}
"""
    SEEN_IDS.clear()
    finals = run(load(write_recipe(tmp_path / "recipes", text, "rl_order")), log=lambda _: None)
    import datasets

    stored = datasets.load_from_disk(checkpoint.read(finals["rloo"])["data_dir"] + "/dataset")["id"]
    prompts = [i for k, i in enumerate(SEEN_IDS) if k == 0 or SEEN_IDS[k - 1] != i]  # one per group
    assert len(prompts) == 4 and prompts == stored[:4]


def test_chat_template_override(tmp_path, tiny_model):
    from harness.train.job import TrainJob
    from harness.train.trainer_setup import load_tokenizer

    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")
    text = CURRICULUM.format(tiny=tiny_model, steps="[]").replace(
        "model: " + tiny_model, "model: {name_or_path: %s, chat_template: %s}" % (tiny_model, template))
    recipe = load(write_recipe(tmp_path / "recipes", text, "tpl"))
    job = TrainJob(recipe=recipe, stage=recipe.stages[0], fingerprint="x", data_dir=tmp_path, start=tiny_model,
                   parent=tiny_model, reference=None, resolve=str, run_dir=tmp_path / "run")
    rendered = load_tokenizer(job).apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered == "user: hi\n"


def test_bad_arg_values_fail_before_the_data_stage(tmp_path, workspace, tiny_model):
    text = CURRICULUM.format(tiny=tiny_model, steps="[]").replace("max_steps: 12", "max_steps: 12, lr_scheduler_type: wobbly")
    with pytest.raises(HarnessError, match="stage 'sft': SFTConfig rejected the args: .*wobbly"):
        run(load(write_recipe(tmp_path / "recipes", text, "badval")), log=lambda _: None)
    assert not (workspace / "runs").exists()


def test_missing_local_model_folder_is_named(tmp_path, workspace):
    text = CURRICULUM.format(tiny=tmp_path / "no-such-model", steps="[]")
    with pytest.raises(HarnessError, match=r"model '.*no-such-model': no such local folder"):
        run(load(write_recipe(tmp_path / "recipes", text, "missing")), log=lambda _: None)


def test_cpu_training_is_fp32_unless_the_recipe_sets_bf16(tmp_path, tiny_model, monkeypatch):
    """TRL's bf16 default is autocast, emulated (about 13x slower) on CPUs without native bf16."""
    import torch

    from harness.train.job import TrainJob
    from harness.train.trainer_setup import make_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)

    def config(args):
        text = CURRICULUM.format(tiny=tiny_model, steps="[]").replace("max_steps: 12", "max_steps: 12" + args)
        recipe = load(write_recipe(tmp_path / "recipes", text, "prec"))
        lines = []
        job = TrainJob(recipe=recipe, stage=recipe.stages[0], fingerprint="x", data_dir=tmp_path, start=tiny_model,
                       parent=tiny_model, reference=None, resolve=str, run_dir=tmp_path / "run", log=lines.append)
        return make_config(job, {"rows": 24}), lines

    silent, lines = config("")
    assert (silent.bf16, silent.use_cpu, lines) == (False, True, [])
    explicit, lines = config(", bf16: true")
    assert explicit.bf16 is True
    assert len(lines) == 1 and "bf16 on a CPU without AVX512-BF16 or AMX is emulated" in lines[0]


def test_the_cpu_precision_default_is_part_of_the_stage_fingerprint(tmp_path, tiny_model, monkeypatch):
    from harness import stages

    text = CURRICULUM.format(tiny=tiny_model, steps="[]")
    recipe = load(write_recipe(tmp_path / "recipes", text, "fp"))
    before = stages.plan_stages(recipe)[0].fingerprint
    monkeypatch.setattr(stages, "DEFAULTS_VERSION", stages.DEFAULTS_VERSION + 1)
    assert stages.plan_stages(recipe)[0].fingerprint != before
