"""Reading run files and refusing to rank what is not comparable.

A run file is what ``esr evaluate --json`` writes and what a run directory holds as
``results.json``: the protocol and its version, the device fingerprint, the dataset description,
the baseline's name and one record per submission. Runs are only put in one table when they share
the protocol version and the device fingerprint; anything else is an error that says which runs differ.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.runner.schema import upgrade
from harness.timing import device_name

__all__ = ["RUN_FILE_NAME", "RunFile", "check_comparable", "dataset_label", "load_run", "same_dataset"]

RUN_FILE_NAME = "results.json"


@dataclass(frozen=True)
class RunFile:
    """One run document, with the fields the leaderboard relies on checked and pulled out.

    ``metadata`` keeps the rest of the document as written (harness identity, full device
    fingerprint, timing settings): what a report shows as provenance.
    """

    path: Path
    protocol: str
    protocol_version: int
    fingerprint_id: str
    device_name: str
    dataset: dict[str, Any]
    baseline: str | None
    results: tuple[dict[str, Any], ...]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def document(self) -> dict[str, Any]:
        """The parts of the run document that ``harness.constraints.apply_constraints`` reads."""
        return {"baseline": self.baseline, "dataset": self.dataset, "results": list(self.results)}


def load_run(path: str | Path) -> RunFile:
    """Read a run file; ``path`` is the JSON file itself or a run directory holding ``results.json``.

    The document is migrated to the current schema and validated (:func:`harness.runner.schema.upgrade`),
    so nothing downstream reads an older version.
    """
    path = Path(path)
    file = path / RUN_FILE_NAME if path.is_dir() else path
    if not file.is_file():
        raise HarnessError(
            f"{path}: no run file here (expected a JSON file or a directory with {RUN_FILE_NAME})"
        )
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HarnessError(f"{file}: not a readable JSON run file ({error})") from error
    document = upgrade(raw, str(file))
    device = document["device"]
    return RunFile(
        path=file,
        protocol=document["protocol"],
        protocol_version=document["protocol_version"],
        fingerprint_id=device["fingerprint_id"],
        device_name=device_name(device, fallback=device["fingerprint_id"]),
        dataset=document["dataset"],
        baseline=document.get("baseline"),
        results=tuple(document["results"]),
        metadata={key: value for key, value in document.items() if key != "results"},
    )


def check_comparable(runs: Sequence[RunFile], *, protocol: str, version: int) -> None:
    """Refuse runs of another protocol or version, or measured on different devices."""
    for run in runs:
        if (run.protocol, run.protocol_version) != (protocol, version):
            raise HarnessError(
                f"{run.path}: protocol {run.protocol} v{run.protocol_version}, but this leaderboard is "
                f"{protocol} v{version}; results of different protocol versions are never ranked together"
            )
    for run in runs[1:]:
        first = runs[0]  # only reached with two runs or more
        if run.fingerprint_id != first.fingerprint_id:
            raise HarnessError(
                f"{run.path}: measured on device {run.fingerprint_id} ({run.device_name}), but "
                f"{first.path} on {first.fingerprint_id} ({first.device_name}); runtimes of different "
                "devices are never ranked together: make one leaderboard per device"
            )


def same_dataset(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two dataset descriptions name the same images (by content hash when both have one)."""
    if a.get("content_sha256") and b.get("content_sha256"):
        return a["content_sha256"] == b["content_sha256"]
    keys = ("name", "split", "num_images", "scale")
    return all(a.get(key) == b.get(key) for key in keys)


def dataset_label(dataset: dict[str, Any]) -> str:
    """A short human name such as ``DIV2K val (100 images)``."""
    split = f" {dataset['split']}" if dataset.get("split") else ""
    return f"{dataset.get('name', '?')}{split} ({dataset.get('num_images', '?')} images)"
