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


def _require(mapping: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise HarnessError(f"{where}: field {key!r} is missing or not {getattr(kind, '__name__', kind)}")
    return value


def load_run(path: str | Path) -> RunFile:
    """Read a run file; ``path`` is the JSON file itself or a run directory holding ``results.json``."""
    path = Path(path)
    file = path / RUN_FILE_NAME if path.is_dir() else path
    if not file.is_file():
        raise HarnessError(
            f"{path}: no run file here (expected a JSON file or a directory with {RUN_FILE_NAME})"
        )
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HarnessError(f"{file}: not a readable JSON run file ({error})") from error
    if not isinstance(document, dict):
        raise HarnessError(f"{file}: a run file is a JSON object, got {type(document).__name__}")
    device = _require(document, "device", dict, str(file))
    fingerprint = _require(device, "fingerprint_id", str, f"{file} device")
    dataset = _require(document, "dataset", dict, str(file))
    results = _require(document, "results", list, str(file))
    for index, record in enumerate(results):
        where = f"{file} results[{index}]"
        if not isinstance(record, dict):
            raise HarnessError(f"{where}: a result record is a JSON object")
        _require(record, "submission", str, where)
        _require(record, "status", str, where)
    baseline = document.get("baseline")
    return RunFile(
        path=file,
        protocol=_require(document, "protocol", str, str(file)),
        protocol_version=_require(document, "protocol_version", int, str(file)),
        fingerprint_id=fingerprint,
        device_name=device_name(device, fallback=fingerprint),
        dataset=dataset,
        baseline=baseline if isinstance(baseline, str) else None,
        results=tuple(results),
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
