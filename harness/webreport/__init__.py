"""A self-contained HTML report of runs: leaderboard, plot, verdicts, per-image table, visual comparisons.

Entry point: :func:`build_report` returns the page as one string. Everything it shows is embedded
(images as data URIs, the style sheet and the small sorting script inline), so the file opens from
disk with no network: no CDN, no fonts, no requests. The leaderboard comes from
``harness.leaderboard.build_leaderboard`` in any style it knows; the visual comparisons need the
runs' images (``esr evaluate --save-images``) or, for the images shown, run the submissions again.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from harness import __version__
from harness.comparison import ComparisonDocument
from harness.data import reopen_dataset
from harness.errors import HarnessError
from harness.leaderboard import Leaderboard, RunFile, protocol_of
from harness.leaderboard.plot import plot_png
from harness.leaderboard.runs import dataset_label, same_dataset
from harness.provenance import describe_identity, harness_identity
from harness.webreport.comparisons import BICUBIC, ComparisonRow, Shown, build_comparisons, choose_images
from harness.webreport.crops import MIN_SIDE, Crop, parse_crop
from harness.webreport.outputs import OutputSource
from harness.webreport.rounds_plot import rounds_plot_png
from harness.webreport.tables import (
    cells_table,
    constraints_table,
    leaderboard_table,
    per_image_table,
    runtime_comparisons_table,
)

__all__ = ["Report", "ReportSettings", "build_report", "parse_crop"]

_TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class ReportSettings:
    """What the comparisons show and where their inputs come from."""

    comparisons: bool = True
    images: tuple[str, ...] = ()
    crops: tuple[Crop, ...] = ()
    max_images: int = 12
    crop_size: int = 64
    zoom: int = 3
    data: str | None = None
    device: torch.device = torch.device("cpu")
    model_zoo: Path | None = None
    zoo: Path | None = None
    weights_cache: Path | None = None
    trust_weights: bool = False

    def __post_init__(self) -> None:
        if self.zoom < 1 or self.max_images < 1:
            raise HarnessError(
                f"--zoom and --max-images: must be at least 1, got {self.zoom} and {self.max_images}"
            )
        if self.crop_size < MIN_SIDE:
            raise HarnessError(f"--crop-size {self.crop_size}: must be at least {MIN_SIDE} pixels (for SSIM)")


@dataclass(frozen=True)
class Report:
    """The page, and what it says about how its comparisons were made (for the command to print too)."""

    html: str
    comparison_rows: int
    notes: tuple[str, ...]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _primary(runs: Sequence[RunFile]) -> list[RunFile]:
    """The runs on the first run's dataset: the images the per-image table and the crops are about."""
    return [run for run in runs if same_dataset(run.dataset, runs[0].dataset)] if runs else []


def _ok_records(runs: Sequence[RunFile]) -> list[tuple[RunFile, dict[str, Any]]]:
    """Each submission's successful record once (a baseline repeated in several runs counts once)."""
    seen: set[str] = set()
    found = []
    for run in runs:
        for record in run.results:
            if record.get("status") == "ok" and record["submission"] not in seen:
                seen.add(record["submission"])
                found.append((run, record))
    return found


Metrics = dict[str, dict[str, tuple[float | None, float | None]]]


def _per_image(records: Sequence[tuple[RunFile, dict[str, Any]]], channel: str) -> tuple[list[str], Metrics]:
    """Image names in order, and submission -> image -> (PSNR, SSIM) on ``channel`` as recorded."""
    names: list[str] = []
    metrics: Metrics = {}
    for _, record in records:
        entries = record.get("per_image") or []
        if not entries:
            continue
        metrics[record["submission"]] = {
            entry["name"]: (entry.get(f"psnr_{channel}"), entry.get(f"ssim_{channel}")) for entry in entries
        }
        names += [entry["name"] for entry in entries if entry["name"] not in names]
    return names, metrics


