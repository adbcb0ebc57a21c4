"""`LocalTrainingClient`: Tinker's TrainingClient on an in-process PEFT LoRA model.

Same calls, argument names and return types as `tinker.TrainingClient` (SDK 0.38):
`forward_backward` adds the gradient of the summed loss to the adapter's gradients,
`optim_step` applies one AdamW step with the given `AdamParams` (Loshchilov & Hutter, 2019;
Tinker documents its optimizer as identical to torch.optim.AdamW, with weight decay 0 by
default) and clears them, so gradients accumulate over any number of `forward_backward` calls
in between. `forward_backward_custom` follows the SDK's two-pass scheme: a forward pass gives
per-datum logprobs, the user's loss is differentiated with respect to them on the client, and a
second pass back-propagates sum(dC/dlogprobs * logprobs), whose gradient is dC/dtheta.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from typing import Any, Literal

from harness.atomic import atomic_dir
from harness.tinker_local import futures, lora_model, losses, store

# tinker.types.AdamParams defaults; every optim_step sets the group from its own AdamParams
_ADAM_DEFAULTS = {"lr": 1e-4, "betas": (0.9, 0.95), "eps": 1e-12, "weight_decay": 0.0}


class LocalTrainingClient:
    """One LoRA training run; create it through `LocalServiceClient.create_lora_training_client`."""

    def __init__(self, *, base_model: str, run_id: str, rank: int, seed: int, train_mlp: bool = True,
                 train_attn: bool = True, train_unembed: bool = True, user_metadata=None) -> None:
        import torch

        self.base_model = base_model
        self.location = lora_model.resolve_base(base_model)
        self.model_id = run_id
        self.rank, self.seed = int(rank), int(seed)
        self.flags = {"train_attn": bool(train_attn), "train_mlp": bool(train_mlp),
                      "train_unembed": bool(train_unembed)}
        self.user_metadata = dict(user_metadata or {})
        self.model = lora_model.apply_lora(lora_model.load_base(self.location), self.rank, self.seed, **self.flags)
        self.params = lora_model.trainable(self.model)
        self.optimizer = torch.optim.AdamW(list(self.params.values()), **_ADAM_DEFAULTS)
        self.step = 0
        self._tokenizer = None

    # ---- forward / backward -------------------------------------------------------------
    def forward(self, data: list, loss_fn: str, loss_fn_config: Mapping[str, float | str] | None = None):
        """The loss and per-datum logprobs without touching gradients."""
        return futures.submit(self._fwd_bwd, list(data), loss_fn, loss_fn_config, False)

    def forward_backward(self, data: list, loss_fn: str, loss_fn_config: Mapping[str, float | str] | None = None):
        """Loss summed over tokens and datums; its gradient is added to the accumulated one."""
        return futures.submit(self._fwd_bwd, list(data), loss_fn, loss_fn_config, True)

    def _fwd_bwd(self, data, loss_fn, loss_fn_config, backward: bool):
        fn = losses.loss_function(loss_fn)
        outputs, total = losses.run(self.model, data, lambda i, d, lp, c: fn(d, lp, c), backward=backward,
                                    config=loss_fn_config)
        return _output(outputs, {"loss:sum": total})

    def forward_backward_custom(self, data: list, loss_fn, *, loss_type_input: Literal["logprobs"] | None = None):
        """Any differentiable loss of the per-datum target logprobs: `loss_fn(data, logprobs_list)`
        returns `(loss, metrics)`. `metrics["loss:sum"]` is the custom loss; the surrogate's
        value is `surrogate_loss:sum`, as the SDK reports them."""
        if loss_type_input not in (None, "logprobs"):
            raise ValueError(f"loss_type_input {loss_type_input!r}: only 'logprobs' is supported")
        from tinker.lib.public_interfaces.custom_loss import LossHandle, check_loss_inputs

        if isinstance(loss_fn, LossHandle):
            check_loss_inputs(loss_fn, data)
        return futures.submit(self._custom, list(data), loss_fn)

    def _custom(self, data, loss_fn):
        import torch

        from tinker.lib.public_interfaces.custom_loss import LossHandle, run_loss_handle

        if isinstance(loss_fn, LossHandle):
            def call(batch, logprobs):
                return run_loss_handle(loss_fn, batch, logprobs)
        else:
            call = loss_fn
        # pass 1: logprobs without a graph; the user's loss is differentiated w.r.t. them only
        first, _ = losses.run(self.model, data, lambda i, d, lp, c: lp.sum() * 0, backward=False)
        leaves = [lp.clone().detach().requires_grad_(True) for lp in first]
        loss, metrics = call(data, leaves)
        loss.backward()
        grads = []
        for leaf in leaves:
            if leaf.grad is None:
                raise ValueError("No gradient computed for logprob tensor")
            grads.append(leaf.grad.detach())
        # pass 2: back-propagate sum(dC/dlogprobs * logprobs) through the model
        _, surrogate = losses.run(self.model, data, lambda i, d, lp, c: (grads[i].to(lp) * lp).sum(),
                                  backward=True)
        out = {k: float(v.detach().sum()) if isinstance(v, torch.Tensor) else float(v)
               for k, v in dict(metrics or {}).items()}
        out["loss:sum"] = float(loss.detach().sum())
        # the SDK's surrogate is sum(-logprobs * weights) with weights = -dC/dlogprobs: the same number
        out["surrogate_loss:sum"] = surrogate
        return _output(first, out)

    # ---- optimizer ------------------------------------------------------------------------
    def optim_step(self, optim_params=None, *, adam_params=None):
        """One AdamW step with these hyperparameters on the accumulated gradients, which are then cleared."""
        from tinker import types

        if optim_params is not None and adam_params is not None:
            raise ValueError("Specify optim_params or legacy adam_params, not both")
        params = optim_params if optim_params is not None else adam_params
        if params is None:
            params = types.AdamParams()
        if not isinstance(params, types.AdamParams):
            raise TypeError(f"the local Tinker service implements AdamW only; got {type(params).__name__}")
        return futures.submit(self._optim_step, params)

    def _optim_step(self, params):
        import torch
        from tinker import types

        for group in self.optimizer.param_groups:
            group.update(lr=params.learning_rate, betas=(params.beta1, params.beta2), eps=params.eps,
                         weight_decay=params.weight_decay)
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))) \
            if grads else 0.0
        if params.grad_clip_norm > 0 and grads:
            torch.nn.utils.clip_grad_norm_(list(self.params.values()), params.grad_clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return types.OptimStepResponse(metrics={"grad_norm": norm, "step": float(self.step)})

    # ---- checkpoints ----------------------------------------------------------------------
    def _write(self, kind: str, name: str, *, overwrite: bool, user_metadata=None, optimizer: bool) -> str:
        import torch

        target = store.LocalPath(self.model_id, kind, store.check_name(name))
        if target.folder.exists() and not overwrite:
            raise ValueError(f"checkpoint {target.uri} already exists; pick another name or pass overwrite=True")
        with atomic_dir(target.folder) as tmp:
            lora_model.save_adapter(self.model, tmp, self.location)
            if optimizer:
                torch.save({"optimizer": self.optimizer.state_dict(), "step": self.step}, tmp / "optimizer.pt")
            sidecar = {"base_model": self.base_model, "kind": kind, "run_id": self.model_id, "name": name,
                       "rank": self.rank, "seed": self.seed, **self.flags, "step": self.step,
                       "user_metadata": dict(user_metadata or {}), "created": time.time()}
            (tmp / store.SIDECAR).write_text(json.dumps(sidecar, indent=2, sort_keys=True), encoding="utf-8")
        return target.uri

    def save_state(self, name: str, ttl_seconds: int | None = None, overwrite: bool = False,
                   user_metadata: dict[str, str] | None = None):
        """LoRA weights, AdamW state and step under tinker://local/<run>/state/<name> (ttl is ignored)."""
        from tinker import types

        return futures.submit(lambda: types.SaveWeightsResponse(
            path=self._write("state", name, overwrite=overwrite, user_metadata=user_metadata, optimizer=True)))

    def save_weights_for_sampler(self, name: str, ttl_seconds: int | None = None,
                                 user_metadata: dict[str, str] | None = None):
        """LoRA weights under tinker://local/<run>/weights/<name>, for `create_sampling_client(model_path=...)`."""
        from tinker import types

        return futures.submit(lambda: types.SaveWeightsForSamplerResponse(
            path=self._write("weights", name, overwrite=False, user_metadata=user_metadata, optimizer=False)))

    def save_weights_external(self, name: str, ttl_seconds: int | None = None,
                              age_encryption_recipients: list[str] | None = None):
        """The PEFT adapter under tinker://local/<run>/external_weights/<name>, downloadable through
        `LocalRestClient.get_external_weights_urls`. Encryption is not available locally."""
        from tinker import types

        if age_encryption_recipients:
            raise ValueError("age_encryption_recipients: the local Tinker service does not encrypt exports")
        return futures.submit(lambda: types.SaveWeightsExternalResponse(
            path=self._write("external_weights", name, overwrite=False, optimizer=False)))

    def _load(self, path: str, optimizer: bool):
        import torch
        from tinker import types

        folder = store.local_path(path)
        sidecar = store.read_sidecar(folder)
        if sidecar["base_model"] != self.base_model and lora_model.resolve_base(sidecar["base_model"]) != self.location:
            raise ValueError(f"checkpoint {path} was trained on {sidecar['base_model']}, not {self.base_model}")
        _, state = lora_model.read_adapter(folder)
        lora_model.load_adapter_state(self.model, state)
        if optimizer:
            if not (folder / "optimizer.pt").is_file():
                raise ValueError(f"checkpoint {path} has no optimizer state; save it with save_state")
            saved = torch.load(folder / "optimizer.pt", map_location=next(self.model.parameters()).device)
            self.optimizer.load_state_dict(saved["optimizer"])
            self.step = int(saved["step"])
        self.optimizer.zero_grad(set_to_none=True)
        return types.LoadWeightsResponse(path=path, model_id=self.model_id)

    def load_state(self, path: str, weights_access_token: str | None = None):
        """LoRA weights from a checkpoint; the optimizer state is left as it is."""
        return futures.submit(self._load, path, False)

    def load_state_with_optimizer(self, path: str, weights_access_token: str | None = None):
        """LoRA weights, AdamW state and step from a `save_state` checkpoint."""
        return futures.submit(self._load, path, True)

    # ---- sampling -------------------------------------------------------------------------
    def save_weights_and_get_sampling_client(self, name: str | None = None, retry_config: Any = None,
                                             record_stability_info: bool = False, kind: str = "snapshot"):
        """A sampler over a snapshot of the current weights (later steps do not change it)."""
        if name is not None:
            warnings.warn("The 'name' parameter of save_weights_and_get_sampling_client() has no effect",
                          DeprecationWarning, stacklevel=2)
        if kind != "snapshot":
            raise ValueError(f"kind {kind!r}: the local Tinker service has snapshot samplers only")
        return futures.submit(self._snapshot_sampler)

    def _snapshot_sampler(self):
        from harness.tinker_local.sampling import LocalSamplingClient

        return LocalSamplingClient(model=self.model, tokenizer=self.get_tokenizer(), base_model=self.base_model,
                                   adapter=lora_model.adapter_state(self.model))

    def create_sampling_client(self, model_path: str, retry_config: Any = None, record_stability_info: bool = False):
        from harness.tinker_local.sampling import sampler_for_path

        return futures.submit(sampler_for_path, model_path)

    # ---- information ----------------------------------------------------------------------
    def get_info(self):
        from tinker import types
        from tinker.types.get_info_response import ModelData

        return types.GetInfoResponse(model_data=ModelData(arch=self.model.config.model_type, model_name=self.base_model,
                                                          tokenizer_id=self.base_model),
                                     model_id=self.model_id, is_lora=True, lora_rank=self.rank,
                                     model_name=self.base_model)

    def get_tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = lora_model.load_tokenizer(self.location)
        return self._tokenizer

    def get_console_url(self) -> str:
        """The run's folder in the local store (the service's console has no local equivalent)."""
        return (store.root() / self.model_id).resolve().as_uri()

    def get_telemetry(self):
        return None


def _output(logprobs: list, metrics: dict):
    from tinker import types

    return types.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        loss_fn_outputs=[{"logprobs": types.TensorData.from_torch(lp)} for lp in logprobs],
        metrics=dict(metrics))
