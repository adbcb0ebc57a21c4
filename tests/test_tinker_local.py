"""The local Tinker implementation against hand computations and the installed SDK's contract."""

from __future__ import annotations

import inspect
import urllib.request

import pytest

torch = pytest.importorskip("torch")
tinker = pytest.importorskip("tinker")
from tinker import types  # noqa: E402

from harness.errors import HarnessError  # noqa: E402
from harness.tinker_local import LocalServiceClient, local_path  # noqa: E402

PROMPT = [12, 345, 678, 91, 2345, 17, 980]
COMPLETION = [4321, 56, 789, 1011, 1213, 31, 415]


def datum(tokens, weights=None, **inputs):
    loss_fn_inputs = {"target_tokens": tokens[1:], **inputs}
    if weights is not None:
        loss_fn_inputs["weights"] = weights
    return types.Datum(model_input=types.ModelInput.from_ints(tokens[:-1]), loss_fn_inputs=loss_fn_inputs)


def sft_datum(prompt=PROMPT, completion=COMPLETION):
    tokens = prompt + completion
    return datum(tokens, [0.0] * (len(prompt) - 1) + [1.0] * len(completion))


def new_client(tiny_model, seed=0, rank=4):
    return LocalServiceClient().create_lora_training_client(tiny_model, rank=rank, seed=seed).result(timeout=120)


def lora_params(client) -> dict:
    return {k: v.detach().clone() for k, v in client.params.items()}


def grads(client) -> dict:
    return {k: (v.grad.detach().clone() if v.grad is not None else torch.zeros_like(v)) for k, v in client.params.items()}


def base_logprobs(tiny_model, tokens):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        logits = model(torch.tensor([tokens[:-1]])).logits[0].float()
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(tokens[1:])[:, None])[:, 0]


def test_cross_entropy_is_the_weighted_sum_of_base_model_logprobs(tiny_model):
    client = new_client(tiny_model)
    first, second = sft_datum(), sft_datum(PROMPT[:4], COMPLETION[:3])
    out = client.forward_backward([first, second], "cross_entropy").result(timeout=60)
    expected, expected_lps = 0.0, []
    for d in (first, second):
        tokens = d.model_input.to_ints() + [d.loss_fn_inputs["target_tokens"].tolist()[-1]]
        lp = base_logprobs(tiny_model, tokens)  # B = 0 at init: the adapter leaves the base model's outputs
        expected += float(-(lp * d.loss_fn_inputs["weights"].to_torch()).sum())
        expected_lps.append(lp)
    assert out.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    assert len(out.loss_fn_outputs) == 2
    for output, lp in zip(out.loss_fn_outputs, expected_lps):
        assert output["logprobs"].shape == [len(lp)]
        assert torch.allclose(output["logprobs"].to_torch(), lp, atol=1e-5)
    # prompt positions carry weight 0: the loss is the completion's NLL only, not the whole sequence's
    assert out.metrics["loss:sum"] < float(-expected_lps[0].sum() - expected_lps[1].sum()) - 1.0


def test_top_k_targets_score_every_candidate(tiny_model):
    client = new_client(tiny_model)
    tokens = PROMPT + COMPLETION
    alternatives = [[t, (t * 7 + 3) % 1000] for t in tokens[1:]]
    weights = [[0.75, 0.25]] * len(alternatives)
    out = client.forward_backward([datum(tokens, weights, target_tokens=alternatives)], "cross_entropy").result()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        full = torch.log_softmax(model(torch.tensor([tokens[:-1]])).logits[0].float(), -1)
    expected = full.gather(1, torch.tensor(alternatives))
    assert out.loss_fn_outputs[0]["logprobs"].shape == [len(alternatives), 2]
    assert torch.allclose(out.loss_fn_outputs[0]["logprobs"].to_torch(), expected, atol=1e-5)
    assert out.metrics["loss:sum"] == pytest.approx(float(-(expected * torch.tensor(weights)).sum()), rel=1e-5)


def test_a_hub_model_is_refused_with_one_line(tiny_model):
    future = LocalServiceClient().create_lora_training_client("Qwen/Qwen3-8B", rank=4)
    with pytest.raises(HarnessError, match="serves embedded models .* and local model folders only"):
        future.result(timeout=60)