def _comparisons(
    primary: Sequence[RunFile], metrics: Metrics, settings: ReportSettings, channel: str, border: int
) -> tuple[list[ComparisonRow], list[str]]:
    """The comparison rows and the lines that say how they were made."""
    if not settings.comparisons:
        return [], ["Visual comparisons were not asked for (--no-comparisons)."]
    if not primary:
        return [], ["No run, so no visual comparisons."]
    dataset = reopen_dataset(primary[0].dataset, spec=settings.data)
    if not dataset.has_hr:
        return [], [f"{dataset.name} has no HR images: no visual comparisons."]
    recorded = {name: {image: pair[0] for image, pair in pairs.items()} for name, pairs in metrics.items()}
    in_runs = {record["submission"]: run.path.parent for run, record in _ok_records(primary)}
    shown = [Shown(BICUBIC, in_runs.get(BICUBIC), recorded.get(BICUBIC, {}))]
    shown += [
        Shown(name, folder, recorded.get(name, {})) for name, folder in in_runs.items() if name != BICUBIC
    ]
    hand = {crop.image: crop for crop in settings.crops}
    names = [item.name for item in dataset.items]
    images = choose_images(
        names, list(recorded.values()), requested=settings.images, limit=settings.max_images
    )
    images += [name for name in names if name in hand and name not in images]
    images.sort(key=names.index)
    source = OutputSource(
        settings.device,
        model_zoo=settings.model_zoo,
        zoo=settings.zoo,
        weights_cache=settings.weights_cache,
        trust_weights=settings.trust_weights,
        border=border,
        channel=channel,
    )
    rows = build_comparisons(
        dataset,
        shown,
        images,
        hand_crops=hand,
        crop_size=settings.crop_size,
        zoom=settings.zoom,
        source=source,
        channel=channel,
    )
    lines = [
        f"{len(rows)} of the {len(names)} images of {dataset.name}. Crops are in HR pixels, "
        f"enlarged {settings.zoom}x with nearest-neighbour; each caption gives the PSNR / SSIM "
        f"({channel.upper()}) of that crop. Automatic crops ({settings.crop_size}x{settings.crop_size}) are "
        "where the outputs differ most: the highest variance across outputs of the per-pixel error."
    ]
    made = {name: images_made for name, images_made in source.regenerated.items() if name in in_runs}
    if made:
        listing = ", ".join(
            f"{name} ({len(done)} image{'s' if len(done) > 1 else ''})" for name, done in made.items()
        )
        agreement = (
            "each agrees with the PSNR its run recorded"
            if not source.mismatches
            else "they differ from the runs here: " + "; ".join(source.mismatches)
        )
        lines.append(
            f"The runs saved no SR images for these (evaluate with --save-images to use them), so the report "
            f"ran the submissions again on the images shown: {listing}; {agreement}."
        )
    if BICUBIC not in in_runs:
        lines.append(
            "bicubic is not in the runs: its crops come from the bundled MATLAB-exact bicubic submission."
        )
    lines += [f"{name}: not available ({reason})." for name, reason in source.unavailable.items()]
    return rows, lines


def _comparison_view(row: ComparisonRow, zoom: int) -> dict[str, Any]:
    crop = row.crop
    panels = []
    for panel in row.panels:
        caption = "" if panel.psnr is None else f"{panel.psnr:.2f} dB / {panel.ssim:.4f}"
        panels.append({"title": panel.title, "png": panel.png and _b64(panel.png), "caption": caption})
    return {
        "image": row.image,
        "size": f"{row.image_size[0]}x{row.image_size[1]}",
        "where": f"x {crop.x}, y {crop.y}, {crop.width}x{crop.height}",
        "how": "chosen by hand" if crop.by_hand else "where the outputs differ most",
        "overview": _b64(row.overview),
        "side_w": crop.width * zoom,
        "side_h": crop.height * zoom,
        "panels": panels,
    }


def _written(path: Path) -> str:
    try:
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return "unknown"
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC") + " (when its run file was written)"


