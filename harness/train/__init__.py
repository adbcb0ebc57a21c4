"""Training backends: one self-contained module per backend, `train(stage, data, ...) -> Checkpoint`.

The table below is the contract recipes are validated against: which backends
exist, which canonical data kind each consumes, and which TRL config class
its `args:` block is passed to verbatim. A backend module (`harness.train.<name>`)
implements the training itself.
"""

from __future__ import annotations

import dataclasses
import importlib

from harness.errors import HarnessError, did_you_mean


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    name: str
    data_format: str   # canonical kind the trainer consumes
    config_class: str  # "module:Class" receiving the stage's `args:`


BACKENDS = {spec.name: spec for spec in (
    BackendSpec("trl_sft", "sft", "trl:SFTConfig"),
    BackendSpec("trl_dpo", "preference", "trl:DPOConfig"),
    BackendSpec("trl_reward", "preference", "trl:RewardConfig"),
    BackendSpec("trl_rloo", "prompt", "trl:RLOOConfig"),
    BackendSpec("tinker", "any", "harness.train.tinker:TinkerConfig"),
)}


def backend_spec(name: str) -> BackendSpec:
    if name not in BACKENDS:
        raise KeyError(f"unknown backend '{name}'{did_you_mean(name, BACKENDS)}")
    return BACKENDS[name]


def load_backend(name: str):
    """The backend's module; a clear error if this installation does not provide it."""
    try:
        return importlib.import_module(f"harness.train.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"harness.train.{name}":
            raise HarnessError(f"backend '{name}' has no trainer module in this installation "
                               f"(harness/train/{name}.py); `harness data` prepares its data") from None
        raise
