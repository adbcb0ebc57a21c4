"""Training backends: one self-contained module per backend, each with
`train(job) -> Path` (the final checkpoint folder).

The table below is the contract recipes are validated against: which backends
exist, which canonical data kind each consumes, and which TRL config class its
`args:` block is passed to verbatim. Argument names are checked against the
installed TRL's own field list (read from source, see `config_fields`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util

from harness.errors import HarnessError, did_you_mean

#: arguments the harness sets itself (run folders are keyed by fingerprint)
RESERVED_ARGS = ("output_dir",)

#: the defaults the harness fills into a stage's TRL config, in every stage fingerprint so a change
#: retrains rather than reusing a checkpoint trained under the old ones.
#: 2: fp32 on a CPU unless the recipe sets `bf16` (TRL's default is bf16 autocast)
DEFAULTS_VERSION = 2


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    name: str
    data_format: str   # canonical kind the trainer consumes
    config_class: str  # TRL class receiving the stage's `args:`
    config_source: str  # where that class is defined, for the field-name check


BACKENDS = {spec.name: spec for spec in (
    BackendSpec("trl_sft", "sft", "SFTConfig", "trl/trainer/sft_config.py"),
    BackendSpec("trl_dpo", "preference", "DPOConfig", "trl/trainer/dpo_config.py"),
    BackendSpec("trl_reward", "preference", "RewardConfig", "trl/trainer/reward_config.py"),
    BackendSpec("trl_rloo", "prompt", "RLOOConfig", "trl/trainer/rloo_config.py"),
)}


#: the Tinker engine's module for each stage backend (`engine: tinker | tinker_local`); a stage keeps its
#: algorithm (and its TRL-named args) whichever engine trains it. trl_reward has no Tinker counterpart.
TINKER_BACKENDS = {"trl_sft": "tinker_sft", "trl_dpo": "tinker_dpo", "trl_rloo": "tinker_rloo"}


def engine_backend(engine: str, backend: str) -> str:
    """The trainer module that runs `backend` on `engine`."""
    if engine == "trl":
        return backend
    if backend not in TINKER_BACKENDS:
        raise HarnessError(f"backend '{backend}' cannot run on engine {engine}; use engine: trl for it")
    return TINKER_BACKENDS[backend]


def backend_spec(name: str) -> BackendSpec:
    if name not in BACKENDS:
        raise KeyError(f"unknown backend '{name}'{did_you_mean(name, BACKENDS)}")
    return BACKENDS[name]


def check_args(spec: BackendSpec, args) -> tuple[str, str] | None:
    """(argument, problem) for the first argument TRL's config class does not have, else None."""
    from harness.train.config_fields import field_types, type_problem

    fields = field_types(spec.config_source, spec.config_class)
    for key, value in args.items():
        if key in RESERVED_ARGS:
            return key, f"'{key}' is set by the harness (runs/<recipe>/<stage>-<fingerprint>/)"
        if fields is None:
            continue
        if key not in fields:
            return key, f"{spec.config_class} has no argument '{key}'{did_you_mean(key, fields)}"
        problem = type_problem(fields[key], value)
        if problem:
            return key, f"{spec.config_class}.{key}: {problem}"
    return None


def build_config(stage, **args):
    """The stage's TRL config object; a one-line error if TRL rejects a type or value, or if an
    optional kernel package the args ask for is missing (TRL would only fail once training starts)."""
    import trl

    from harness.errors import one_line

    config_class = getattr(trl, BACKENDS[stage.backend].config_class)
    try:
        config = config_class(**args)
    except (TypeError, ValueError) as err:
        raise HarnessError(f"stage '{stage.name}': {config_class.__name__} rejected the args: "
                           f"{one_line(err)}") from None
    if config.use_liger_kernel and importlib.util.find_spec("liger_kernel") is None:
        raise HarnessError(f"stage '{stage.name}': use_liger_kernel needs the liger-kernel package (CUDA GPUs): "
                           f"pip install -e '.[gpu]', or remove use_liger_kernel from the stage's args")
    return config


def load_backend(name: str):
    """The backend's module; a clear error if this installation does not provide it."""
    try:
        return importlib.import_module(f"harness.train.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"harness.train.{name}":
            raise HarnessError(f"backend '{name}' has no trainer module in this installation "
                               f"(harness/train/{name}.py)") from None
        raise