def test_zero_weights_give_zero_loss_and_no_gradient(tiny_model):
    client = new_client(tiny_model)
    tokens = PROMPT + COMPLETION
    out = client.forward_backward([datum(tokens, [0.0] * (len(tokens) - 1))], "cross_entropy").result()
    assert out.metrics["loss:sum"] == 0.0
    assert all(float(g.abs().max()) == 0.0 for g in grads(client).values())


def test_gradients_accumulate_until_optim_step(tiny_model):
    split, joint = new_client(tiny_model), new_client(tiny_model)
    a, b = sft_datum(), sft_datum(PROMPT[:3], COMPLETION[2:])
    loss_a = split.forward_backward([a], "cross_entropy").result().metrics["loss:sum"]
    loss_b = split.forward_backward([b], "cross_entropy").result().metrics["loss:sum"]
    both = joint.forward_backward([a, b], "cross_entropy").result().metrics["loss:sum"]
    assert both == pytest.approx(loss_a + loss_b, rel=1e-5)
    split_grads, joint_grads = grads(split), grads(joint)
    assert any(float(g.abs().max()) > 0 for g in joint_grads.values())
    for name in joint_grads:
        assert torch.allclose(split_grads[name], joint_grads[name], rtol=1e-3, atol=1e-5), name
    split.optim_step(types.AdamParams(learning_rate=1e-3)).result()
    assert all(p.grad is None for p in split.params.values())  # cleared by the step


def test_optim_step_is_adamw_with_the_given_hyperparameters(tiny_model):
    client = new_client(tiny_model)
    hp = types.AdamParams(learning_rate=1e-2, beta1=0.8, beta2=0.9, eps=1e-6, weight_decay=0.1)
    params = lora_params(client)
    m = {k: torch.zeros_like(v) for k, v in params.items()}
    v = {k: torch.zeros_like(p) for k, p in params.items()}
    for step in (1, 2):
        client.forward_backward([sft_datum()], "cross_entropy").result()
        g = grads(client)
        client.optim_step(hp).result()
        for k in params:  # AdamW by hand (Loshchilov & Hutter, 2019): decoupled decay, bias-corrected moments
            m[k] = hp.beta1 * m[k] + (1 - hp.beta1) * g[k]
            v[k] = hp.beta2 * v[k] + (1 - hp.beta2) * g[k] ** 2
            m_hat, v_hat = m[k] / (1 - hp.beta1 ** step), v[k] / (1 - hp.beta2 ** step)
            params[k] = params[k] * (1 - hp.learning_rate * hp.weight_decay) \
                - hp.learning_rate * m_hat / (v_hat.sqrt() + hp.eps)
    moved, start = 0, lora_params(new_client(tiny_model))
    for k, p in client.params.items():
        assert torch.allclose(p.detach(), params[k], rtol=1e-4, atol=1e-6), k
        moved += int(not torch.equal(p.detach(), start[k]))
    assert moved == len(params)  # A only decays (its gradient is 0 while B = 0), B follows Adam


def test_unknown_loss_names_the_supported_ones(tiny_model):
    client = new_client(tiny_model)
    with pytest.raises(ValueError, match="did you mean 'cross_entropy'"):
        client.forward_backward([sft_datum()], "cross_entropie").result()


def test_sample_is_seeded_and_honours_max_tokens(tiny_model):
    sampler = LocalServiceClient().create_sampling_client(base_model=tiny_model).result()
    prompt = types.ModelInput.from_ints(PROMPT)
    params = types.SamplingParams(max_tokens=6, seed=7, stop=[])
    first = sampler.sample(prompt, 3, params).result()
    again = sampler.sample(prompt, 3, params).result()
    other = sampler.sample(prompt, 3, types.SamplingParams(max_tokens=6, seed=8, stop=[])).result()
    assert [s.tokens for s in first.sequences] == [s.tokens for s in again.sequences]
    assert [s.tokens for s in first.sequences] != [s.tokens for s in other.sequences]
    assert len({tuple(s.tokens) for s in first.sequences}) == 3  # samples differ from each other
    for seq in first.sequences:
        assert len(seq.tokens) == 6 and len(seq.logprobs) == 6 and seq.stop_reason == "length"
        assert all(lp < 0 for lp in seq.logprobs)
    # the sampled tokens' logprobs are the model's (temperature 1): rescoring the sequence gives them back
    seq = first.sequences[0]
    scored = sampler.compute_logprobs(types.ModelInput.from_ints(PROMPT + seq.tokens)).result()
    assert scored[len(PROMPT):] == pytest.approx(seq.logprobs, abs=1e-4)
    with_prompt = sampler.sample(prompt, 1, params, include_prompt_logprobs=True).result()
    assert with_prompt.prompt_logprobs == pytest.approx(scored[:len(PROMPT)], abs=1e-4)
    assert with_prompt.prompt_logprobs[0] is None