def _run_provenance(run: RunFile) -> dict[str, Any]:
    metadata = run.metadata
    device = metadata.get("device") or {}
    software = ", ".join(
        f"{name} {device[key]}"
        for name, key in (("torch", "torch_version"), ("CUDA", "cuda_version"), ("cuDNN", "cudnn_version"))
        if device.get(key)
    )
    timing = metadata.get("timing") or {}
    items = [
        ("run file", str(run.path)),
        ("date", _written(run.path)),
        ("harness", describe_identity(metadata.get("harness") or {})),
        ("protocol", f"{run.protocol} v{run.protocol_version}"),
        ("device", f"{run.device_name}, fingerprint {run.fingerprint_id}"),
        ("software", software or "-"),
        ("timing", ", ".join(f"{key} {value}" for key, value in timing.items()) or "-"),
        ("timing session", str(metadata.get("timing_session") or "-")),
        ("dataset", dataset_label(run.dataset) + f", layout {run.dataset.get('layout', '?')}"),
        ("dataset content sha256", str(run.dataset.get("content_sha256") or "-")),
    ]
    return {"title": f"Run {run.path.parent.name or run.path.name}", "items": items}


def build_report(
    runs: Sequence[RunFile],
    board: Leaderboard | None,
    settings: ReportSettings,
    runtime_comparisons: Sequence[tuple[str, ComparisonDocument]] = (),
) -> Report:
    """The HTML page for ``runs`` with ``board`` (built from them by ``build_leaderboard``; None
    with no runs, when the page shows only ``runtime_comparisons``).

    ``runtime_comparisons``: ``esr compare --json`` documents with where each came from, shown in a
    section of their own (a compare run writes no run file: its ratios are to a submission, not
    to the protocol's baseline, so they belong in no leaderboard).
    """
    protocol = protocol_of(runs)
    channel = protocol.fidelity_channel
    primary = _primary(runs)
    names, metrics = _per_image(_ok_records(primary), channel)
    rows, comparison_notes = (
        _comparisons(primary, metrics, settings, channel, protocol.border) if runs else ([], [])
    )
    plot, plot_missing = "", ""
    if board is not None:
        try:
            plot = _b64(plot_png(board))
        except HarnessError as error:
            plot_missing = str(error)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    subject = dataset_label(runs[0].dataset) if runs else "runtime comparisons"
    context = {
        "title": f"Efficient SR report: {subject}, {protocol.name} v{protocol.version}",
        "lede": f"{len(runs)} run(s), {sum(len(run.results) for run in runs)} result(s)"
        + (f", {len(runtime_comparisons)} comparison(s)" if runtime_comparisons else "")
        + f"; generated {generated} "
        f"by esr-harness {__version__}. Self-contained: it makes no network requests.",
        "version": __version__,
        "has_runs": board is not None,
        "board_title": board.title if board is not None else "",
        "board_notes": board.notes if board is not None else [],
        "leaderboard": leaderboard_table(board) if board is not None else None,
        "plot": plot,
        "plot_missing": plot_missing,
        "constraints": constraints_table(runs),
        "cells": cells_table(runs, channel),
        "runtime_comparisons": runtime_comparisons_table(runtime_comparisons),
        "rounds_plot": _b64(rounds) if (rounds := rounds_plot_png(runs)) is not None else "",
        "per_image": per_image_table(names, metrics, channel) if metrics else None,
        "per_image_lede": f"As the runs recorded them, on {channel.upper()} with the protocol's border of "
        f"{protocol.border} pixels; the best of each row is highlighted.",
        "comparisons": [_comparison_view(row, settings.zoom) for row in rows],
        "comparison_notes": comparison_notes,
        "provenance": [
            *(_run_provenance(run) for run in runs),
            {
                "title": "This report",
                "items": [
                    ("generated", generated),
                    ("by", describe_identity(harness_identity())),
                ],
            },
        ],
    }
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).resolve().parent),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    page = environment.get_template(_TEMPLATE).render(context)
    return Report(page, len(rows), tuple(comparison_notes))
