"""An in-process implementation of the Tinker client surface (SDK 0.38), for offline runs and tests.

`LocalServiceClient` stands in for `tinker.ServiceClient`: same method names, signatures,
argument and return types (the SDK's own `tinker.types`), same semantics (losses summed over
tokens and datums, targets shifted by one, gradients accumulated until `optim_step`, AdamW with
Tinker's defaults, LoRA on attention, MLP and unembedding), run on torch + PEFT against the
embedded model or a local model folder. Checkpoints are `tinker://local/<run_id>/<kind>/<name>`
URIs; `local_path(uri)` gives the folder, a standard PEFT adapter.

Heavy imports (torch, transformers, peft, tinker) happen on first use.
"""

from __future__ import annotations

from harness.tinker_local.store import is_local, local_path, parse

_LAZY = {
    "LocalServiceClient": "harness.tinker_local.service",
    "LocalTrainingClient": "harness.tinker_local.training",
    "LocalSamplingClient": "harness.tinker_local.sampling",
    "LocalRestClient": "harness.tinker_local.rest",
}

__all__ = ["LocalRestClient", "LocalSamplingClient", "LocalServiceClient", "LocalTrainingClient", "is_local",
           "local_path", "parse"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harness.tinker_local' has no attribute '{name}'")
