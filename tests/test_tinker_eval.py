"""Evaluating and exporting Tinker checkpoints, on the local implementation (no network, no key).

The central check: a `tinker://local/...` checkpoint evaluated through its sampler scores exactly
what the same weights score through the transformers path once exported and merged: the same
Countdown completions and accuracy, the same lm-eval generations, the same log-likelihoods and
is_greedy flags. Nothing here talks to the real service; the tests of real-service paths stop at
the key check or at a path the SDK refuses before any request.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from harness.cli import main

SUITE = """
name: tinker_parity
tasks:
  - runner: countdown
    n: 3
    num_numbers: [2]
    max_number: 20
    seed: 1234
    max_new_tokens: 12
    batch_size: 1
  - runner: lm_eval
    task: instruction_format
    lm_task: instruction_format
    limit: 2
    max_new_tokens: 6
    batch_size: 1
"""


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, tiny_model) -> tuple[Path, str]:
    """A local Tinker run on the tiny model: two AdamW steps of cross-entropy, so the LoRA weights
    are not the zero-initialised no-op; its sampler weights are saved as `eval`."""
    from tinker import types

    from harness.tinker_local import LocalServiceClient
    from harness.tinker_local.store import root

    cache = tmp_path_factory.mktemp("tinker-cache")
    before = os.environ.get("HARNESS_CACHE")
    os.environ["HARNESS_CACHE"] = str(cache)
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tiny_model)
        ids = tok("Using the numbers [3, 5], create an equation that equals 8. <answer>3 + 5</answer>")["input_ids"]
        datum = types.Datum(model_input=types.ModelInput.from_ints(ids[:-1]),
                            loss_fn_inputs={"target_tokens": ids[1:], "weights": [1.0] * (len(ids) - 1)})
        trainer = LocalServiceClient().create_lora_training_client(base_model=tiny_model, rank=4, seed=0).result()
        for _ in range(2):
            trainer.forward_backward([datum], "cross_entropy").result()
            trainer.optim_step(types.AdamParams(learning_rate=2e-2)).result()
        uri = trainer.save_weights_for_sampler("eval").result().path
        return root(), uri
    finally:
        if before is None:
            os.environ.pop("HARNESS_CACHE", None)
        else:
            os.environ["HARNESS_CACHE"] = before


@pytest.fixture
def local_uri(trained_store, workspace) -> str:
    """The trained checkpoint, copied into this test's own cache."""
    from harness.tinker_local.store import root

    source, uri = trained_store
    shutil.copytree(source, root(), dirs_exist_ok=True)
    return uri


def _suite(folder: Path) -> Path:
    path = folder / "tinker_parity.yaml"
    path.write_text(SUITE, encoding="utf-8")
    return path


