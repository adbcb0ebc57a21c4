"""The Tinker engine on the in-process implementation: SFT, DPO and RL end to end, parity with the TRL
engine, resume, budget refusal and stop, the ledger, the never-hang guards and argument checks."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import write_recipe

from harness import checkpoint
from harness.errors import HarnessError
from harness.recipe import load
from harness.run import run

SOURCE = "{source: countdown, kind: %s, n: %d, num_numbers: [2], max_number: 20, max_target: 40}"

CHAIN = """
name: tchain
seed: 0
engine: tinker_local
model: {name_or_path: TINY, lora: {r: 4}}
tinker: {save_every: 0}
stages:
  - name: sft
    backend: trl_sft
    data: {sources: [%s]}
    args: {max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 128,
           gradient_checkpointing: false}
  - name: dpo
    backend: trl_dpo
    data: {sources: [%s]}
    args: {max_steps: 2, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 128,
           loss_type: [sigmoid, sft], beta: 0.1}
  - name: rl
    backend: trl_rloo
    rewards: [countdown]
    data: {sources: [%s]}
    args: {max_steps: 2, per_device_train_batch_size: 4, num_generations: 2, max_completion_length: 8,
           learning_rate: 1.0e-3}
""" % (SOURCE % ("sft", 12), SOURCE % ("preference", 12), SOURCE % ("prompt", 8))


def chain_recipe(tmp_path, tiny_model, extra: str = "", name: str = "tchain"):
    return load(write_recipe(tmp_path / "recipes", CHAIN.replace("TINY", tiny_model) + extra, name))


def test_sft_dpo_rl_train_end_to_end_on_the_local_engine(tmp_path, tiny_model):
    recipe = chain_recipe(tmp_path, tiny_model)
    lines = []
    finals = run(recipe, log=lines.append)
    info = {name: checkpoint.read(folder) for name, folder in finals.items()}
    for name in ("sft", "dpo", "rl"):
        i = info[name]
        assert i["engine"] == "tinker_local" and i["steps"] == 2 and len(i["history"]) == 2
        assert i["tinker"]["state"].startswith("tinker://local/") and i["tinker"]["weights"].startswith("tinker://local/")
        assert i["tinker"]["rank"] == 4
        # a merged HF model the TRL engine, evaluation and later stages can load
        assert (finals[name] / "model.safetensors").is_file() and (finals[name] / "tokenizer.json").is_file()
        assert i["ledger"]["tokens"]["train"] > 0 and i["ledger"]["dollars"] == 0.0
        # what the same tokens would cost on the service, at the price table's local_equivalent model
        service = i["ledger"]["service_prices"]
        assert service["source"].startswith("as meta-llama/Llama-3.2-1B on the service")
        assert i["ledger"]["service_dollars"] == pytest.approx(
            sum(i["ledger"]["tokens"][k] * service[k] for k in ("prefill", "sample", "train")) / 1e6, abs=1e-6)
        assert i["ledger"]["service_dollars"] > 0
    assert info["sft"]["backend"] == "trl_sft" and info["dpo"]["parent"] == info["sft"]["fingerprint"]
    assert info["dpo"]["ledger"]["tokens"]["prefill"] > 0          # reference log-probs
    assert info["rl"]["ledger"]["tokens"]["sample"] > 0           # rollouts
    assert all(0.0 <= h["reward"] <= 1.0 for h in info["rl"]["history"])
    assert "tinker_train_tokens" in info["sft"]["metrics"]
    assert "| tinker_train_tokens |" in (finals["sft"] / "README.md").read_text()
    # each stage trains the model it starts from: sft's weights differ from the tiny base
    from safetensors.numpy import load_file

    base, sft = load_file(f"{tiny_model}/model.safetensors"), load_file(str(finals["sft"] / "model.safetensors"))
    key = "model.layers.0.self_attn.q_proj.weight"
    assert abs(base[key] - sft[key]).max() > 0
    # a rerun reuses the finished stages
    again = []
    run(recipe, log=again.append)
    assert sum("finished earlier" in line for line in again) == 3


# ----------------------------------------------------------------------------- parity with TRL

PARITY = """
name: parity
seed: 0
engine: ENGINE
model: {name_or_path: TINY, lora: {r: 4, lora_alpha: 32}}
stages:
  - name: s
    backend: BACKEND
    data: {sources: [SOURCE]}
    args: ARGS
