"""Export a Tinker checkpoint as a PEFT LoRA adapter folder, optionally merged into a full HF model.

`harness export tinker://... --out DIR [--merge]`. A Tinker run's weights live with the
service; exporting brings them home so the checkpoint can be evaluated, shared or served like
any other:

- the real service (SDK 0.38): an `external_weights` checkpoint is downloaded file by file
  from the signed URLs of `RestClient.get_external_weights_urls`; a training-state checkpoint
  (`tinker://<run>/weights/<name>`) is first written in that format by a training client
  loaded from it (`create_training_client_from_state` + `save_weights_external`, which the
  service bills as a checkpoint save). Sampler weights (`sampler_weights/`) cannot be
  downloaded through 0.38's API (the archive download of earlier SDKs was removed in 0.36),
  so they are refused with the path to use instead. Every call is bounded in time.
- the local implementation (`tinker://local/...`): the adapter is copied from the local store.

The adapter folder is what PEFT loads (`adapter_config.json`, `adapter_model.safetensors`);
the base model's tokenizer is saved beside it, and `export.json` records the source URI, the
base model and a sha256 per file. An adapter of an `embedded:` base model names the base's
converted local folder in `base_model_name_or_path`, so `from_pretrained` can load it here.
With `--merge` the adapter is merged into the base model's weights (`merge_and_unload`,
float32) and DIR is a standard `save_pretrained` folder instead. Either way DIR is written to a
temporary sibling and renamed, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Callable

from harness.atomic import atomic_dir
from harness.errors import HarnessError, one_line

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
DOWNLOAD_TIMEOUT_S = 300.0   # per file, between bytes (urllib's socket timeout)


def export(uri: str, out: Path, *, merge: bool = False, log: Callable[[str], None] = print,
           timeout: float | None = None) -> Path:
    """Write the checkpoint `uri` to `out` (an adapter folder, or a merged model with `merge`); returns `out`."""
    from harness.evaluate.tinker_sampling import CREATE_TIMEOUT_S, is_tinker
    from harness.tinker_local.store import is_local

    if not is_tinker(uri):
        raise HarnessError(f"export '{uri}': not a tinker:// checkpoint; give tinker://local/<id>/weights/<name> "
                           f"or a path printed by a Tinker run")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "export.json").is_file():
        raise HarnessError(f"export: {out} exists and is not an earlier export; choose an empty or new --out folder")
    timeout = timeout or CREATE_TIMEOUT_S
    with atomic_dir(out) as tmp:
        adapter = tmp / "adapter" if merge else tmp
        adapter.mkdir(exist_ok=True)
        base = copy_local(uri, adapter) if is_local(uri) else download(uri, adapter, log, timeout)
        missing = [name for name in ADAPTER_FILES if not (adapter / name).is_file()]
        if missing:
            raise HarnessError(f"export '{uri}': the checkpoint has no {', '.join(missing)}; it is not a LoRA "
                               f"adapter in PEFT format")
        tokenizer = _tokenizer(base, uri)
        if merge:
            merge_adapter(adapter, base, tmp, log)
            shutil.rmtree(adapter)
        else:
            _point_at_local_base(adapter, base)
        tokenizer.save_pretrained(str(tmp))
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        provenance = {"source": uri, "service": "local" if is_local(uri) else "tinker", "base_model": base,
                      "merged": merge, "files": files,
                      "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        (tmp / "export.json").write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    log(f"exported {uri} to {out} ({'merged into ' + base if merge else 'LoRA adapter on ' + base})")
    return out


# ---------------------------------------------------------------------- sources

def copy_local(uri: str, into: Path) -> str:
    """The adapter files of a local-store checkpoint copied into `into`; returns its base model."""
    from harness.tinker_local import local_path
    from harness.tinker_local.store import read_sidecar

    folder = Path(local_path(uri))
    for name in ADAPTER_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, into / name)
    return read_sidecar(folder)["base_model"]


def download(uri: str, into: Path, log: Callable[[str], None], timeout: float) -> str:
    """The files of a real-service checkpoint downloaded into `into`; returns its base model."""
    import tinker
    from tinker import types

    from harness.evaluate.tinker_sampling import service_client
    from harness.tinker_clients import bounded

    try:
        parsed = types.ParsedCheckpointTinkerPath.from_tinker_path(uri)
    except ValueError:
        raise HarnessError(f"export '{uri}': not a Tinker checkpoint path; expected tinker://<run>/weights/<name> "
                           f"or tinker://<run>/external_weights/<name>") from None
    if parsed.checkpoint_type == "sampler":
        raise HarnessError(f"export '{uri}': sampler weights cannot be downloaded with tinker 0.38; export the "
                           f"run's training state instead (tinker://{parsed.training_run_id}/weights/<name>, "
                           f"from save_state)")
    client = service_client(uri)

    def call(fn, what):
        try:
            return bounded(fn, f"{what} for '{uri}'", timeout, log=log)
        except HarnessError:
            raise
        except tinker.TinkerError as err:
            raise HarnessError(f"export '{uri}': {what} failed ({one_line(err)}); check the path and your "
                               f"access to the run") from None

    rest = call(tinker.RestClient, "creating the REST client")
    base = call(lambda: rest.get_training_run_by_tinker_path(uri).result(timeout=timeout).base_model,
                "reading the training run")
    external = uri
    if parsed.checkpoint_type == "training":
        name = "export-" + parsed.checkpoint_id.split("/")[-1]
        log(f"{uri}: writing it as external weights ({name}) to download it")
        trainer = call(lambda: client.create_training_client_from_state(uri).result(timeout=timeout),
                       "loading the training state")
        external = call(lambda: trainer.save_weights_external(name).result(timeout=timeout).path,
                        "saving external weights")
    urls = call(lambda: rest.get_external_weights_urls(external).result(timeout=timeout).urls,
                "listing the weight files")
    for relative, url in sorted(urls.items()):
        target = _inside(into, relative, uri)
        if target.suffix == ".age":
            raise HarnessError(f"export '{uri}': {relative} is age-encrypted; decrypt the files with "
                               f"`age -d -i <identity>` after downloading them yourself")
        log(f"{uri}: downloading {relative}")
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(target, "wb") as f:
                shutil.copyfileobj(response, f, 1 << 22)
        except OSError as err:
            raise HarnessError(f"export '{uri}': downloading {relative} failed ({one_line(err)}); retry (the "
                               f"signed URLs expire, and a retry asks for new ones)") from None
    return base


def _inside(folder: Path, relative: str, uri: str) -> Path:
    """A downloaded file's place under `folder`; a name that would leave it is refused."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise HarnessError(f"export '{uri}': the service listed a file outside the checkpoint ({relative!r})")
    target = folder.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


