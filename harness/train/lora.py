"""LoRA / QLoRA options: `model.lora` keys go verbatim to `peft.LoraConfig`
(Hu et al., 2021); `model.qlora` loads the base in 4-bit NF4 (Dettmers et al., 2023)."""

from __future__ import annotations

from harness.errors import HarnessError, did_you_mean
from harness.train.config_fields import field_names

_LORA_SOURCE = ("peft/tuners/lora/config.py", "LoraConfig")


def check_lora_keys(lora) -> tuple[str, str] | None:
    """(key, problem) for a key peft.LoraConfig does not have, else None (names read from source)."""
    fields = field_names(*_LORA_SOURCE)
    for key in lora:
        if fields is not None and key not in fields:
            return key, f"peft.LoraConfig has no field '{key}'{did_you_mean(key, fields)}"
    return None


def peft_config(model_cfg, task_type: str):
    if model_cfg.lora is None:
        return None
    from peft import LoraConfig

    options = {"task_type": task_type, "target_modules": "all-linear", **dict(model_cfg.lora)}
    return LoraConfig(**options)


def quantization_config(model_cfg):
    """4-bit loading for QLoRA; a one-line error where bitsandbytes or a GPU is missing."""
    if not model_cfg.qlora:
        return None
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise HarnessError("model.qlora: 4-bit QLoRA needs a CUDA GPU; on this machine use `lora:` without qlora")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise HarnessError("model.qlora: bitsandbytes is not installed; pip install -e '.[gpu]'")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)