"""
ROWS = 6


def parity_job(tmp_path, tiny_model, engine, backend, kind, args):
    """The recipe (on `engine`), the stage's prepared rows and a TrainJob for its one stage."""
    from harness.run import prepare_data
    from harness.stages import plan_stages, resolver
    from harness.train.job import TrainJob

    text = (PARITY.replace("ENGINE", engine).replace("TINY", tiny_model).replace("BACKEND", backend)
            .replace("SOURCE", SOURCE % (kind, ROWS)).replace("ARGS", args))
    recipe = load(write_recipe(tmp_path / "recipes", text, f"parity_{engine}"))
    data = prepare_data(recipe, log=lambda _: None)["s"]
    plan = plan_stages(recipe)[0]
    job = TrainJob(recipe=recipe, stage=plan.stage, fingerprint=plan.fingerprint, data_dir=data,
                   start=resolver([plan])(plan.start), parent=plan.parent, reference=None,
                   resolve=resolver([plan]), run_dir=plan.run_dir, log=lambda _: None)
    return recipe, job


def local_client_with_trl_init(tiny_model, trainer):
    """A local Tinker training client whose LoRA starts where the TRL trainer's does: the client's fresh
    adapter (saved through its own API, a PEFT folder) copied into the TRL model."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from harness.tinker_local import LocalServiceClient, local_path

    client = LocalServiceClient().create_lora_training_client(tiny_model, rank=4, seed=0, train_unembed=False).result()
    init = load_file(str(local_path(client.save_state("init").result().path) / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(trainer.model, init)
    assert not result.unexpected_keys  # the two adapters cover the same layers with the same shapes
    return client, init


def adapter_delta(before: dict, after: dict) -> dict:
    return {k: after[k].float() - before[k].float() for k in before}


def compare_updates(trl_delta: dict, tinker_delta: dict, lr: float) -> float:
    """Largest difference between the two one-step updates, in units of the learning rate."""
    assert set(trl_delta) == set(tinker_delta)
    return max(float((trl_delta[k] - tinker_delta[k]).abs().max()) for k in trl_delta) / lr


def trl_adapter(trainer) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(trainer.model).items()}


def test_sft_parity_with_trl_tokens_loss_and_update(tmp_path, tiny_model):
    """One SFT step of the same LoRA on the same rows: TRL's SFTTrainer against the Tinker engine."""
    import datasets
    from trl import SFTTrainer

    from harness.train import lora, tinker_engine, tinker_sft, trainer_setup as setup

    args = "{max_steps: 1, per_device_train_batch_size: %d, learning_rate: 1.0e-3, max_length: 64}" % ROWS
    recipe, job = parity_job(tmp_path, tiny_model, "trl", "trl_sft", "sft", args)
    rows = [dict(r) for r in datasets.load_from_disk(str(job.data_dir / "dataset"))]
    tokenizer = setup.load_tokenizer(job)
    trainer = SFTTrainer(model=setup.load_model(job, job.start), args=setup.make_config(job, {"order": None}),
                         train_dataset=datasets.load_from_disk(str(job.data_dir / "dataset")),
                         processing_class=tokenizer, peft_config=lora.peft_config(recipe.model, "CAUSAL_LM"))
    # 1. the tokens and loss mask the engine sends are what TRL trains on
    prepared = trainer.train_dataset
    for row, trl_row in zip(rows, prepared):
        ids, mask = tinker_engine_example = tinker_sft.tinker_data.sft_example(tokenizer, row, 64)
        assert ids == trl_row["input_ids"]
        assert mask == [int(label != -100) for label in trl_row["labels"]]
    assert any(len(r["input_ids"]) == 64 for r in prepared)  # truncation exercised
    client, init = local_client_with_trl_init(tiny_model, trainer)
    trainer.train()
    trl_loss = trainer.state.log_history[0]["loss"]
    trl_grad_norm = trainer.state.log_history[0]["grad_norm"]
    trl_delta = adapter_delta(init, trl_adapter(trainer))
    # 2. the engine's step on the same rows (all in one batch: the order does not matter)
    _, tjob = parity_job(tmp_path, tiny_model, "tinker_local", "trl_sft", "sft", args)
    schedule = tinker_engine.Schedule(tjob, ROWS)
    data, _ = tinker_sft.step_data(tokenizer, rows, 64)
    loss = float(client.forward_backward(data, "cross_entropy").result().metrics["loss:sum"])
    step = client.optim_step(schedule.adam(0)).result()
    from safetensors.torch import load_file

    from harness.tinker_local import local_path

    after = load_file(str(local_path(client.save_state("after").result().path) / "adapter_model.safetensors"))
    gap = compare_updates(trl_delta, adapter_delta(init, after), 1.0e-3)
    print(f"SFT parity: loss TRL {trl_loss:.6f} Tinker {loss:.6f}; grad norm TRL {trl_grad_norm:.6f} "
          f"Tinker {step.metrics['grad_norm']:.6f}; max update gap {gap:.2e} x lr")
    assert loss == pytest.approx(trl_loss, rel=1e-4)
    assert step.metrics["grad_norm"] == pytest.approx(trl_grad_norm, rel=1e-3)
    assert gap < 1e-2


