"""Result cache: one file per (submission, weights, data, split, protocol, device) identity.

A complete result lives in ``<key>.json``; an interrupted one in ``<key>.partial.json``, holding the
per-image records done so far, so a rerun resumes where the last one stopped. Both are written
atomically after every change, so a crash never leaves a corrupt file behind.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic

CACHE_FORMAT = 2  # 2: results record the timing session that measured them


def cache_key(identity: dict[str, Any]) -> str:
    """A stable hash of every field that can change a result."""
    canonical = json.dumps({"format": CACHE_FORMAT, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class ResultCache:
    """The cache folder; ``None`` fields of an identity are part of the key like any other value."""

    folder: Path

    def _complete(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def _partial(self, key: str) -> Path:
        return self.folder / f"{key}.partial.json"

    def load_complete(self, key: str) -> dict[str, Any] | None:
        return _read_json(self._complete(key))

    def load_partial(self, key: str) -> dict[str, Any] | None:
        return _read_json(self._partial(key))

    def save_partial(self, key: str, state: dict[str, Any]) -> None:
        write_json_atomic(self._partial(key), state)

    def save_complete(self, key: str, record: dict[str, Any]) -> None:
        write_json_atomic(self._complete(key), record)
        self._partial(key).unlink(missing_ok=True)

    def forget(self, key: str) -> None:
        self._complete(key).unlink(missing_ok=True)
        self._partial(key).unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A cache file, or None when absent or unreadable (an unreadable entry is simply recomputed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
