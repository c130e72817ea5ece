"""An edition's published results (2024+): the printed table, and its per-image figures when published.

``results/published/<edition>_esr_results.csv`` transcribes the repository's ``results.txt`` (one
row per model, values as printed); ``<edition>_esr_per_image.csv`` transcribes its ``results.json``
(every image's runtime and PSNR, for both splits). From the per-image figures this module derives
what the printed table cannot show: each runtime's 95% interval, whether two neighbours in the
published order are told apart by their own measurements, and where rounding moved a PSNR across a
threshold.

Intervals are Student-t intervals over images. A published runtime is the mean of the val and test
means (``Ave Time``); its interval uses the spread of per-image runtimes, which mostly reflects
image sizes. Two entries ran on the same images, so their order is judged on the paired per-image
differences, where image size cancels out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats

from harness.errors import HarnessError

__all__ = [
    "PerImage",
    "PublishedEdition",
    "RuntimeInterval",
    "load_published_edition",
    "paired_runtime_difference",
]

RESULT_COLUMNS = (
    "model",
    "official_model_id",
    "val_psnr_db",
    "test_psnr_db",
    "val_time_ms",
    "test_time_ms",
    "ave_time_ms",
    "params_m",
    "flops_g",
    "acts_m",
    "mem_mb",
    "num_conv",
)
PER_IMAGE_COLUMNS = ("model", "official_model_id", "split", "image_index", "runtime_ms", "psnr_db")
SPLITS = ("val", "test")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class RuntimeInterval:
    """A mean runtime (or difference of two) and its 95% interval, in ms."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class PerImage:
    """One model's published per-image runtimes and PSNRs, by split, in image order."""

    runtime_ms: dict[str, tuple[float, ...]]
    psnr_db: dict[str, tuple[float, ...]]

    def mean_psnr(self, split: str) -> float:
        """The unrounded mean PSNR of a split, summed exactly (fsum), as the printed value was rounded from."""
        values = self.psnr_db[split]
        return math.fsum(values) / len(values)

    def ave_time(self) -> RuntimeInterval:
        """``Ave Time``: the mean of the val and test mean runtimes, with its 95% interval."""
        return _mean_of_split_means({split: self.runtime_ms[split] for split in SPLITS})


def _mean_of_split_means(samples: dict[str, tuple[float, ...]]) -> RuntimeInterval:
    means = [math.fsum(samples[split]) / len(samples[split]) for split in SPLITS]
    variance = sum(stats.tvar(samples[split]) / len(samples[split]) for split in SPLITS) / 4
    freedom = min(len(samples[split]) for split in SPLITS) - 1
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, freedom) * math.sqrt(variance)
    mean = sum(means) / 2
    return RuntimeInterval(mean, mean - half, mean + half)


def paired_runtime_difference(first: PerImage, second: PerImage) -> RuntimeInterval:
    """``Ave Time`` of ``first`` minus that of ``second``, with a 95% interval from paired images."""
    differences = {}
    for split in SPLITS:
        a, b = first.runtime_ms[split], second.runtime_ms[split]
        if len(a) != len(b):
            raise HarnessError(
                f"per-image runtimes of the {split} split differ in length ({len(a)} vs {len(b)})"
            )
        differences[split] = tuple(x - y for x, y in zip(a, b, strict=True))
    return _mean_of_split_means(differences)


@dataclass(frozen=True)
class PublishedEdition:
    """The printed rows (``rows``, as transcribed) and, when published, the per-image figures by model."""

    rows: pd.DataFrame
    per_image: dict[str, PerImage]
    source: Path


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"model": str, "split": str})
    except (OSError, ValueError) as error:
        raise HarnessError(f"{path}: not a readable CSV ({error})") from error
    if tuple(frame.columns) != columns:
        raise HarnessError(f"{path}: columns {list(frame.columns)}, expected {list(columns)}")
    return frame


def load_published_edition(folder: Path, edition: str) -> PublishedEdition | None:
    """The published table of ``edition`` in ``folder``, or None when the edition publishes none."""
    path = folder / f"{edition}_esr_results.csv"
    if not path.is_file():
        return None
    rows = _read(path, RESULT_COLUMNS)
    per_image: dict[str, PerImage] = {}
    images_path = folder / f"{edition}_esr_per_image.csv"
    if images_path.is_file():
        runtimes: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        psnrs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for item in _read(images_path, PER_IMAGE_COLUMNS).itertuples(index=False):
            runtimes[item.model][item.split].append(float(item.runtime_ms))
            psnrs[item.model][item.split].append(float(item.psnr_db))
        for model in runtimes:
            if set(runtimes[model]) != set(SPLITS):
                raise HarnessError(f"{images_path}: {model} lacks a split (has {sorted(runtimes[model])})")
            per_image[model] = PerImage(
                runtime_ms={split: tuple(runtimes[model][split]) for split in SPLITS},
                psnr_db={split: tuple(psnrs[model][split]) for split in SPLITS},
            )
        unknown = sorted(set(per_image) - set(rows["model"]))
        if unknown:
            raise HarnessError(f"{images_path}: models not in {path.name}: {', '.join(unknown)}")
    return PublishedEdition(rows=rows, per_image=per_image, source=path)