def test_dpo_parity_with_trl_loss_and_update(tmp_path, tiny_model):
    """One DPO step (sigmoid + sft, two micro-batches) of the same LoRA: TRL's DPOTrainer against the engine's
    custom loss, with reference log-probs from a sampling client of the start model."""
    import datasets
    from trl import DPOTrainer

    from harness.tinker_local import LocalServiceClient, local_path
    from harness.train import lora, tinker_dpo, tinker_engine, trainer_setup as setup

    args = ("{max_steps: 1, per_device_train_batch_size: 2, gradient_accumulation_steps: 2, learning_rate: 1.0e-3,"
            " max_length: 118, beta: 0.5, loss_type: [sigmoid, sft]}")
    recipe, job = parity_job(tmp_path, tiny_model, "trl", "trl_dpo", "preference", args)
    rows = [dict(r) for r in datasets.load_from_disk(str(job.data_dir / "dataset"))]
    tokenizer = setup.load_tokenizer(job)
    config = setup.make_config(job, {"order": {"step": "test"}, "rows": ROWS})  # sequential: micro-batches in row order
    trainer = DPOTrainer(model=setup.load_model(job, job.start), args=config,
                         train_dataset=datasets.load_from_disk(str(job.data_dir / "dataset")),
                         processing_class=tokenizer, peft_config=lora.peft_config(recipe.model, "CAUSAL_LM"))
    # the engine keeps the pairs TRL keeps (a prompt that fills max_length leaves nothing to train on)
    kept = tinker_dpo.tinker_data.kept_pairs(tokenizer, rows, 118)
    print("DPO pairs kept at max_length 118:", len(kept), "of", len(rows))
    assert [r["id"] for r in kept] == list(trainer.train_dataset["id"])
    client, init = local_client_with_trl_init(tiny_model, trainer)
    trainer.train()
    trl_loss = trainer.state.log_history[0]["loss"]
    trl_grad_norm = trainer.state.log_history[0]["grad_norm"]
    trl_delta = adapter_delta(init, trl_adapter(trainer))
    rows = kept[:4]  # one step reads the first four, in order

    _, tjob = parity_job(tmp_path, tiny_model, "tinker_local", "trl_dpo", "preference", args)
    schedule = tinker_engine.Schedule(tjob, ROWS)
    data, sequences = tinker_dpo.pair_data(tokenizer, rows, 118)
    reference = LocalServiceClient().create_sampling_client(base_model=tiny_model).result()
    ref = []
    for ids, mask in sequences:
        lps = reference.compute_logprobs(__import__("tinker").types.ModelInput.from_ints(ids)).result()
        ref.append(sum(lp for lp, m in zip(lps, mask) if m))
    fn = tinker_dpo.dpo_loss(0.5, ["sigmoid", "sft"], [1.0, 1.0], ref, schedule.micro)
    out = client.forward_backward_custom(data, fn).result()
    step = client.optim_step(schedule.adam(0)).result()
    from safetensors.torch import load_file

    after = load_file(str(local_path(client.save_state("after").result().path) / "adapter_model.safetensors"))
    gap = compare_updates(trl_delta, adapter_delta(init, after), 1.0e-3)
    print(f"DPO parity: loss TRL {trl_loss:.6f} Tinker {out.metrics['loss']:.6f}; grad norm TRL "
          f"{trl_grad_norm:.6f} Tinker {step.metrics['grad_norm']:.6f}; max update gap {gap:.2e} x lr")
    assert out.metrics["loss"] == pytest.approx(trl_loss, rel=1e-4)
    assert step.metrics["grad_norm"] == pytest.approx(trl_grad_norm, rel=1e-3)
    assert gap < 1e-2


