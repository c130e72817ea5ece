"""Killed runs resume and leave no corrupt file; concurrent runs share one cache safely."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slow_submission import write_paired_dataset, write_slow_submission

ESR = [sys.executable, "-m", "harness.cli"]


@pytest.fixture()
def setup(tmp_path: Path, model_zoo_dir: Path) -> dict[str, Path]:
    """A small paired dataset (BasicSR layout) and a slow submission."""
    data = write_paired_dataset(tmp_path / "data", count=6, lr_size=(16, 20), noise=20)
    submission = write_slow_submission(tmp_path / "slow", sleep_s=0.08, mode="bicubic")
    return {"root": tmp_path, "data": data, "submission": submission, "zoo": model_zoo_dir}


def _command(setup: dict[str, Path], cache: Path, out: Path) -> list[str]:
    return ESR + [
        "evaluate",
        str(setup["submission"]),
        "--data",
        str(setup["data"]),
        "--device",
        "cpu",
        "--rounds",
        "2",
        "--warmup-seconds",
        "0",
        "--quiet",
        "--seed",
        "1",
        "--model-zoo",
        str(setup["zoo"]),
        "--cache-dir",
        str(cache),
        "--out",
        str(out),
    ]


def _fidelity(out: Path) -> dict[str, list[tuple]]:
    document = json.loads((out / "results.json").read_text())
    keys = ("name", "psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
    return {
        record["submission"]: [tuple(image[key] for key in keys) for image in record["per_image"]]
        for record in document["results"]
    }


def _json_files_are_whole(*folders: Path) -> int:
    """Parse every JSON file under the folders (temporary files excepted); return how many there were."""
    count = 0
    for folder in folders:
        for path in folder.rglob("*.json"):
            json.loads(path.read_text(encoding="utf-8"))  # raises on a truncated or corrupt file
            count += 1
    return count


def _writing(folders: list[Path]) -> bool:
    """True while an atomic write is under way (its temporary file exists)."""
    return any(any(folder.rglob(".*.tmp")) for folder in folders if folder.exists())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.mark.slow
def test_random_kills_resume_to_the_uninterrupted_result(setup: dict[str, Path]) -> None:
    root = setup["root"]
    reference = root / "reference"
    started = time.monotonic()
    subprocess.run(_command(setup, root / "reference-cache", reference), check=True, env=_env())
    # Kill moments are drawn within the uninterrupted run's duration, so they land inside a run on
    # a fast machine as on a slow one.
    uninterrupted_seconds = time.monotonic() - started
    cache, out = root / "cache", root / "out"
    rng = random.Random(20261201)
    kills = 0
    attempts = 0
    while kills < 10:
        attempts += 1
        assert attempts < 40, "the run finished before it could be killed 10 times"
        process = subprocess.Popen(_command(setup, cache, out), env=_env())
        # Every third kill lands while a file is being written; the others at a random moment.
        during_write = kills % 3 == 2
        wait = 30.0 if during_write else rng.uniform(0.1, 0.9) * uninterrupted_seconds
        deadline = time.monotonic() + wait
        while process.poll() is None and time.monotonic() < deadline:
            if during_write and _writing([cache, out]):
                break
            time.sleep(0.001 if during_write else 0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        _json_files_are_whole(cache, out)
        if process.returncode == 0:
            # It finished from what earlier attempts left: start a new cycle from nothing, so the
            # next attempts have a run to interrupt rather than a cache to read.
            shutil.rmtree(cache)
            shutil.rmtree(out)
    subprocess.run(_command(setup, cache, out), check=True, env=_env())
    assert _json_files_are_whole(cache, out) >= 3
    assert _fidelity(out) == _fidelity(reference)


@pytest.mark.slow
def test_two_runs_at_once_share_one_cache(setup: dict[str, Path]) -> None:
    root = setup["root"]
    cache = root / "shared-cache"
    runs = [
        subprocess.Popen(_command(setup, cache, root / f"out{index}"), env=_env(), stderr=subprocess.PIPE)
        for index in range(2)
    ]
    for process in runs:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr.decode()
    assert _fidelity(root / "out0") == _fidelity(root / "out1")
    _json_files_are_whole(cache)
    # Every entry is complete and whole; no partial slot or lock is left behind.
    assert not list(cache.glob("*.partial.json")) and not list(cache.glob("*.lock"))
    complete = [json.loads(path.read_text()) for path in cache.glob("*.json")]
    assert {record["submission"] for record in complete} == {"slow", "imdn_baseline"}
    assert all(record["status"] == "ok" and record["num_images"] == 6 for record in complete)
    # A third run reuses the accuracy results (timing them again if two sessions wrote them).
    again = subprocess.run(_command(setup, cache, root / "out2"), env=_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert _fidelity(root / "out2") == _fidelity(root / "out0")
