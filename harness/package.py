"""Challenge submission packages: a run's SR images and the organisers' readme.txt in one zip.

The format is the one NTIRE challenges ask for on CodaLab: a zip with no folders, holding one PNG
per image of the split and a ``readme.txt`` whose first lines are, in this order::

    runtime per image [s] : 0.0271
    CPU[1] / GPU[0] : 0
    Extra Data [1] / No Extra Data [0] : 0
    Other description : free text (method, code, dependencies, ...)

(Source: the NTIRE 2022 organisers' submission instructions, e.g. evaluation/README.md of
github.com/affromero/NTIRE22_Inpainting, where the image challenges say "per image"; the SR files
are named as the official NTIRE 2022 ESR ``test_demo.py`` saves them, after the HR image: 0801.png.)

The values come from the run: the protocol's runtime statistic per image in seconds, and CPU or GPU
from the device it was measured on. Whether extra training data was used no run can know: the
caller states it. A run that failed, is incomplete or saved no images is refused before anything
is written.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_path
from harness.data import reopen_dataset
from harness.data.images import image_size
from harness.errors import HarnessError
from harness.leaderboard import RunFile
from harness.protocols import load_protocol
from harness.provenance import describe_identity

__all__ = ["README_NAME", "Package", "build_package", "readme_text", "sr_file_name"]

README_NAME = "readme.txt"
# A fixed time stamp for every member, so that one run always gives the same zip, byte for byte.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Package:
    """What was written: the zip, its image names in order, and the readme text."""

    path: Path
    images: tuple[str, ...]
    readme: str


def readme_text(*, runtime_s: float, cpu: bool, extra_data: bool, description: str) -> str:
    """The organisers' readme.txt: the three fixed fields, then the free description."""
    return (
        f"runtime per image [s] : {runtime_s:.6f}\n"
        f"CPU[1] / GPU[0] : {int(cpu)}\n"
        f"Extra Data [1] / No Extra Data [0] : {int(extra_data)}\n"
        f"Other description : {' '.join(description.split())}\n"
    )


def sr_file_name(name: str, hr_path: Path | None) -> str:
    """The name the organisers expect for one SR image: the HR file's, as a PNG (the image's name without HR)."""
    return f"{hr_path.stem if hr_path is not None else name}.png"


def _record(run: RunFile, submission: str) -> dict[str, Any]:
    """The submission's record, refused when it cannot be handed in (one line saying why)."""
    records = [record for record in run.results if record["submission"] == submission]
    if not records:
        names = ", ".join(record["submission"] for record in run.results)
        raise HarnessError(f"{run.path}: no result for {submission!r} (the run has: {names})")
    record = records[0]
    if record.get("status") != "ok":
        raise HarnessError(
            f"{run.path}: {submission} failed in this run ({record.get('error')}); nothing to hand in"
        )
    expected = run.dataset.get("expected_images", run.dataset.get("num_images"))
    evaluated = record.get("num_images")
    if evaluated != expected:
        raise HarnessError(
            f"{run.path}: {submission} ran on {evaluated} of {expected} images of the split; "
            "the organisers expect every one"
        )
    return record


def _description(run: RunFile, record: dict[str, Any], statistic: str, extra: str | None) -> str:
    split = f" {run.dataset['split']}" if run.dataset.get("split") else ""
    measured = (
        f"{record['submission']} ({record.get('team') or 'no team'}): runtime = {statistic} over "
        f"{record.get('num_images')} images of {run.dataset.get('name')}{split} on {run.device_name}, "
        f"measured with {describe_identity(run.metadata.get('harness') or {})}, "
        f"protocol {run.protocol} v{run.protocol_version}."
    )
    return f"{extra.strip()} {measured}" if extra else measured


def build_package(
    run: RunFile,
    submission: str,
    out: Path,
    *,
    extra_data: bool,
    description: str | None = None,
    data: str | None = None,
) -> Package:
    """Write the submission package of ``submission`` in ``run`` to ``out`` (atomically).

    ``data`` replaces the dataset folder the run recorded (used to name the files after the HR images).
    """
    record = _record(run, submission)
    statistic = load_protocol(run.protocol).timing.statistic
    runtime_ms = (record.get("runtime_ms") or {}).get(statistic)
    if not isinstance(runtime_ms, int | float):
        raise HarnessError(f"{run.path}: {submission} has no runtime_ms.{statistic} to report")
    folder = run.path.parent / "images" / submission
    if not folder.is_dir():
        raise HarnessError(
            f"{run.path}: the run saved no SR images for {submission} ({folder} is missing); "
            "evaluate with --save-images"
        )
    dataset = reopen_dataset(run.dataset, spec=data)
    recorded = [entry["name"] for entry in record.get("per_image") or []]
    if sorted(recorded) != sorted(item.name for item in dataset.items):
        raise HarnessError(f"{run.path}: the images {submission} ran on are not those of {dataset.name}")
    members: list[tuple[str, Path]] = []
    for item in dataset.items:
        path = folder / f"{item.name}.png"
        if not path.is_file():
            raise HarnessError(f"{path}: missing; the run did not save every SR image of {submission}")
        lr_width, lr_height = image_size(item.lr_path) if item.lr_path is not None else (None, None)
        if lr_width is not None and image_size(path) != (lr_width * dataset.scale, lr_height * dataset.scale):
            raise HarnessError(f"{path}: {image_size(path)} pixels, not x{dataset.scale} its LR image")
        members.append((sr_file_name(item.name, item.hr_path), path))
    readme = readme_text(
        runtime_s=runtime_ms / 1000.0,
        cpu=not str(run.metadata.get("timing", {}).get("device", "")).startswith("cuda"),
        extra_data=extra_data,
        description=_description(run, record, statistic, description),
    )
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in members:
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), path.read_bytes(), zipfile.ZIP_STORED)
        archive.writestr(zipfile.ZipInfo(README_NAME, _ZIP_TIME), readme, zipfile.ZIP_DEFLATED)
    return Package(out, tuple(name for name, _ in members), readme)