# ----------------------------------------------------------------------------- budget, resume, ledger

PRICED = """
tinker: {save_every: 0, prices: {TINY: {prefill: 1000.0, sample: 1000.0, train: 1000.0}}}
"""


def sft_only(tmp_path, tiny_model, budget: float, name: str = "tbudget"):
    text = CHAIN.replace("TINY", tiny_model).replace("tinker: {save_every: 0}\n", PRICED.replace("TINY", tiny_model))
    text = text[:text.index("  - name: dpo")] + f"budget_usd: {budget}\n"
    return load(write_recipe(tmp_path / "recipes", text, name))


def test_budget_refusal_stop_with_saved_state_then_resume(tmp_path, tiny_model):
    from harness.stages import plan_stages
    from harness.tinker_cost import stage_estimates

    recipe = sft_only(tmp_path, tiny_model, budget=0.3)
    # $1000 per million tokens: two steps of two short conversations cost about half a dollar
    with pytest.raises(HarnessError, match=r"budget_usd: the estimate .* over the budget of \$0.30.*--over-budget"):
        run(recipe, log=lambda _: None)
    plan = plan_stages(recipe)[0]
    assert not plan.run_dir.exists()  # refused before any training
    estimate = stage_estimates(recipe, [plan])[0]
    assert estimate["from_data"] and estimate["dollars"] == pytest.approx(estimate["tokens"]["train"] / 1000)
    # started anyway, it stops before the step that would pass the budget, its state saved
    lines = []
    with pytest.raises(HarnessError, match=r"stopped before step 2: the run has spent \$0.2\d+ of budget_usd \$0.3"):
        run(recipe, log=lines.append, over_budget=True)
    saved = json.loads((plan.run_dir / "tinker_state.json").read_text())
    assert saved["step"] == 1 and saved["state"].startswith("tinker://local/") and len(saved["history"]) == 1
    first_tokens = json.loads((plan.run_dir / "tinker_ledger.json").read_text())["tokens"]["train"]
    assert not checkpoint.read(plan.final_dir)
    # a rerun with more budget resumes from step 1 with the optimizer state, and completes the stage
    richer = sft_only(tmp_path, tiny_model, budget=10.0)
    assert plan_stages(richer)[0].run_dir == plan.run_dir  # the budget is not part of what is trained
    lines = []
    run(richer, log=lines.append)
    assert any("resuming from step 1" in line for line in lines)
    assert sum(": step " in line for line in lines) == 1  # only step 2 ran
    info = checkpoint.read(plan.final_dir)
    assert info["steps"] == 2 and [h["step"] for h in info["history"]] == [1, 2]
    ledger = info["ledger"]
    # the ledger counts the tokens the two steps sent (batches are seeded, so they can be rebuilt here)
    import datasets

    from harness.train import tinker_data, tinker_engine
    from harness.train.job import TrainJob

    data_dir = next((plan.run_dir.parent / "data").glob("*-sft"))
    rows = [dict(r) for r in datasets.load_from_disk(str(data_dir / "dataset"))]
    job = TrainJob(recipe=richer, stage=plan.stage, fingerprint=plan.fingerprint, data_dir=data_dir, start=tiny_model,
                   parent=plan.parent, reference=None, resolve=str, run_dir=plan.run_dir)
    schedule = tinker_engine.Schedule(job, len(rows))
    tokenizer = __import__("harness.models", fromlist=["load_tokenizer"]).load_tokenizer(richer.model)
    sent = [sum(len(tinker_data.sft_example(tokenizer, rows[i], 128)[0]) for i in batch)
            for batch in tinker_engine.batches(len(rows), schedule, 0, False)]
    assert first_tokens == sent[0] and ledger["tokens"]["train"] == sum(sent)
    assert abs(estimate["tokens"]["train"] - sum(sent)) <= 0.25 * sum(sent)  # the plan's estimate, any two rows
    assert ledger["dollars"] == pytest.approx(ledger["tokens"]["train"] * 1000 / 1e6)
    assert info["metrics"]["tinker_dollars"] == pytest.approx(ledger["dollars"])
    # the leaderboard row's lineage carries the engine and the ledger
    from harness.evaluate.run import lineage_entry

    entry = lineage_entry({**info, "checkpoint": str(plan.final_dir)})
    assert entry["engine"] == "tinker_local" and entry["ledger"]["tokens"]["train"] == ledger["tokens"]["train"]


