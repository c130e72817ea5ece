"""Shared fixtures: where the read-only inputs are, and skips with a reason when they are not."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def _env_dir(variable: str) -> Path | None:
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value).resolve()
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def model_zoo_dir() -> Path:
    """The folder of released weights ($ESR_MODEL_ZOO); tests that need it skip without it."""
    path = _env_dir("ESR_MODEL_ZOO")
    if path is None:
        pytest.skip("ESR_MODEL_ZOO is not set to a folder (export ESR_MODEL_ZOO=../shared/model_zoo)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of benchmark datasets ($ESR_DATA); tests that need it skip without it."""
    path = _env_dir("ESR_DATA")
    if path is None:
        pytest.skip("ESR_DATA is not set to a folder (export ESR_DATA=../shared/datasets)")
    return path


# --- runs for the report and package tests ---------------------------------------------------------

# A synthetic run over three smooth 96x96 images in the SelfExSR layout, whose outputs are saved:
# "close" adds one grey level to every other pixel (a checkerboard); "blotched" adds 50 grey levels
# inside one 32x32 window (x, y, side = BLOTCH); the baseline adds one grey level everywhere;
# "broken" failed. Its bicubic is not in the run.
SYNTHETIC_IMAGES = ("img_001", "img_002", "img_003")
BLOTCH = (56, 8, 32)
SYNTHETIC_FAILURE = (
    "RuntimeError: " + "the forward pass of the model raised deep inside its attention block; " * 4
)


