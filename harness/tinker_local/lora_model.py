"""The base model with Tinker's LoRA layout, on torch + PEFT.

Tinker trains LoRA adapters (Hu et al., 2021) on attention, MLP and unembedding by default
(`train_attn`, `train_mlp`, `train_unembed`) at the requested rank. The scale follows
Thinking Machines' "LoRA Without Regret" (Schulman et al., 2025), which fixes alpha at 32
whatever the rank; B starts at zero, so a fresh adapter leaves the base model's outputs
unchanged. Dropout is off: the service has none, and it would make steps irreproducible.
"""

from __future__ import annotations

from harness.errors import HarnessError

LORA_ALPHA = 32
_ATTN = ("attn", "attention")
_MLP = ("mlp", "feed_forward", "ffn")


def resolve_base(base_model: str) -> str:
    """What `from_pretrained` loads for a served name: the converted folder for `embedded:`
    names, a local folder as given. Hub ids are refused: the local service has no network."""
    from pathlib import Path

    from harness.models import model_location

    location = model_location(base_model)
    if not Path(location).expanduser().is_dir():
        raise HarnessError(f"base model '{base_model}': the local Tinker service serves embedded models "
                           f"(embedded:smollm2-135m-instruct) and local model folders only; give one of those")
    return location


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_base(location: str):
    """The base model in float32 (bfloat16 on a GPU), in eval mode (no dropout anywhere)."""
    import torch
    from transformers import AutoModelForCausalLM

    dev = device()
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    return model.to(dev).eval()


def load_tokenizer(location: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(location)


def target_modules(model, *, train_attn: bool, train_mlp: bool, train_unembed: bool) -> list[str]:
    """Full names of the linear layers Tinker's flags select: those under an attention block,
    those under an MLP block, and the output embedding (the unembedding)."""
    import torch

    chosen = []
    output = model.get_output_embeddings()
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        parts = name.lower().split(".")
        if module is output:
            if train_unembed:
                chosen.append(name)
        elif any(key in part for part in parts for key in _ATTN):
            if train_attn:
                chosen.append(name)
        elif any(key in part for part in parts for key in _MLP):
            if train_mlp:
                chosen.append(name)
    if not chosen:
        raise HarnessError("LoRA: no linear layer matches the requested train_attn/train_mlp/train_unembed")
    return chosen


def apply_lora(model, rank: int, seed: int, *, train_attn=True, train_mlp=True, train_unembed=True):
    """Wrap `model` in a PEFT LoRA adapter; A is drawn from `seed`, B is zero."""
    import torch
    from peft import LoraConfig, get_peft_model

    modules = target_modules(model, train_attn=train_attn, train_mlp=train_mlp, train_unembed=train_unembed)
    config = LoraConfig(r=int(rank), lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=modules,
                        bias="none", task_type="CAUSAL_LM")
    import warnings

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # the unembedding adapter is deliberately not tied to the input embedding: Tinker's
        # train_unembed adapts the output projection only
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        torch.manual_seed(int(seed))
        peft_model = get_peft_model(model, config)
    return peft_model.eval()


def trainable(model) -> dict:
    """name -> parameter, for the LoRA weights only, in a fixed order."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def adapter_state(model) -> dict:
    """A detached CPU copy of the LoRA weights (PEFT's own key names)."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model, save_embedding_layers=False)
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def load_adapter_state(model, state: dict) -> None:
    """Copy saved LoRA weights into `model` in place; every key must match."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise HarnessError(f"LoRA weights do not fit this model: unexpected keys such as {unexpected[0]}")


def save_adapter(model, folder, location: str) -> None:
    """Write a standard PEFT adapter folder (adapter_config.json + adapter_model.safetensors)
    whose config names the base model's folder, so `PeftModel.from_pretrained` loads it as is."""
    import copy
    from pathlib import Path

    from safetensors.torch import save_file

    config = copy.deepcopy(model.peft_config["default"])
    config.base_model_name_or_path = location
    config.save_pretrained(str(folder))
    state = {k: v.contiguous() for k, v in adapter_state(model).items()}
    save_file(state, str(Path(folder) / "adapter_model.safetensors"), metadata={"format": "pt"})


def read_adapter(folder) -> tuple[dict, dict]:
    """(adapter_config.json as a dict, LoRA weights) of a saved adapter folder."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    config = json.loads((Path(folder) / "adapter_config.json").read_text(encoding="utf-8"))
    return config, load_file(str(Path(folder) / "adapter_model.safetensors"))