# ----------------------------------------------------------------------------- never hang

def test_missing_or_malformed_key_is_one_line_at_once(tmp_path, tiny_model, monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_CREDENTIAL_CMD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.tinker/credentials.json
    text = CHAIN.replace("TINY", tiny_model).replace("engine: tinker_local", "engine: tinker")
    path = write_recipe(tmp_path / "recipes", text, "remote")
    recipe = load(path)
    started = time.perf_counter()
    with pytest.raises(HarnessError, match="engine tinker: no API key; set TINKER_API_KEY") as err:
        run(recipe, log=lambda _: None)
    assert time.perf_counter() - started < 1.0 and "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()  # before any data work
    monkeypatch.setenv("TINKER_API_KEY", "sk-not-a-tinker-key")
    with pytest.raises(HarnessError, match="does not look like a Tinker key"):
        run(recipe, log=lambda _: None)
    # the CLI: one line, exit code 2, no traceback
    env = {k: v for k, v in __import__("os").environ.items() if k != "TINKER_API_KEY"}
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(path)], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert [line for line in (done.stdout + done.stderr).splitlines() if "TINKER_API_KEY" in line] == \
        [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-1:]


class SlowService:
    """The local implementation, made slow: client creation blocks the calling thread (as the SDK's does
    against an unreachable service) until `release` is set or `delay` seconds pass, then fails.

    It never goes on to load a model: the abandoned thread would then load one while later tests
    load theirs, and transformers' loading patches `PreTrainedModel.tie_weights` on the class, so two
    loads at once can leave tied weights untied for the rest of the process."""

    def __init__(self, delay: float):
        from harness.tinker_local import LocalServiceClient

        self.inner, self.delay, self.release = LocalServiceClient(), delay, threading.Event()

    def create_lora_training_client(self, **kwargs):
        self.release.wait(self.delay)
        raise ConnectionError("the slow service never answered")

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_slow_blocking_calls_time_out_with_progress_and_a_clean_error(tmp_path, tiny_model):
    from harness.run import prepare_data
    from harness.stages import plan_stages, resolver
    from harness.tinker_clients import TinkerTimeout, bounded
    from harness.train import tinker_engine
    from harness.train.job import TrainJob

    text = CHAIN.replace("TINY", tiny_model).replace(
        "tinker: {save_every: 0}", "tinker: {save_every: 0, connect_timeout_s: 0.5, max_wait_s: 0.6, progress_every_s: 0.2}")
    recipe = load(write_recipe(tmp_path / "recipes", text[:text.index("  - name: dpo")], "slow"))
    plan = plan_stages(recipe)[0]
    lines = []
    job = TrainJob(recipe=recipe, stage=plan.stage, fingerprint=plan.fingerprint,
                   data_dir=prepare_data(recipe, log=lambda _: None)["sft"], start=resolver([plan])(plan.start),
                   parent=plan.parent, reference=None, resolve=resolver([plan]), run_dir=plan.run_dir,
                   log=lines.append)
    # a first local client outside any limit: the sub-second limits below then time the calls, not
    # the process's first import of peft and first load of the model
    tinker_engine.Session(job).service.create_lora_training_client(base_model=tiny_model, rank=4)
    # client creation that blocks its caller for 30 s is cut off at connect_timeout_s
    slow = SlowService(30.0)
    session = tinker_engine.Session(job, service=slow)
    started = time.perf_counter()
    with pytest.raises(TinkerTimeout, match=r"stage 'sft': tinker: creating the training client did not finish "
                                            r"in 0.5 s; raise tinker.max_wait_s"):
        session.start_training(job.start)
    assert time.perf_counter() - started < 2.0
    slow.release.set()
    assert any("still waiting on creating the training client after 0 s" in line for line in lines)
    # a future that never resolves (a billing pause, a capacity queue) stops at max_wait_s
    session = tinker_engine.Session(job)
    session.start_training(job.start)
    never = __import__("concurrent.futures").futures.Future()
    started = time.perf_counter()
    with pytest.raises(TinkerTimeout, match="step 1: forward_backward did not finish in 0.6 s"):
        session.wait(lambda: never, "step 1: forward_backward")
    assert 0.5 < time.perf_counter() - started < 2.0
    # errors inside the bounded call reach the caller unchanged
    with pytest.raises(ZeroDivisionError):
        bounded(lambda: 1 / 0, "dividing", 5.0)
    # nothing the timed-out calls left behind runs on into later tests
    never.cancel()
    for thread in threading.enumerate():
        if thread.name.startswith("tinker: "):
            thread.join(5.0)
            assert not thread.is_alive(), thread.name


