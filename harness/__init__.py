"""A declarative post-training harness on Hugging Face TRL: recipe -> data -> train -> eval."""

__version__ = "0.1.0"
