"""The ground truth never enters the submission's process: workers get LR only, the scorer holds HR.

The scorer's figures are those of ``score_output`` (the path the worker scored with before) on the
same pixels, and of PSNR worked out here by hand; it refuses anything but the SR image asked for.
The attack ``tests/attacks/find_hr`` searches its process (objects, frames, mapped files) and the
files it can reach for its input's HR image and returns it when found: its PSNR is that of its
honest bicubic fallback, computed here, never ``inf`` -- except in the control run, unsandboxed
with the file search on, where the decoded-image cache is on the same disk (so the attack works).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from harness.commands import run as esr
from harness.metrics import score_output, sr_pixels
from harness.runner import messages as msg
from harness.runner.scorer import Scorer, ScoringFailed, scoring_device
from harness.runner.shared_data import copy_to_shared_memory, share_dataset
from tests.test_faults import _options, _tiny_data
from tests.test_sandbox import needs_bwrap

ATTACK = Path(__file__).parent / "attacks" / "find_hr"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _pair(seed: int, height: int = 20, width: int = 24) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """An LR image, its HR image, and a model output near the HR (float32, range 1.0)."""
    rng = np.random.default_rng(seed)
    lr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    hr = rng.integers(0, 256, (4 * height, 4 * width, 3), dtype=np.uint8)
    noise = rng.normal(0, 0.03, hr.shape).astype(np.float32)
    out = torch.from_numpy(hr.astype(np.float32) / 255.0 + noise).permute(2, 0, 1).unsqueeze(0)
    return lr, hr, out


def _psnr_by_hand(a: np.ndarray, b: np.ndarray, border: int) -> float:
    x = a[border:-border, border:-border].astype(np.int64)
    y = b[border:-border, border:-border].astype(np.int64)
    sse = int(((x - y) ** 2).sum())
    return math.inf if sse == 0 else 10 * math.log10(255.0**2 * x.size / sse)


@pytest.fixture
def split(tmp_path: Path):
    pairs = [_pair(seed) for seed in range(3)]
    shared = share_dataset([(f"im{i}", lr, hr) for i, (lr, hr, _) in enumerate(pairs)], "1" * 64, tmp_path)
    return shared, pairs


def test_scores_equal_score_output_on_the_same_pixels(split, tmp_path: Path) -> None:
    shared, pairs = split
    scorer = Scorer(
        shared, range(3), scale=4, border=4, device=torch.device("cpu"), save_dir=tmp_path / "png"
    )
    for index, (_, hr, out) in enumerate(pairs):
        record = scorer.score(msg.ImageOutput(index, sr_pixels(out, 1.0)))
        pixels, expected = score_output(out, hr, input_range=1.0, border=4)
        assert record == {"name": f"im{index}", **expected}  # bit-identical, not approximately
        assert record["psnr_rgb"] == pytest.approx(_psnr_by_hand(pixels, hr, 4), abs=1e-9)
        saved = np.asarray(Image.open(tmp_path / "png" / f"im{index}.png"))
        assert np.array_equal(saved, pixels)
    assert scorer.missing == []


def test_sr_pixels_is_the_official_quantisation(split) -> None:
    _, pairs = split
    out = pairs[0][2]
    by_hand = np.uint8(
        (np.transpose(out[0].clamp(0, 1).numpy(), (1, 2, 0)) * np.float32(255.0) / 1.0).round()
    )
    assert np.array_equal(sr_pixels(out, 1.0), by_hand)


@pytest.mark.parametrize(
    ("output", "said"),
    [
        (msg.ImageOutput(5, np.zeros((80, 96, 3), np.uint8)), "image 5, which was not asked for"),
        (msg.ImageOutput(0, np.zeros((80, 96, 3), np.float32)), "expected uint8 pixels of shape (80, 96, 3)"),
        (msg.ImageOutput(0, np.zeros((80, 92, 3), np.uint8)), "expected uint8 pixels of shape (80, 96, 3)"),
        (msg.ImageOutput(0, [[0]]), "the output is list"),
        (msg.AccuracyDone(None, None), "sent a AccuracyDone instead of an image's output"),
    ],
)
def test_anything_but_the_image_asked_for_is_refused(split, output: object, said: str) -> None:
    shared, _ = split
    scorer = Scorer(shared, [0, 1], scale=4, border=4, device=torch.device("cpu"))
    with pytest.raises(ScoringFailed, match=None) as raised:
        scorer.score(output)
    assert said in str(raised.value)
    assert scorer.missing == ["im0", "im1"]


def test_an_image_is_scored_once(split) -> None:
    shared, pairs = split
    scorer = Scorer(shared, [0], scale=4, border=4, device=torch.device("cpu"))
    output = msg.ImageOutput(0, sr_pixels(pairs[0][2], 1.0))
    scorer.score(output)
    with pytest.raises(ScoringFailed, match="not asked for"):
        scorer.score(output)


def test_the_worker_view_names_no_hr_file_and_the_shared_copy_holds_none(split) -> None:
    shared, _ = split
    view = shared.inputs_only()
    assert [image.lr for image in view.images] == [image.lr for image in shared.images]
    assert all(image.hr is None and image.hr_y is None for image in view.images)
    assert "_hr" not in repr(view)
    copy = copy_to_shared_memory(shared)
    try:
        assert sorted(path.name for path in copy.folder.iterdir()) == [f"{i:05d}_lr.npy" for i in range(3)]
        assert all(image.hr is None and image.hr_y is None for image in copy.images)
    finally:
        shutil.rmtree(copy.folder)


def test_a_killed_runs_image_copy_is_removed_by_the_next_copy(split, tmp_path: Path) -> None:
    import subprocess
    import sys

    shared, _ = split
    # A process that has exited: its pid names the copy a killed run left behind.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = tmp_path / f"esr-images-{gone.stdout.strip()}-abcd"
    orphan.mkdir()
    (orphan / "00000_lr.npy").write_bytes(b"left behind")
    mine = copy_to_shared_memory(shared, root=tmp_path)  # this process's: alive
    other_live = tmp_path / "esr-images-1-efgh"  # pid 1 is always alive
    other_live.mkdir()
    copy_to_shared_memory(shared, root=tmp_path)
    assert not orphan.exists()
    assert mine.folder.is_dir() and other_live.is_dir()
    assert mine.folder.name.startswith(f"esr-images-{os.getpid()}-")


def test_local_gpu_lanes_score_on_their_gpu_others_on_this_cpu() -> None:
    assert scoring_device("cuda:1", "local") == torch.device("cuda:1")
    assert scoring_device("cpu", "local") == torch.device("cpu")
    assert scoring_device("cuda", "10.0.0.7") == torch.device("cpu")  # a Ray lane on another machine


@pytest.mark.cuda
@needs_cuda
def test_on_a_gpu_the_scores_equal_score_output_there(split) -> None:
    shared, pairs = split
    device = torch.device("cuda")
    scorer = Scorer(shared, range(3), scale=4, border=4, device=device)
    for index, (_, hr, out) in enumerate(pairs):
        on_gpu = out.to(device)
        record = scorer.score(msg.ImageOutput(index, sr_pixels(on_gpu, 1.0)))
        assert record == {"name": f"im{index}", **score_output(on_gpu, hr, input_range=1.0, border=4)[1]}
        assert record["psnr_rgb"] == pytest.approx(_psnr_by_hand(sr_pixels(out, 1.0), hr, 4), abs=1e-9)


# ---------------------------------------------------------------- the attack


def _attack(root: Path, name: str, search_files: bool) -> Path:
    folder = root / name
    shutil.copytree(ATTACK, folder)
    manifest = yaml.safe_load((folder / "submission.yaml").read_text())
    manifest["name"] = name
    manifest["model"]["kwargs"] = {"search_files": search_files}
    (folder / "submission.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def _bicubic_psnr(data: Path) -> dict[str, float]:
    """Each image's PSNR for an honest bicubic x4 upscale, quantised and scored by hand."""
    found = {}
    for path in sorted((data / "LR_bicubic" / "X4").glob("*.png")):
        name = path.stem.removesuffix("x4")
        lr = np.asarray(Image.open(path))
        x = torch.from_numpy(lr.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / 255.0
        out = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(
            0, 1
        )
        pixels = np.uint8((out[0].permute(1, 2, 0).numpy() * np.float32(255.0)).round())
        found[name] = _psnr_by_hand(pixels, np.asarray(Image.open(data / "HR" / f"{name}.png")), 4)
    return found


def _evaluate(root: Path, mode: str, folders: list[Path]) -> dict[str, dict]:
    zoo = os.environ.get("ESR_MODEL_ZOO")
    if not zoo or not Path(zoo).is_dir():
        pytest.skip("ESR_MODEL_ZOO is not set to a folder (export ESR_MODEL_ZOO=../shared/model_zoo)")
    argv = ["evaluate", *map(str, folders), "--data", str(root / "data"), "--sandbox", mode]
    esr([*argv, *_options(root, Path(zoo), "--timeout", "600", "--repeats", "1")])
    document = json.loads((root / "out" / "results.json").read_text())
    return {record["submission"]: record for record in document["results"]}


def _per_image_psnr(record: dict) -> dict[str, float]:
    assert record["status"] == "ok", record["error"]
    return {image["name"]: image["psnr_rgb"] for image in record["per_image"]}


def test_unsandboxed_the_worker_holds_no_ground_truth(tmp_path: Path) -> None:
    """Its process has no HR: searching it finds nothing. With files reachable (no sandbox, the
    cache on the same disk) the same attack does find it: the control that the search works."""
    data = _tiny_data(tmp_path / "data")
    folders = [
        _attack(tmp_path, "attack_find_hr_in_process", False),
        _attack(tmp_path, "attack_find_hr", True),
    ]
    records = _evaluate(tmp_path, "off", folders)
    assert _per_image_psnr(records["attack_find_hr_in_process"]) == pytest.approx(
        _bicubic_psnr(data), abs=1e-9
    )
    assert set(_per_image_psnr(records["attack_find_hr"]).values()) == {math.inf}


@needs_bwrap
def test_sandboxed_the_ground_truth_is_nowhere_the_worker_can_reach(tmp_path: Path) -> None:
    data = _tiny_data(tmp_path / "data")
    records = _evaluate(tmp_path, "required", [_attack(tmp_path, "attack_find_hr", True)])
    assert _per_image_psnr(records["attack_find_hr"]) == pytest.approx(_bicubic_psnr(data), abs=1e-9)
    assert records["imdn_baseline"]["status"] == "ok"