def test_unsupported_args_and_backends_are_validation_errors(tmp_path, tiny_model):
    from harness.errors import ConfigError

    base = CHAIN.replace("TINY", tiny_model)
    cases = {
        "label_smoothing": (base.replace("loss_type: [sigmoid, sft]", "loss_type: [sigmoid, sft], label_smoothing: 0.1"),
                            r"stages.1.args.label_smoothing: 'label_smoothing' is not supported by engine tinker_local "
                            r"for trl_dpo"),
        "ipo": (base.replace("loss_type: [sigmoid, sft]", "loss_type: ipo"),
                r"stages.1.args.loss_type: engine tinker_local: loss_type 'ipo' is not supported"),
        "reward": (base.replace("backend: trl_dpo", "backend: trl_reward").replace(
            "           loss_type: [sigmoid, sft], beta: 0.1}", "           }").replace("learning_rate: 1.0e-3, max_length: 128,\n           }", "max_length: 128}"),
            r"stages.1.backend: backend trl_reward cannot run on engine tinker_local"),
        "alpha": (base.replace("lora: {r: 4}", "lora: {r: 4, lora_alpha: 16}"),
                  r"model.lora.lora_alpha: engine tinker_local fixes lora_alpha at 32"),
        "engine": (base.replace("engine: tinker_local", "engine: tinkr"), r"engine: .*tinker_local"),
    }
    for name, (text, message) in cases.items():
        with pytest.raises(ConfigError, match=message):
            load(write_recipe(tmp_path / "recipes", text, f"bad_{name}"))
    # local-compute args (gradient_checkpointing in CHAIN) are accepted, and the stage says it ignores them
    assert load(write_recipe(tmp_path / "recipes", base, "fine")).engine == "tinker_local"


def test_plan_prices_the_tinker_seed_offline(capsys):
    from harness.plan import show

    recipe = load("tulu3_olmo2_tinker")
    assert recipe.engine == "tinker" and recipe.budget_usd == 250
    show(recipe)
    out = capsys.readouterr().out
    assert "# cost on engine tinker (prices: https://thinkingmachines.ai/tinker/" in out
    # SFT: 1000 steps x 64 conversations x 2048 tokens at most, $0.40 per million training tokens (Qwen3-8B)
    assert "sft: prefill 0, sample 0, train 131,072,000 tokens (upper bound" in out and "$52.43" in out
    # DPO: 500 steps x 32 pairs x 2 sequences x 2048; reference prefill once, training twice (custom loss)
    assert "dpo: prefill 65,536,000, sample 0, train 131,072,000 tokens" in out
    assert "total to train: $113.38 of budget_usd $250.00" in out
    assert "could not check that it is served" in out
