"""Each submission's place in the result cache: the identity its key hashes, and what the cache holds.

The identity is every field that can change a result (the submission's manifest, model source and
weights, the data, the protocol, the devices, the timing settings, the threads, the harness
commit, the cell). A complete record under that key is reused; otherwise the run takes a partial
slot, resuming the accuracy pass a killed run left there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.protocols import TimingSettings
from harness.runner.cache import ResultCache, cache_key
from harness.runner.entries import AccuracyState, Entry
from harness.runner.settings import RunConfig
from harness.submissions import model_source_digest
from harness.timing import fingerprint_id

# Settings whose default adds no key to a cache key: results cached before the setting existed
# were taken with that default and still count.
_KEYLESS_DEFAULTS = {"clock": "wall", "fresh_workers": False}


def timing_identity(timing: TimingSettings) -> dict[str, Any]:
    """What of the timing settings a cache key hashes: all but the worker's time limit (it decides
    whether a result comes, not what it is) and the settings at their keyless defaults."""
    return {
        key: value
        for key, value in timing.as_dict().items()
        if key != "timeout_seconds" and not (key in _KEYLESS_DEFAULTS and value == _KEYLESS_DEFAULTS[key])
    }


@dataclass(frozen=True)
class CacheLookup:
    """The run's side of every cache key: its data, devices, settings and harness."""

    cache: ResultCache
    config: RunConfig
    description: dict[str, Any]  # the dataset's (harness.data.Dataset.describe)
    fingerprints: Sequence[dict[str, Any]]  # each lane's device
    threads: int
    harness: dict[str, Any]
    image_names: Sequence[str]

    def identity(self, entry: Entry) -> dict[str, Any]:
        """What ``entry``'s cache key hashes."""
        return {
            "submission": entry.name,
            "manifest": entry.submission.to_dict(),
            "model_source": model_source_digest(entry.submission),
            "weights_sha256": entry.weights.sha256 if entry.weights else None,
            "dataset_sha256": self.description["content_sha256"],
            "split": self.description["split"],
            "scale": self.description["scale"],
            "protocol": self.config.protocol_name,
            "protocol_version": self.config.protocol_version,
            "devices": sorted({fingerprint_id(fingerprint) for fingerprint in self.fingerprints}),
            "timing": timing_identity(self.config.timing),
            "threads": self.threads,
            "harness": self.harness,
            # Only another cell adds a key, so fp32 results cached before cells existed still count.
            **({"cell": entry.cell} if entry.cell != "fp32" else {}),
        }

    def look_up(self, entries: Sequence[Entry]) -> None:
        """Each entry's cache key; its complete record, or the partial slot this run fills."""
        for entry in entries:
            if not entry.ok:
                continue
            try:
                entry.key = cache_key(self.identity(entry))
            except HarnessError as error:  # its model source cannot be read: the submission's fault
                entry.failure = str(error)
                continue
            if self.config.force:
                self.cache.forget(entry.key)
            entry.cached_record = self.cache.load_complete(entry.key)
            if entry.cached_record is not None and self._images_missing(entry):
                entry.cached_record = None  # images were asked for: the accuracy pass runs again
            if entry.cached_record is None:
                entry.slot = self.cache.open_partial(entry.key)
                entry.state = AccuracyState.from_slot(entry.slot.state)

    def _images_missing(self, entry: Entry) -> bool:
        folder = self.config.save_images_dir
        if folder is None:
            return False
        return any(not (folder / entry.name / f"{name}.png").is_file() for name in self.image_names)


def all_cached_together(entries: Sequence[Entry]) -> bool:
    """Whether every entry that has not failed has a complete record, all timed in one session
    (then nothing needs running: their ratios already compare measurements taken side by side)."""
    ok = [entry for entry in entries if entry.ok]
    sessions = {entry.cached_record.get("timing_session") for entry in ok if entry.cached_record is not None}
    return bool(ok) and all(entry.cached_record is not None for entry in ok) and len(sessions) == 1
