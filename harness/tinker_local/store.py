"""Where local checkpoints live and how they are named.

A checkpoint is addressed `tinker://local/<run_id>/<kind>/<name>`, with kind `state`
(LoRA weights, AdamW state and step: what `save_state` writes and a resume reads),
`weights` (LoRA weights for sampling: `save_weights_for_sampler`) or `external_weights`
(the export `save_weights_external` writes). Each lives in
`<harness cache>/tinker_local/<run_id>/<kind>/<name>/`, a standard PEFT adapter folder
(`adapter_config.json`, `adapter_model.safetensors`) plus `tinker_local.json`, which names the
base model as the recipe gave it; `state` folders add `optimizer.pt`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import HarnessError

SCHEME = "tinker://local/"
KINDS = ("state", "weights", "external_weights")
SIDECAR = "tinker_local.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def root() -> Path:
    """All local checkpoints (`<HARNESS_CACHE>/tinker_local`)."""
    return paths.cache_root() / "tinker_local"


@dataclass(frozen=True)
class LocalPath:
    run_id: str
    kind: str
    name: str

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.run_id}/{self.kind}/{self.name}"

    @property
    def folder(self) -> Path:
        return root() / self.run_id / self.kind / self.name


def check_name(name: str, what: str = "checkpoint name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{what} {name!r}: use letters, digits, '.', '_' or '-' (at most 128, no '/'), "
                         f"for example 'step-000100'")
    return name


def parse(uri: str) -> LocalPath:
    """`tinker://local/<run_id>/<kind>/<name>` -> its parts; a clear error for anything else."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise HarnessError(f"checkpoint '{uri}': not a local Tinker path; expected "
                           f"{SCHEME}<run_id>/<kind>/<name> with kind one of {', '.join(KINDS)}")
    parts = uri[len(SCHEME):].split("/")
    if len(parts) != 3 or parts[1] not in KINDS or not all(parts):
        raise HarnessError(f"checkpoint '{uri}': expected {SCHEME}<run_id>/<kind>/<name> with kind one of "
                           f"{', '.join(KINDS)}")
    run_id, kind, name = parts
    check_name(run_id, "run id")
    check_name(name)
    return LocalPath(run_id, kind, name)


def is_local(uri) -> bool:
    return isinstance(uri, str) and uri.startswith(SCHEME)


def local_path(uri: str) -> Path:
    """The folder a `tinker://local/...` checkpoint lives in; an error naming the URI if it does not exist."""
    folder = parse(uri).folder
    if not (folder / SIDECAR).is_file():
        raise HarnessError(f"checkpoint '{uri}': no such local checkpoint (looked in {folder}); check the "
                           f"name, or the HARNESS_CACHE it was written under")
    return folder


def read_sidecar(folder: Path) -> dict:
    return json.loads((Path(folder) / SIDECAR).read_text(encoding="utf-8"))
