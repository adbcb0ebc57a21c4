"""The anchor of the data-throughput bench: exact dedup, a token-length filter and a sort by length
written as a plain Hugging Face `datasets` script, with `num_proc` for the row-local work.

It does what the harness recipe `dedup (key: triple) -> length_filter -> length_curriculum
(ascending)` does, and as fast as a careful user would write it:

- dedup: a batched `map` hashes the case- and whitespace-normalised (prompt, chosen, rejected)
  texts; the first row of each hash is kept (`np.unique(..., return_index=True)`, then `select`);
- length: a batched `map` counts tokens with the same tokenizer through its Rust backend's
  `encode_batch` (no special tokens), as prompt + the longer of chosen and rejected; `filter`
  keeps rows up to `max_tokens`; `sort` orders by the count (a stable sort, like the curriculum's).

`datasets` keeps its own cache of every `map`/`filter`, keyed by fingerprints, so a rerun of the
script with the same cache folder is its cached figure.

Run as a program (`python -m harness.bench.datasets_script CORPUS TOKENIZER_DIR MAX_TOKENS NUM_PROC
SAVE_DIR KEYS`), it writes the result with `save_to_disk(SAVE_DIR)` (timed, as `harness data` writes
its dataset folder), then the kept rows' keys in output order to KEYS, one per line, and prints
one JSON line: seconds, rows, peak RSS of the script and of its worker processes.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def _text(messages) -> str:
    return "\n".join(m["content"] for m in messages)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def dedup_key(batch):
    import xxhash

    rows = zip(batch["prompt"], batch["chosen"], batch["rejected"])
    return {"key": [xxhash.xxh3_128_hexdigest("\x00".join(_normalise(_text(m)) for m in row).encode("utf-8"))
                    for row in rows]}


def make_counter(tokenizer_dir: str):
    from transformers import AutoTokenizer

    backend = AutoTokenizer.from_pretrained(tokenizer_dir).backend_tokenizer

    def count(batch):
        def lengths(column):
            texts = [_text(m) for m in batch[column]]
            return [len(e) for e in backend.encode_batch(texts, add_special_tokens=False)]

        prompt, chosen, rejected = lengths("prompt"), lengths("chosen"), lengths("rejected")
        return {"tokens": [p + max(c, r) for p, c, r in zip(prompt, chosen, rejected)]}

    return count


def prepare(corpus: str, tokenizer_dir: str, max_tokens: int, num_proc: int):
    import datasets
    import numpy as np

    datasets.disable_progress_bars()
    data = datasets.load_dataset("json", data_files=corpus, split="train")
    data = data.map(dedup_key, batched=True, num_proc=num_proc)
    _, first = np.unique(np.asarray(data["key"][:]), return_index=True)
    data = data.select(np.sort(first))
    data = data.map(make_counter(tokenizer_dir), batched=True, num_proc=num_proc)
    data = data.filter(lambda tokens: [n <= max_tokens for n in tokens], input_columns="tokens",
                       batched=True, num_proc=num_proc)
    return data.sort("tokens")


def main(argv: list[str]) -> None:
    import datasets  # noqa: F401  imports are not the work being timed (nor on the harness side)
    import transformers  # noqa: F401

    corpus, tokenizer_dir, max_tokens, num_proc, save_dir, keys = argv
    start = time.perf_counter()
    data = prepare(corpus, tokenizer_dir, int(max_tokens), int(num_proc))
    data.save_to_disk(save_dir)
    seconds = time.perf_counter() - start
    with open(keys, "w", encoding="utf-8") as f:
        f.writelines(key + "\n" for key in data["key"][:])
    print(json.dumps({"seconds": seconds, "rows": len(data),
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


if __name__ == "__main__":
    main(sys.argv[1:])