def test_sample_stops_at_stop_strings_and_tokens(tiny_model):
    sampler = LocalServiceClient().create_sampling_client(base_model=tiny_model).result()
    tokenizer = sampler.get_tokenizer()
    prompt = types.ModelInput.from_ints(PROMPT)
    free = sampler.sample(prompt, 1, types.SamplingParams(max_tokens=10, seed=3, stop=[])).result().sequences[0]
    stop_text = tokenizer.decode(free.tokens[4:6])
    expected = next(i for i in range(1, 11) if stop_text in tokenizer.decode(free.tokens[:i]))
    stopped = sampler.sample(prompt, 1, types.SamplingParams(max_tokens=10, seed=3, stop=[stop_text])).result()
    assert stopped.sequences[0].tokens == free.tokens[:expected]
    assert stopped.sequences[0].stop_reason == "stop"
    stop_id = free.tokens[5]
    by_id = sampler.sample(prompt, 1, types.SamplingParams(max_tokens=10, seed=3, stop=[stop_id])).result()
    assert by_id.sequences[0].tokens == free.tokens[:free.tokens.index(stop_id) + 1]
    assert by_id.sequences[0].stop_reason == "stop"


def test_compute_logprobs_matches_forward_backward_and_snapshots_stay_fixed(tiny_model):
    client = new_client(tiny_model)
    d = sft_datum()
    client.forward_backward([d], "cross_entropy").result()
    client.optim_step(types.AdamParams(learning_rate=5e-2)).result()
    trained = client.forward([d], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].to_torch()
    sampler = client.save_weights_and_get_sampling_client().result()
    tokens = d.model_input.to_ints() + [d.loss_fn_inputs["target_tokens"].tolist()[-1]]
    scored = sampler.compute_logprobs(types.ModelInput.from_ints(tokens)).result()
    assert scored[0] is None and len(scored) == len(tokens)
    assert torch.allclose(torch.tensor(scored[1:]), trained, atol=1e-5)
    assert not torch.allclose(trained, base_logprobs(tiny_model, tokens), atol=1e-3)  # the step changed the model
    client.forward_backward([d], "cross_entropy").result()
    client.optim_step(types.AdamParams(learning_rate=5e-2)).result()
    assert sampler.compute_logprobs(types.ModelInput.from_ints(tokens)).result() == pytest.approx(scored, abs=1e-6)


def test_custom_loss_gradients_equal_cross_entropy(tiny_model):
    builtin, custom = new_client(tiny_model), new_client(tiny_model)
    data = [sft_datum(), sft_datum(PROMPT[:2], COMPLETION[:5])]
    ce = builtin.forward_backward(data, "cross_entropy").result()

    def nll(batch, logprobs):
        loss = sum(-(lp * d.loss_fn_inputs["weights"].to_torch()).sum() for d, lp in zip(batch, logprobs))
        return loss, {"nll": float(loss)}

    out = custom.forward_backward_custom(data, nll).result()
    assert out.metrics["loss:sum"] == pytest.approx(ce.metrics["loss:sum"], rel=1e-5)
    assert out.metrics["nll"] == pytest.approx(ce.metrics["loss:sum"], rel=1e-5)
    builtin_grads, custom_grads = grads(builtin), grads(custom)
    assert any(float(g.abs().max()) > 0 for g in custom_grads.values())
    for name in builtin_grads:
        assert torch.allclose(builtin_grads[name], custom_grads[name], rtol=1e-3, atol=1e-6), name

    def neg_ll(logprobs, weights):  # the SDK's traced per-datum form (create_custom_loss)
        loss = -(logprobs * weights).sum()
        return loss, {"custom/neg_ll:sum": loss}

    service = LocalServiceClient()
    handle = service.create_custom_loss(neg_ll, input_ranks={"logprobs": 1, "weights": 1}).result()
    traced = new_client(tiny_model)
    out = traced.forward_backward_custom(data, handle).result()
    assert out.metrics["custom/neg_ll:sum"] == pytest.approx(ce.metrics["loss:sum"], rel=1e-5)
    for name, g in grads(traced).items():
        assert torch.allclose(builtin_grads[name], g, rtol=1e-3, atol=1e-6), name


