"""DIV2K_LSDIR (NTIRE 2024+) folders, read as the official scripts read them, and an ntire2026 run on one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.commands import run as esr
from harness.data import open_dataset
from harness.errors import HarnessError
from harness.models.span import SPAN
from tests.conftest import edition_checkout


def _write_split(root: Path, stem: str, names: list[str], *, hr: bool = True, size: int = 24) -> None:
    """Small random images: HR in <stem>_HR/<name>.png, its LR beside in <stem>_LR/<name>x4.png."""
    rng = np.random.default_rng(0)
    (root / f"{stem}_LR").mkdir(parents=True, exist_ok=True)
    if hr:
        (root / f"{stem}_HR").mkdir(parents=True, exist_ok=True)
    for name in names:
        high = rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)
        if hr:
            Image.fromarray(high).save(root / f"{stem}_HR" / f"{name}.png")
        Image.fromarray(high[::4, ::4]).save(root / f"{stem}_LR" / f"{name}x4.png")


# The valid split's names: 100 LSDIR images (000001-000100) and DIV2K val (0801-0900).
VALID_NAMES = [f"{n:06d}" for n in range(1, 101)] + [f"{n:04d}" for n in range(801, 901)]


def test_div2k_lsdir_valid_is_read_as_the_official_script_reads_it(tmp_path: Path) -> None:
    _write_split(tmp_path, "DIV2K_LSDIR_valid", VALID_NAMES)
    dataset = open_dataset(str(tmp_path), split="val")
    described = dataset.describe()
    assert (described["name"], described["layout"], described["split"]) == (
        "DIV2K_LSDIR",
        "div2k-lsdir",
        "val",
    )
    assert described["num_images"] == described["expected_images"] == 200
    # sorted(glob(HR/*.png)), as test_demo.py: the six-digit LSDIR names sort before 0801.
    assert [item.name for item in dataset.items[:2]] == ["000001", "000002"] and dataset.items[
        -1
    ].name == "0900"
    name, lr, hr = next(iter(dataset))
    assert name == "000001" and lr.shape == (6, 7, 3) and hr.shape == (24, 28, 3)


def test_a_partial_split_is_refused_or_reported_honestly(tmp_path: Path) -> None:
    _write_split(tmp_path, "DIV2K_LSDIR_valid", VALID_NAMES[:3])
    with pytest.raises(
        HarnessError, match=r"DIV2K_LSDIR val split has 3 of 200 images; pass --allow-partial"
    ):
        open_dataset(str(tmp_path), split="val")
    partial = open_dataset(str(tmp_path), split="val", allow_partial=True).describe()
    assert (partial["num_images"], partial["expected_images"]) == (3, 200)


def test_withheld_test_hr_and_the_2023_hybrid_split(tmp_path: Path) -> None:
    _write_split(tmp_path, "DIV2K_LSDIR_test", ["a", "b"], hr=False)
    test = open_dataset(str(tmp_path), split="test", allow_partial=True)
    assert [(item.name, item.hr_path) for item in test.items] == [("a", None), ("b", None)]
    _write_split(tmp_path, "LSDIR_DIV2K_test", ["c"])
    hybrid = open_dataset(str(tmp_path), split="hybrid_test").describe()
    # The 2023 repository does not say how many hybrid images there are: the folder is the split.
    assert (hybrid["name"], hybrid["num_images"], hybrid["expected_images"]) == ("LSDIR_DIV2K", 1, 1)
    with pytest.raises(HarnessError, match=r"no DIV2K_LSDIR_valid_HR/ or DIV2K_LSDIR_valid_LR/"):
        open_dataset(str(tmp_path), split="val")


def _evaluate_span_2026(tmp_path: Path, extra: list[str], names: list[str] = VALID_NAMES) -> dict:
    data = tmp_path / "data"
    _write_split(data, "DIV2K_LSDIR_valid", names)
    argv = ["evaluate", "span", "--protocol", "ntire2026", "--data", str(data), "--device", "cpu", "--quiet"]
    argv += ["--warmup-seconds", "0", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert esr(argv + extra) == 0
    return json.loads((tmp_path / "out" / "results.json").read_text())


def _check_2026_run(document: dict, images: int = 200) -> dict:
    assert document["protocol"] == "ntire2026" and document["baseline"] == "span"
    assert document["dataset"]["name"] == "DIV2K_LSDIR" and document["dataset"]["num_images"] == images
    [record] = document["results"]
    assert record["status"] == "ok" and record["num_images"] == images
    assert record["flops_counter"] == "fvcore" and record["flops"] == record["flops_fvcore"] == 9_833_807_872
    assert record["flops_ntire2022"] is not None and record["params"] == 150_688
    # 2026 states only PSNR thresholds: completeness and PSNR are the only verdicts.
    assert [item["name"] for item in record["constraints"]] == ["complete", "psnr"]
    return record


def test_evaluate_span_under_ntire2026_on_a_synthetic_div2k_lsdir(tmp_path: Path) -> None:
    """End to end on the CPU, with SPAN's architecture and weights made here (no download), on 20 of
    the split's 200 images: the run is reported, and judged incomplete, never ranked."""
    torch.manual_seed(0)
    weights = tmp_path / "span_random.pth"
    torch.save(SPAN().state_dict(), weights)
    extra = ["--weights", str(weights), "--allow-partial"]
    record = _check_2026_run(_evaluate_span_2026(tmp_path, extra, VALID_NAMES[::10]), images=20)
    complete, psnr = record["constraints"]
    assert not complete["passed"] and "20 of 200 images" in complete["note"]
    # A partial split is not the reference data: PSNR is judged as a proxy against SPAN in the same run.
    assert psnr["kind"] == "proxy" and psnr["passed"] and not record["valid"]


def test_evaluate_span_under_ntire2026_with_the_released_weights(tmp_path: Path) -> None:
    root = edition_checkout("ntire2026")
    record = _check_2026_run(_evaluate_span_2026(tmp_path, ["--model-zoo", str(root / "model_zoo")]))
    assert record["constraints"][0]["passed"]
    # The complete split is the reference data: the absolute 26.90 dB threshold applies (random pixels
    # are not photographs, so SPAN does not reach it here).
    assert record["constraints"][1]["kind"] == "absolute" and record["constraints"][1]["limit"] == 26.90