def test_suite_on_a_local_tinker_checkpoint_scores_what_the_merged_weights_score(local_uri, workspace):
    from harness.evaluate import EvalContext
    from harness.evaluate.countdown import CountdownTask
    from harness.evaluate.generate import render
    from harness.evaluate.run import evaluate
    from harness.tinker_export import export

    merged = export(local_uri, workspace / "merged", merge=True, log=lambda _: None)
    suite = _suite(workspace)
    tinker = evaluate(local_uri, str(suite), log=lambda _: None)                    # published
    plain = evaluate(str(merged), str(suite), publish=False, log=lambda _: None)

    for name in ("countdown", "instruction_format"):
        a, b = tinker["tasks"][name], plain["tasks"][name]
        assert a["per_item"] == b["per_item"], name
        assert [s["output"] for s in a["samples"]] == [s["output"] for s in b["samples"]], name
        assert {m: e["value"] for m, e in a["metrics"].items()} == {m: e["value"] for m, e in b["metrics"].items()}
    assert len(tinker["tasks"]["countdown"]["samples"]) == 3
    assert any(s["output"] for s in tinker["tasks"]["countdown"]["samples"])   # something was generated
    assert tinker["environment"]["generation_backend"] == "tinker"
    assert plain["environment"]["generation_backend"] == "transformers"

    # the sampling ledger: one request per Countdown problem, its prompt tokens counted as rendered
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(merged))
    task = CountdownTask(n=3, num_numbers=(2,), max_number=20, seed=1234, max_new_tokens=12, batch_size=1)
    prompts = [render(tok, p["prompt"]) for p in task._problems(EvalContext(model_name="x"))]
    ledger = tinker["sampling"]
    row = ledger["tasks"]["countdown"]
    assert row["requests"] == 3
    assert row["prompt_tokens"] == sum(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    assert 3 <= row["sampled_tokens"] <= 3 * 12
    assert ledger["tasks"]["instruction_format"]["requests"] == 2
    assert ledger["prompt_tokens"] == row["prompt_tokens"] + ledger["tasks"]["instruction_format"]["prompt_tokens"]
    assert ledger["service"] == "local" and ledger["dollars"] == 0.0
    assert "sampling" not in plain

    # the published row carries the ledger and names the checkpoint by its URI
    board = json.loads((workspace / "leaderboard" / "leaderboard.json").read_text())
    (published,) = [r for b in board["boards"] for r in b["rows"] if r["run_id"] == tinker["run_id"]]
    assert published["sampling"]["prompt_tokens"] == ledger["prompt_tokens"]
    assert published["model"]["checkpoint"] == local_uri
    assert published["model"]["weight_hash"]   # the local store's adapter files


def test_loglikelihood_requests_match_hflm_on_the_merged_weights(local_uri, workspace):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from harness.evaluate.tinker_generate import TinkerGenerator
    from harness.evaluate.tinker_lm import TinkerLM
    from harness.evaluate.tinker_sampling import open_checkpoint
    from harness.tinker_export import export

    merged = export(local_uri, workspace / "merged", merge=True, log=lambda _: None)
    generator = TinkerGenerator(open_checkpoint(local_uri, log=lambda _: None), log=None)
    generator.task = "direct"
    tinker_lm = TinkerLM(generator, batch_size=2)
    tinker_lm.progress_log = None
    hf_lm = HFLM(pretrained=str(merged), batch_size=1, device="cpu")

    pairs = [("Question: 2 + 3 = ?\nAnswer:", " 5"), ("The sky is", " blue today"), ("", "hello world"),
             ("Using the numbers [3, 5], create an equation that equals 8.", " <answer>3 + 5</answer>")]
    requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]
    ours, theirs = tinker_lm.loglikelihood(requests), hf_lm.loglikelihood(requests)
    assert [g for _, g in ours] == [g for _, g in theirs]
    assert [lp for lp, _ in ours] == pytest.approx([lp for lp, _ in theirs], abs=1e-4)
    assert all(lp < 0 for lp, _ in ours)

    # is_greedy is honest: the model's own greedy continuation of a context is greedy by definition
    context = "The sky is"
    greedy_text = tinker_lm.generate_until([Instance("generate_until", {}, (context, {"until": [], "max_gen_toks": 3,
                                                                                       "do_sample": False}), 0)])[0]
    assert greedy_text == hf_lm.generate_until([Instance("generate_until", {}, (context, {
        "until": [], "max_gen_toks": 3, "do_sample": False}), 0)])[0]
    (logprob, greedy), = tinker_lm.loglikelihood([Instance("loglikelihood", {}, (context, greedy_text), 0)])
    if tinker_lm.tok_encode(context + greedy_text)[:len(tinker_lm.tok_encode(context))] == \
            tinker_lm.tok_encode(context):   # the text re-tokenizes to the same tokens
        assert greedy

    rolling = [Instance("loglikelihood_rolling", {}, ("a short document to score",), 0)]
    assert tinker_lm.loglikelihood_rolling(rolling) == pytest.approx(hf_lm.loglikelihood_rolling(rolling), abs=1e-4)
    assert generator.ledger.tasks["direct"]["requests"] > len(pairs)
    assert tinker_lm.top_k_prompt_logprobs is False   # the local sampler has no top-k: the fallback answered

    # the service's way (top-1 prompt log-probs in the scoring request) gives the same answers
    generator.sampler = TopOneSampler(generator.sampler)
    service_lm = TinkerLM(generator, batch_size=2)
    service_lm.progress_log = None
    before = generator.ledger.totals()["requests"]
    again = service_lm.loglikelihood(requests)
    assert [g for _, g in again] == [g for _, g in theirs]
    assert [lp for lp, _ in again] == pytest.approx([lp for lp, _ in theirs], abs=1e-4)
    assert service_lm.top_k_prompt_logprobs is True
    assert generator.ledger.totals()["requests"] - before == len(pairs)   # one request per pair