def test_importance_sampling_at_ratio_one_is_advantage_weighted_likelihood(tiny_model):
    rl, ce = new_client(tiny_model), new_client(tiny_model)
    tokens = PROMPT + COMPLETION
    current = rl.forward([datum(tokens)], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].tolist()
    advantages = [0.0] * (len(PROMPT) - 1) + [0.5, -1.0, 2.0, 0.25, 1.0, -0.5, 1.5]
    out = rl.forward_backward([datum(tokens, logprobs=current, advantages=advantages)], "importance_sampling").result()
    assert out.metrics["loss:sum"] == pytest.approx(-sum(advantages), rel=1e-4)  # ratio = 1 everywhere
    ce.forward_backward([datum(tokens, advantages)], "cross_entropy").result()  # grad of -sum(A * logprobs)
    for name, g in grads(ce).items():
        assert torch.allclose(grads(rl)[name], g, rtol=1e-3, atol=1e-6), name
    # a stale sampler (logprobs 0.1 lower) weights every token by exp(0.1)
    stale = rl.forward([datum(tokens, logprobs=[x - 0.1 for x in current], advantages=advantages)],
                       "importance_sampling").result()
    assert stale.metrics["loss:sum"] == pytest.approx(-sum(advantages) * float(torch.exp(torch.tensor(0.1))),
                                                      rel=1e-4)


def test_resume_from_state_continues_like_an_uninterrupted_run(tiny_model):
    hp = types.AdamParams(learning_rate=2e-2)
    batches = [[sft_datum()], [sft_datum(PROMPT[:3], COMPLETION[1:])], [sft_datum(PROMPT[2:], COMPLETION)]]
    straight = new_client(tiny_model, seed=5)
    for i, batch in enumerate(batches):
        straight.forward_backward(batch, "cross_entropy")
        straight.optim_step(hp)
        if i == 0:
            saved = straight.save_state("step-1").result(timeout=60)
    final = straight.forward(batches[0], "cross_entropy").result().metrics["loss:sum"]
    assert saved.path == f"tinker://local/{straight.model_id}/state/step-1"
    assert (local_path(saved.path) / "optimizer.pt").is_file()
    resumed = LocalServiceClient().create_training_client_from_state_with_optimizer(saved.path).result(timeout=60)
    assert resumed.step == 1 and resumed.rank == 4 and resumed.model_id != straight.model_id
    for batch in batches[1:]:
        resumed.forward_backward(batch, "cross_entropy")
        resumed.optim_step(hp)
    assert resumed.forward(batches[0], "cross_entropy").result().metrics["loss:sum"] == pytest.approx(final, rel=1e-6)
    for name, p in straight.params.items():
        assert torch.allclose(resumed.params[name], p, atol=1e-7), name
    # weights without the optimizer: Adam restarts, so the next step differs
    fresh = LocalServiceClient().create_training_client_from_state(saved.path).result(timeout=60)
    for batch in batches[1:]:
        fresh.forward_backward(batch, "cross_entropy")
        fresh.optim_step(hp)
    assert fresh.forward(batches[0], "cross_entropy").result().metrics["loss:sum"] != pytest.approx(final, rel=1e-6)
    with pytest.raises(ValueError, match="already exists"):
        straight.save_state("step-1").result()


