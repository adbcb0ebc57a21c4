"""The models data steps load: by name, once per run, with the fingerprints that key their output.

A step names a model as `base` (the recipe's model), an earlier stage (its name), a local folder
or a hub id. Its identity in cache keys is the stage's fingerprint, the base model's id and
revision, a local checkpoint's recorded fingerprint (or its files' sizes and dates), or the hub id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError, one_line
from harness.fingerprint import fingerprint

BASE = "base"


class StepModels:
    """`load(name)` -> (model, tokenizer), cached; `identity(name)` -> fingerprint; `location(name)`."""

    def __init__(self, base: str, base_identity: str, stages: dict[str, tuple[str, Path]],
                 locate: Callable[[str], str]) -> None:
        self.base, self.base_identity = base, base_identity
        self.stages = stages          # stage name -> (fingerprint, final folder)
        self.locate = locate          # embedded / path / hub id -> what from_pretrained takes
        self._loaded: dict[tuple[str, str], tuple] = {}

    @classmethod
    def for_recipe(cls, recipe, plans=()) -> "StepModels":
        from harness.models import model_location

        base = recipe.model.name_or_path
        identity = base + (f"@{recipe.model.revision}" if recipe.model.revision else "")
        return cls(base, identity, {p.stage.name: (p.fingerprint, p.final_dir) for p in plans}, model_location)

    def identity(self, name: str) -> str:
        if name == BASE:
            return self.base_identity
        if name in self.stages:
            return f"stage:{self.stages[name][0]}"
        path = Path(name).expanduser()
        if path.is_dir():
            return _folder_identity(path)
        return name

    def stage_dependencies(self, names) -> list[str]:
        """The earlier stages among `names` (what must be trained before this data can be built)."""
        return [n for n in names if n in self.stages]

    def check_all(self, recipe) -> None:
        """Before any data or training work: every model a data step names must be loadable, or
        one line says which step names it and how to fix it. Stages are checked at validation;
        a folder must exist with a config; a hub id must be cached when the hub is offline."""
        import os

        blocks = {id(recipe.data_for(s)): recipe.data_for(s) for s in recipe.stages or (None,)}
        for data in blocks.values():
            for i, step in enumerate(data.steps, start=1):
                for ref in step.model_refs():
                    problem = None if ref == BASE or ref in self.stages else _unavailable(ref, os.environ)
                    if problem:
                        raise HarnessError(f"data step {i}:{step.name} loads model '{ref}', which {problem}")
            from harness import paths
            from harness.data import pipeline
            from harness.models import tokenizer_id

            # steps that will run (not cached) check what they call out to: a judge endpoint's key
            pipeline.preflight(pipeline.plan(data, recipe.seed, tokenizer_id(recipe.model), self.identity),
                               paths.cache_root())

    def location(self, name: str) -> str:
        if name == BASE:
            return self.locate(self.base)
        if name in self.stages:
            final = self.stages[name][1]
            if not (final / "checkpoint.json").is_file():
                raise HarnessError(f"model '{name}': stage '{name}' has not been trained yet ({final}); "
                                   f"run the recipe (`harness run`) so it trains before this data is built")
            return str(final)
        return self.locate(name)

    def load(self, name: str, kind: str = "causal"):
        """(model, tokenizer) in eval mode: bfloat16 on a GPU, float32 on a CPU. `kind`: causal or reward."""
        key = (name, kind)
        if key not in self._loaded:
            self._loaded[key] = _load(name, self.location(name), kind)
        return self._loaded[key]


def _load(name: str, location: str, kind: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    auto = AutoModelForSequenceClassification if kind == "reward" else AutoModelForCausalLM
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = auto.from_pretrained(location, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    except (OSError, ValueError) as err:
        raise HarnessError(f"model '{name}': cannot load it from {location} ({one_line(err)}); give a trained "
                           f"stage, a local folder with weights and tokenizer, or a hub id with network "
                           f"access") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if kind == "reward" and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


def _unavailable(ref: str, environ) -> str | None:
    """Why `ref` (an embedded name, a folder or a hub id) cannot be loaded here, or None."""
    if ref.startswith("embedded:"):
        from harness.models import embedded_gguf

        embedded_gguf(ref)  # raises its own one-line error when the weights are not installed
        return None
    path = Path(ref).expanduser()
    if ref.startswith(("/", "./", "../", "~")) or path.exists():
        if not (path / "config.json").is_file():
            return f"is not a model folder (no {path / 'config.json'}); train it first or fix the path"
        return None
    if environ.get("HF_HUB_OFFLINE") == "1":
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(ref, "config.json"), str):
            return ("is not in the local hub cache and the hub is offline (HF_HUB_OFFLINE=1); download it "
                    "once with network access, or give a local folder")
    return None


def _folder_identity(path: Path) -> str:
    """A local checkpoint's recorded fingerprint, else its files' names, sizes and dates."""
    sidecar = path / "checkpoint.json"
    if sidecar.is_file():
        try:
            return f"checkpoint:{json.loads(sidecar.read_text(encoding='utf-8'))['fingerprint']}"
        except (ValueError, KeyError):
            pass
    files = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file())
    return f"folder:{fingerprint(str(path.resolve()), files)}"
