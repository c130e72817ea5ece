"""Result cache: one entry per (submission, weights, model source, data, protocol, device) identity.

A complete result lives in ``<key>.json``. An unfinished accuracy pass lives in a *partial slot*,
``<key>.<slot>.partial.json``, holding the per-image records done so far, beside a lock file
``<key>.<slot>.lock`` that the run writing the slot holds (``flock``) for as long as it lives.

Safe against kills and concurrent runs:

* every file is written atomically (temporary file + rename), so a kill never leaves a truncated one;
* a run resumes a partial slot only when it can take the slot's lock: the slot of a killed run (the
  kernel released its lock) is picked up where it stopped, while the slot of a run still going is
  left alone, and the new run starts a slot of its own. Two runs never write into one slot, so an
  entry never mixes the work of two runs;
* complete entries are content-addressed by their key: two runs that finish the same identity both
  write a valid, complete record, and the last rename wins.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic

CACHE_FORMAT = 3  # 3: partial slots with locks; keys cover the model source and the harness commit


def cache_key(identity: dict[str, Any]) -> str:
    """A stable hash of every field that can change a result."""
    canonical = json.dumps({"format": CACHE_FORMAT, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


@dataclass
class PartialSlot:
    """One run's unfinished entry: its state file and the open, locked file that proves ownership."""

    state_path: Path
    lock_path: Path
    lock_fd: int
    state: dict[str, Any] | None = field(default=None)

    def save(self, state: dict[str, Any]) -> None:
        write_json_atomic(self.state_path, state)

    def release(self, *, remove: bool) -> None:
        """Give the slot up; ``remove`` deletes it (its result is complete, or it is discarded)."""
        if remove:
            self.state_path.unlink(missing_ok=True)
            self.lock_path.unlink(missing_ok=True)
        os.close(self.lock_fd)


def _try_lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding an exclusive lock, or None when another process has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


@dataclass(frozen=True)
class ResultCache:
    """The cache folder; ``None`` fields of an identity are part of the key like any other value."""

    folder: Path

    def _complete(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def load_complete(self, key: str) -> dict[str, Any] | None:
        return _read_json(self._complete(key))

    def save_complete(self, key: str, record: dict[str, Any]) -> None:
        write_json_atomic(self._complete(key), record)

    def open_partial(self, key: str, *, resume: bool = True) -> PartialSlot:
        """A partial slot for ``key`` owned by this run: an abandoned one (``resume``), else a new one.

        An abandoned slot is one whose lock nobody holds: its run was killed or failed. The slot with
        the most images done is taken; the others are left for other runs.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if resume:
            candidates = []
            for lock_path in self.folder.glob(f"{key}.*.lock"):
                fd = _try_lock(lock_path)
                if fd is None:
                    continue  # a live run owns it
                state_path = lock_path.with_name(lock_path.name.removesuffix(".lock") + ".partial.json")
                state = _read_json(state_path)
                candidates.append(PartialSlot(state_path, lock_path, fd, state))
            candidates.sort(key=lambda slot: len((slot.state or {}).get("per_image", [])), reverse=True)
            for extra in candidates[1:]:
                extra.release(remove=False)
            if candidates:
                return candidates[0]
        slot_id = uuid.uuid4().hex[:12]
        lock_path = self.folder / f"{key}.{slot_id}.lock"
        fd = _try_lock(lock_path)
        assert fd is not None  # a fresh, unique name
        return PartialSlot(self.folder / f"{key}.{slot_id}.partial.json", lock_path, fd)

    def forget(self, key: str) -> None:
        """Remove the complete entry and every abandoned partial slot of ``key`` (``--force``)."""
        self._complete(key).unlink(missing_ok=True)
        for lock_path in self.folder.glob(f"{key}.*.lock"):
            fd = _try_lock(lock_path)
            if fd is not None:
                PartialSlot(
                    lock_path.with_name(lock_path.name.removesuffix(".lock") + ".partial.json"), lock_path, fd
                ).release(remove=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A cache file, or None when absent or unreadable (an unreadable entry is simply recomputed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