def test_exported_adapter_loads_with_peft_and_gives_the_same_logprobs(tiny_model, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    client = new_client(tiny_model)
    d = sft_datum()
    client.forward_backward([d], "cross_entropy")
    client.optim_step(types.AdamParams(learning_rate=5e-2))
    expected = client.forward([d], "cross_entropy").result().loss_fn_outputs[0]["logprobs"].to_torch()
    export = client.save_weights_external("final").result()
    urls = LocalServiceClient().create_rest_client().get_external_weights_urls(export.path).result().urls
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(urls)
    folder = tmp_path / "download"
    folder.mkdir()
    for name, url in urls.items():
        (folder / name).write_bytes(urllib.request.urlopen(url).read())
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(folder)).eval()
    with torch.no_grad():
        logits = model(torch.tensor([d.model_input.to_ints()])).logits[0].float()
    targets = d.loss_fn_inputs["target_tokens"].to_torch()
    got = torch.log_softmax(logits, -1).gather(1, targets[:, None])[:, 0]
    assert torch.allclose(got, expected, atol=1e-5)
    # a sampler from the saved path agrees too
    weights = client.save_weights_for_sampler("final").result()
    sampler = LocalServiceClient().create_sampling_client(model_path=weights.path).result()
    tokens = d.model_input.to_ints() + [int(targets[-1])]
    assert torch.allclose(torch.tensor(sampler.compute_logprobs(types.ModelInput.from_ints(tokens)).result()[1:]),
                          expected, atol=1e-5)


def test_unknown_local_checkpoint_is_one_clear_error():
    with pytest.raises(HarnessError, match="no such local checkpoint"):
        local_path("tinker://local/abc/state/missing")
    with pytest.raises(HarnessError, match="kind one of state, weights, external_weights"):
        local_path("tinker://local/abc/sampler/x")


def test_server_capabilities_list_the_embedded_model():
    caps = LocalServiceClient().create_rest_client().get_server_capabilities().result()
    names = [m.model_name for m in caps.supported_models]
    assert "embedded:smollm2-135m-instruct" in names
    assert all(m.trainable and m.sampleable for m in caps.supported_models)


# ---- signature drift: every public method implemented locally accepts what the SDK's does -----
def _pairs():
    from tinker.lib.public_interfaces.rest_client import RestClient
    from tinker.lib.public_interfaces.sampling_client import SamplingClient
    from tinker.lib.public_interfaces.service_client import ServiceClient
    from tinker.lib.public_interfaces.training_client import TrainingClient

    from harness.tinker_local.rest import LocalRestClient
    from harness.tinker_local.sampling import LocalSamplingClient
    from harness.tinker_local.service import LocalServiceClient as Service
    from harness.tinker_local.training import LocalTrainingClient

    for local, real in ((Service, ServiceClient), (LocalTrainingClient, TrainingClient),
                        (LocalSamplingClient, SamplingClient), (LocalRestClient, RestClient)):
        for name, member in vars(local).items():
            # users construct the service and REST clients; the others come from factory methods
            if name.startswith("_") and not (name == "__init__" and local in (Service, LocalRestClient)):
                continue
            if callable(member):
                yield local, real, name


def _parameters(fn):
    return [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]


@pytest.mark.parametrize("local,real,name", list(_pairs()), ids=lambda x: getattr(x, "__name__", str(x)))
def test_local_method_accepts_every_sdk_parameter(local, real, name):
    assert hasattr(real, name), f"{real.__name__} has no {name}: the local method is not part of the SDK"
    ours = {p.name: p for p in _parameters(getattr(local, name))}
    theirs = _parameters(getattr(real, name))
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in ours.values())
    positional = [p.name for p in ours.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for i, p in enumerate(t for t in theirs if t.kind in (t.POSITIONAL_ONLY, t.POSITIONAL_OR_KEYWORD)):
        assert i < len(positional) and positional[i] == p.name, f"{name}: positional parameter {i} should be {p.name}"
    for p in theirs:
        if p.kind is p.VAR_KEYWORD:
            assert takes_kwargs, f"{name}: the SDK accepts **{p.name}"
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        assert p.name in ours, f"{local.__name__}.{name} lacks the SDK parameter '{p.name}'"
        mine = ours[p.name]
        if p.default is not p.empty:
            assert mine.default == p.default, f"{name}: '{p.name}' defaults to {mine.default!r}, SDK {p.default!r}"
        else:
            assert mine.default is p.empty, f"{name}: '{p.name}' is required in the SDK"
    extra = [p for p in ours.values() if p.name not in {t.name for t in theirs} and p.kind is not p.VAR_KEYWORD]
    assert all(p.default is not p.empty for p in extra), f"{name}: extra required parameters {extra}"
