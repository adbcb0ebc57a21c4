"""`LocalServiceClient`: the entry point, a stand-in for `tinker.ServiceClient` (SDK 0.38).

Same methods and signatures; every call returns a future at once (the SDK's
`AwaitableConcurrentFuture`) and runs in order on one local worker. No key, no network:
connection arguments are accepted and ignored. Served models are the embedded ones
(`embedded:smollm2-135m-instruct`) and any local model folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

from harness.tinker_local import futures, store


class LocalServiceClient:
    def __init__(self, user_metadata: dict[str, str] | None = None, project_id: str | None = None, *,
                 display_name: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 default_headers_overrides: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        self.user_metadata = dict(user_metadata or {})
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.close("success" if exc_type is None else "errored").result()

    # ---- training clients -----------------------------------------------------------------
    def create_lora_training_client(self, base_model: str, rank: int = 32, seed: int | None = None,
                                    train_mlp: bool = True, train_attn: bool = True, train_unembed: bool = True,
                                    user_metadata: dict[str, str] | None = None, optimizer: Any = None):
        """A fresh LoRA adapter (B = 0, A drawn from `seed`; None draws a random seed) on `base_model`."""
        if not any([train_mlp, train_attn, train_unembed]):
            raise AssertionError("At least one of train_mlp, train_attn, or train_unembed must be True")
        _check_optimizer(optimizer)
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "little")
        return futures.submit(self._new_client, base_model=base_model, rank=rank, seed=seed, train_mlp=train_mlp,
                              train_attn=train_attn, train_unembed=train_unembed, user_metadata=user_metadata)

    def _new_client(self, **options):
        from harness.tinker_local.training import LocalTrainingClient

        return LocalTrainingClient(run_id=_run_id(), **options)

    def _from_checkpoint(self, path: str, base_model: str | None, user_metadata, optimizer: bool):
        sidecar = store.read_sidecar(store.local_path(path))
        client = self._new_client(base_model=base_model or sidecar["base_model"], rank=sidecar["rank"],
                                  seed=sidecar["seed"], train_mlp=sidecar["train_mlp"],
                                  train_attn=sidecar["train_attn"], train_unembed=sidecar["train_unembed"],
                                  user_metadata=user_metadata)
        client._load(path, optimizer)
        return client

    def create_training_client_from_state(self, path: str, base_model: str | None = None,
                                          user_metadata: dict[str, str] | None = None,
                                          weights_access_token: str | None = None, optimizer: Any = None):
        """A new run starting from a checkpoint's LoRA weights, with a fresh optimizer."""
        _check_optimizer(optimizer)
        return futures.submit(self._from_checkpoint, path, base_model, user_metadata, False)

    def create_training_client_from_state_with_optimizer(self, path: str, base_model: str | None = None,
                                                         user_metadata: dict[str, str] | None = None,
                                                         weights_access_token: str | None = None):
        """A new run resuming a `save_state` checkpoint exactly: LoRA weights, AdamW state and step."""
        return futures.submit(self._from_checkpoint, path, base_model, user_metadata, True)

    # ---- sampling clients -----------------------------------------------------------------
    def create_sampling_client(self, model_path: str | None = None, base_model: str | None = None,
                               retry_config: Any = None, record_stability_info: bool = False):
        from harness.tinker_local import sampling

        if model_path is None and base_model is None:
            raise ValueError("Either model_path or base_model must be provided")
        if model_path is not None:
            return futures.submit(sampling.sampler_for_path, model_path)
        return futures.submit(sampling.sampler_for_base, base_model)

    # ---- REST -----------------------------------------------------------------------------
    def create_rest_client(self):
        from harness.tinker_local.rest import LocalRestClient

        return LocalRestClient()

    def get_server_capabilities(self):
        """Deprecated in the SDK (use the RestClient's); answers directly, as the SDK's does."""
        from harness.tinker_local.rest import server_capabilities

        return server_capabilities()

    def create_custom_loss(self, fn, input_ranks: Mapping[str, Any]):
        """Trace `fn` into the SDK's `LossHandle` (checked exactly as the SDK checks it); it runs on
        the client side in `forward_backward_custom`."""
        from tinker.lib.public_interfaces.custom_loss import trace_loss

        return futures.done(trace_loss(fn, input_ranks, LOCAL_SESSION))

    def close(self, status: str, detail: str | None = None):
        self.closed = True
        return futures.done(None)

    def get_telemetry(self):
        return None


LOCAL_SESSION = "local"


def _run_id() -> str:
    return uuid.uuid4().hex[:16]


def _check_optimizer(optimizer) -> None:
    if optimizer is not None and getattr(optimizer, "type", "adamw") != "adamw":
        raise ValueError(f"optimizer {getattr(optimizer, 'type', optimizer)!r}: the local Tinker service "
                         f"implements AdamW only")