# ---------------------------------------------------------------------- merging

def merge_adapter(adapter: Path, base_model: str, into: Path, log: Callable[[str], None] = print) -> None:
    """The adapter merged into its base model's weights (float32), saved with `save_pretrained` in `into`.

    Tinker's LoRA covers the unembedding. When the base model ties it to the input embedding,
    merging into the shared matrix would change the input embedding too, and the merged model
    would no longer compute what the adapter did; so the output matrix is untied first (a copy of
    the embedding) and the merged model is saved untied.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoConfig, AutoModelForCausalLM

    from harness.models import model_location

    location = model_location(base_model)
    targets = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get("target_modules") or []
    try:
        config = AutoConfig.from_pretrained(location)
        untie = bool(getattr(config, "tie_word_embeddings", False)) and any("lm_head" in t for t in targets)
        if untie:
            config.tie_word_embeddings = False
        base = AutoModelForCausalLM.from_pretrained(location, config=config, dtype=torch.float32)
    except OSError as err:
        raise HarnessError(f"export: cannot load the base model '{base_model}' to merge into ({one_line(err)}); "
                           f"download it once with network access, or export without --merge") from None
    if untie:   # the output matrix was not in the checkpoint: it is the embedding's copy
        with torch.no_grad():
            base.get_output_embeddings().weight.copy_(base.get_input_embeddings().weight)
    log(f"merging the adapter into {base_model}{' (unembedding untied from the embedding)' if untie else ''}")
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(into))


def _point_at_local_base(adapter: Path, base_model: str) -> None:
    """An embedded base model has no hub id: the adapter names its converted folder so PEFT loads it here."""
    from harness.models import model_location

    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    location = model_location(base_model) if base_model.startswith("embedded:") else base_model
    if config.get("base_model_name_or_path") != location:
        config["base_model_name_or_path"] = location
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _tokenizer(base_model: str, uri: str):
    from harness.evaluate.tinker_sampling import base_tokenizer

    return base_tokenizer(base_model, uri)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