def smooth_hr(index: int) -> np.ndarray:
    """A 96x96 RGB ramp (no wrap-around), which bicubic upscaling of its LR reproduces closely."""
    y, x = np.mgrid[0:96, 0:96]
    channels = [x + y + 10 * index, x + 20 + y // 2, 200 - x // 2 - y // 2 + index]
    return np.stack(channels, axis=2).astype(np.uint8)


def _outputs(hr: np.ndarray) -> dict[str, np.ndarray]:
    x, y, side = BLOTCH
    blotched = hr.copy()
    blotched[y : y + side, x : x + side] += 50
    rows, columns = np.indices(hr.shape[:2])
    return {
        "close": hr + ((rows + columns) % 2).astype(np.uint8)[:, :, None],
        "blotched": blotched,
        "imdn_baseline": hr + 1,
    }


def _record(name: str, per_image: list[dict[str, Any]], ms: float, **extra: Any) -> dict[str, Any]:
    psnrs = [entry["psnr_rgb"] for entry in per_image]
    return {
        "submission": name,
        "team": f"team {name}",
        "role": "baseline" if name == "imdn_baseline" else "submission",
        "status": "ok",
        "error": None,
        "psnr_rgb": sum(psnrs) / len(psnrs),
        "psnr_y": None,
        "ssim_rgb": 0.9,
        "ssim_y": 0.9,
        "runtime_ms": {"mean": ms, "median": ms, "p90": ms, "std": 0.0},
        "max_memory_mb": None,
        "params": 500_000,
        "flops": 30_000_000_000,
        "activations": 100_000_000,
        "num_conv": 30,
        "num_images": len(per_image),
        "per_image": per_image,
        "constraints": [
            {
                "name": "complete",
                "value": 3,
                "limit": 3,
                "operator": "==",
                "passed": True,
                "kind": "completeness",
                "unit": "images",
                "note": "",
            },
            {
                "name": "runtime",
                "value": ms / 40.0,
                "limit": 1.0,
                "operator": "<=",
                "passed": True,
                "kind": "relative",
                "unit": "x baseline",
                "note": "",
            },
        ],
        "valid": True,
        **extra,
    }


@pytest.fixture
def synthetic_run(tmp_path: Path) -> Path:
    """The run folder (results.json and images/) of the synthetic run; its dataset is beside it."""
    from harness.data import open_dataset, write_png
    from harness.imresize import imresize
    from harness.metrics import fidelity

    data = tmp_path / "Tiny" / "image_SRF_4"
    run_dir = tmp_path / "run"
    per_image: dict[str, list[dict[str, Any]]] = {}
    for index, image in enumerate(SYNTHETIC_IMAGES):
        hr = smooth_hr(index)
        write_png(data / f"{image}_SRF_4_HR.png", hr)
        write_png(data / f"{image}_SRF_4_LR.png", imresize(hr, 1 / 4))
        for name, sr in _outputs(hr).items():
            write_png(run_dir / "images" / name / f"{image}.png", sr)
            scores = fidelity(sr, hr, border=4)
            per_image.setdefault(name, []).append({"name": image, **scores, "runtime_ms": 1.0})
    dataset = open_dataset(str(tmp_path / "Tiny"))
    close = _record("close", per_image["close"], 20.0)
    close["constraints"][1] |= {"interval": [0.45, 0.55]}
    blotched = _record("blotched", per_image["blotched"], 39.0, valid=None)
    blotched["constraints"][1] |= {"verdict": "inconclusive", "interval": [0.9, 1.05], "passed": False}
    # A failed record as the run writes it, with only the fields the report and package read.
    broken = {"submission": "broken", "status": "failed", "error": SYNTHETIC_FAILURE, "num_images": 0}
    broken |= {"per_image": [], "constraints": [], "valid": False}
    document = {
        "harness": {"version": "0.1.0", "git_commit": "0123456789abcdef", "git_dirty": False},
        "protocol": "ntire2022",
        "protocol_version": 1,
        "device": {"gpu_name": "Test GPU", "fingerprint_id": "gpu-test", "torch_version": "2.0"},
        "dataset": dataset.describe(),
        "timing": {"device": "cuda", "repeats": 1},
        "baseline": "imdn_baseline",
        "timing_session": "session-1",
        "retimed": [],
        "results": [close, blotched, broken, _record("imdn_baseline", per_image["imdn_baseline"], 40.0)],
    }
    (run_dir / "results.json").write_text(json.dumps(document))
    return run_dir


@pytest.fixture(scope="session")
def set5_run(model_zoo_dir: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The acceptance run: clb_imdn, imdn_baseline, rfdn_baseline and bicubic on Set5, images saved (CPU)."""
    from harness.commands import run as esr

    out = tmp_path_factory.mktemp("set5") / "run"
    submissions = ["clb_imdn", "imdn_baseline", "rfdn_baseline", "bicubic"]
    options = [
        "--data",
        str(data_dir / "Set5"),
        "--device",
        "cpu",
        "--save-images",
        "--quiet",
        "--out",
        str(out),
    ]
    options += ["--cache-dir", str(out.parent / "cache"), "--model-zoo", str(model_zoo_dir)]
    assert esr(["evaluate", *submissions, *options]) == 0
    return out


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless browser of the report tests; without one they skip and say why."""
    from browser import find_browser

    binary = find_browser()
    if binary is None:
        hint = "apt-get install chromium (.ci/run installs it), or set ESR_CHROMIUM to a Chromium binary"
        pytest.skip(f"no Chromium on this machine: {hint}")
    return binary


def edition_checkout(edition: str) -> Path:
    """The checkout of an edition's official repository ($ESR_NTIRE2026_ZOO ...); skip without it."""
    variable = f"ESR_{edition.upper()}_ZOO"
    path = _env_dir(variable)
    if path is None or not (path / "models").is_dir():
        repository = "ofsoundof" if edition in ("ntire2022", "ntire2023") else "Amazingren"
        pytest.skip(
            f"{variable} is not set to a checkout of the official {edition.upper()}_ESR repository "
            f"(github.com/{repository}/{edition.upper()}_ESR)"
        )
    return path


# Top-level packages and modules of the official repositories, imported from a checkout's root.
CHECKOUT_PACKAGES = ("models", "utils", "test_demo")


@pytest.fixture
def checkout_imports():
    """Forget the checkout's packages, its ``sys.path`` entry and a changed working directory after
    the test: every edition's repository has its own top-level ``models`` package."""
    import sys

    path_before, cwd_before = list(sys.path), os.getcwd()
    yield
    sys.path[:] = path_before
    os.chdir(cwd_before)
    for name in [n for n in sys.modules if n.split(".")[0] in CHECKOUT_PACKAGES]:
        del sys.modules[name]