class TopOneSampler:
    """The local sampler, answering `topk_prompt_logprobs=1` as the service does (the argmax token and its
    log-prob at every prompt position, under the same weights), which the local implementation lacks."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def compute_logprobs(self, prompt, prompt_logprobs_last_n=None):
        return self.inner.compute_logprobs(prompt, prompt_logprobs_last_n=prompt_logprobs_last_n)

    def sample(self, prompt, num_samples, sampling_params, include_prompt_logprobs=False, topk_prompt_logprobs=0,
               prompt_logprobs_last_n=None, **kwargs):
        if not topk_prompt_logprobs:
            return self.inner.sample(prompt, num_samples, sampling_params, include_prompt_logprobs=include_prompt_logprobs,
                                     prompt_logprobs_last_n=prompt_logprobs_last_n, **kwargs)
        from harness.tinker_local import futures

        return futures.submit(self._top_one, prompt.to_ints(), prompt_logprobs_last_n)

    def _top_one(self, tokens, last_n):
        import torch
        from tinker import types

        with self.inner._weights() as model:
            logprobs = torch.log_softmax(model(input_ids=torch.tensor([tokens])).logits[0].float(), dim=-1)
        first = len(tokens) - last_n if last_n else 1
        scores = [None] * first + [float(logprobs[i - 1, tokens[i]]) for i in range(first, len(tokens))]
        top = [None] * first + [[(int(logprobs[i - 1].argmax()), float(logprobs[i - 1].max()))]
                                for i in range(first, len(tokens))]
        return types.SampleResponse(sequences=[], _prompt_logprobs_list=scores, _topk_prompt_logprobs_list=top)


def test_exported_adapter_is_a_peft_folder_that_computes_what_the_merge_computes(local_uri, workspace):
    import torch
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    from harness.models import missing_model_files
    from harness.tinker_local import local_path

    assert main(["export", local_uri, "--out", str(workspace / "adapter")]) == 0
    assert main(["export", local_uri, "--out", str(workspace / "merged"), "--merge"]) == 0
    adapter, merged = workspace / "adapter", workspace / "merged"
    assert (adapter / "adapter_model.safetensors").read_bytes() == \
        (local_path(local_uri) / "adapter_model.safetensors").read_bytes()
    provenance = json.loads((adapter / "export.json").read_text())
    assert provenance["source"] == local_uri and provenance["merged"] is False
    assert set(provenance["files"]) >= {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"}
    assert missing_model_files(merged) == [] and not (merged / "adapter_config.json").exists()
    assert json.loads((merged / "export.json").read_text())["merged"] is True

    ids = torch.tensor([[1, 42, 7, 99, 3]])
    with torch.no_grad():
        a = AutoPeftModelForCausalLM.from_pretrained(str(adapter)).eval()(input_ids=ids).logits
        b = AutoModelForCausalLM.from_pretrained(str(merged)).eval()(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(json.loads((adapter / "export.json").read_text())["base_model"])
        c = base.eval()(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-3)   # the adapter changes the model: the comparison means something

    # a folder that is not an earlier export is never replaced
    (workspace / "keep").mkdir()
    (workspace / "keep" / "notes.txt").write_text("mine")
    assert main(["export", local_uri, "--out", str(workspace / "keep")]) == 2
    assert (workspace / "keep" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("command", [["eval", "tinker://run-1/sampler_weights/final", "--no-publish"],
                                     ["export", "tinker://run-1/weights/final", "--out", "exported"]])
def test_real_service_checkpoint_without_a_key_is_one_line(command, workspace, monkeypatch, capsys):
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_CREDENTIAL_CMD", raising=False)
    monkeypatch.setenv("HOME", str(workspace))   # no ~/.tinker/credentials.json
    monkeypatch.chdir(workspace)
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TINKER_API_KEY" in err and command[1] in err
    monkeypatch.setenv("TINKER_API_KEY", "sk-not-a-tinker-key")
    assert main(command) == 2
    assert "tml-" in capsys.readouterr().err
    assert not (workspace / "exported").exists()


def test_sampler_weights_cannot_be_exported_and_the_error_names_the_path_to_use(capsys):
    assert main(["export", "tinker://run-7/sampler_weights/final", "--out", "x"]) == 2
    assert "tinker://run-7/weights/<name>" in capsys.readouterr().err


def test_waits_on_the_service_are_bounded():
    from concurrent.futures import Future

    from harness.errors import HarnessError
    from harness.evaluate.tinker_sampling import wait

    start = time.perf_counter()
    with pytest.raises(HarnessError, match="no answer after 0.2s"):
        wait(Future(), 0.2, "countdown: sampling")   # a future nobody completes
    assert time.perf_counter() - start < 5
    done = Future()
    done.set_result(7)
    assert wait(done, 0.2, "x") == 7


def test_a_remote_stage_folder_and_its_bare_uri_both_keep_the_run_lineage(local_uri, workspace):
    """A stage trained on the service leaves final/ with checkpoint.json (its tinker:// weights) and no
    weights: evaluating the folder, or the URI itself, samples from the URI and keeps the lineage."""
    from harness import checkpoint as ckpt
    from harness.evaluate.run import resolve_checkpoint
    from harness.paths import runs_root

    final = runs_root() / "recipe" / "sft-abc123" / "final"
    final.mkdir(parents=True)
    (final / "checkpoint.json").write_text(json.dumps({
        "recipe": "recipe", "stage": "sft", "backend": "trl_sft", "fingerprint": "abc123", "start": "base",
        "tinker": {"weights": local_uri, "state": local_uri.replace("/weights/", "/state/")}}))

    from_folder = resolve_checkpoint(str(final))
    assert from_folder.tinker == local_uri and from_folder.folder == final
    assert [info["stage"] for info in ckpt.lineage(from_folder.folder)] == ["sft"]

    from_uri = resolve_checkpoint(local_uri)
    assert from_uri.tinker == local_uri and from_uri.folder == final

    # a folder with its own weights (a local-engine stage: merged weights in final/) is evaluated as a model
    (final / "model.safetensors").write_bytes(b"")
    (final / "config.json").write_text("{}")
    (final / "tokenizer.json").write_text("{}")
    assert resolve_checkpoint(str(final)).tinker is None
