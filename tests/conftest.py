"""Shared fixtures: every test runs offline with its own cache, runs and cards folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """One converted embedded tokenizer for the whole session (conversion takes seconds)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch, models_dir) -> Path:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HARNESS_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("HARNESS_CARDS", str(tmp_path / "cards"))
    monkeypatch.setenv("HARNESS_MODELS", str(models_dir))
    monkeypatch.setenv("HARNESS_LEADERBOARD", str(tmp_path / "leaderboard"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    return tmp_path


@pytest.fixture(scope="session")
def tokenizer(models_dir):
    """The embedded SmolLM2 tokenizer (the recipe default), loaded once."""
    os.environ["HARNESS_MODELS"] = str(models_dir)
    from harness.models import load_tokenizer
    from harness.recipe import ModelConfig

    return load_tokenizer(ModelConfig())


# a 4-problem Countdown suite for recipes that train and evaluate a tiny model
TINY_SUITE = """
name: tiny
tasks:
  - runner: countdown
    n: 4
    num_numbers: [2]
    max_number: 20
    seed: 1234
    max_new_tokens: 8
    batch_size: 4
    index: [prompt, answer]
    decontamination: {any_overlap: false, coverage: 0.9}
"""

# a one-step SFT stage on 8 Countdown demonstrations, as text for a recipe template that goes
# through str.format (hence the doubled braces)
TINY_SFT_STAGE = """  - name: sft
    backend: trl_sft
    data:
      sources: [{{source: countdown, kind: sft, n: 8, num_numbers: [2], max_number: 20, max_target: 40}}]
    args: {{max_steps: 1, per_device_train_batch_size: 2, learning_rate: 1.0e-3, max_length: 128}}
"""


def write_recipe(folder: Path, text: str, name: str = "recipe") -> Path:
    path = folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tokenizer) -> str:
    """A random 2-layer Llama with the SmolLM2 tokenizer: trains in well under a second a step."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return str(folder)
