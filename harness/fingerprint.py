"""Content fingerprints: a stable hash of canonical JSON, used for every cache key."""

from __future__ import annotations

import json

import xxhash

from harness.schema import plain


def fingerprint(*parts) -> str:
    text = json.dumps(plain(list(parts)), sort_keys=True, ensure_ascii=False, default=str)
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8"))
