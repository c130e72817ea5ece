"""The runner: per-image protocol, failure isolation, caching and resume, tiling, the run document."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.runner import RunConfig, TimingSettings, evaluate_run
from harness.runner.forward import forward, tile_origins
from harness.submissions import resolve_submission

# A tiny model file written into each test's folder: nearest-neighbour x4 upscaling, with switches
# that make it misbehave in the ways a real submission can.
MODEL_SOURCE = """
from pathlib import Path

import torch
from torch import nn


class Nearest(nn.Module):
    def __init__(self, mode: str = "ok", flag: str = "", offset: float = 0.0) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))
        self.mode = mode
        self.flag = flag
        self.offset = offset
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.flag and Path(self.flag).exists() and x.shape[-1] == 10:
            raise RuntimeError("interrupted by the test")
        out = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * self.gain + self.offset
        if self.mode == "nan":
            out = out * float("nan")
        if self.mode == "small":
            out = out[..., :-4, :]
        if self.mode == "raise" and x.shape[-1] == 10:
            raise ValueError("cannot handle width 10")
        return out
"""


class FakeDataset:
    """A dataset with the runner-facing interface, built from arrays (no files, no decoding)."""

    def __init__(self, pairs: list[tuple[str, np.ndarray, np.ndarray | None]], name: str = "fake") -> None:
        self.pairs = pairs
        self.name = name

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(pair[0] for pair in self.pairs)

    def __iter__(self):
        return iter(self.pairs)

    def describe(self) -> dict:
        digest = str(abs(hash(tuple(p[0] for p in self.pairs))))
        return {
            "name": self.name,
            "path": None,
            "split": None,
            "num_images": len(self.pairs),
            "scale": 4,
            "layout": "fake",
            "content_sha256": digest,
        }


def _dataset(with_hr: bool = True) -> FakeDataset:
    rng = np.random.default_rng(0)
    pairs = []
    for index, (height, width) in enumerate([(8, 12), (9, 10), (12, 8)]):
        lr = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
        hr = hr.copy()
        hr[::3, ::5] = 255 - hr[::3, ::5]  # some error so PSNR is finite
        pairs.append((f"img{index}", lr, hr if with_hr else None))
    return FakeDataset(pairs)


def _submission(tmp_path: Path, name: str, **kwargs) -> object:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "nearest.py").write_text(MODEL_SOURCE)
    kwargs_yaml = "".join(f"\n    {key}: {value!r}" for key, value in kwargs.items()) or " {}"
    (folder / "submission.yaml").write_text(
        f"name: {name}\nteam: test\ndescription: nearest-neighbour test model\n"
        f"model:\n  file: nearest.py\n  class: Nearest\n  kwargs:{kwargs_yaml}\n"
        "input_range: 1.0\nscale: 4\n"
    )
    return resolve_submission(str(folder))


def _config(tmp_path: Path, **overrides) -> RunConfig:
    settings = {
        "protocol_name": "ntire2022",
        "protocol_version": 1,
        "border": 4,
        "device": torch.device("cpu"),
        "timing": TimingSettings(warmup_seconds=0.0, warmup_min_passes=1, warmup_max_passes=1, rounds=2),
        "cache_dir": tmp_path / "cache",
        "quiet": True,
    }
    settings.update(overrides)
    return RunConfig(**settings)


def _plain_psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    a = a[border:-border, border:-border].astype(np.float64)
    b = b[border:-border, border:-border].astype(np.float64)
    return 10 * math.log10(255.0**2 / np.mean((a - b) ** 2))


def test_record_follows_the_official_per_image_protocol(tmp_path: Path) -> None:
    dataset = _dataset()
    run = evaluate_run([_submission(tmp_path, "near")], dataset, _config(tmp_path))
    (record,) = run["results"]
    assert record["status"] == "ok" and record["error"] is None
    assert [entry["name"] for entry in record["per_image"]] == ["img0", "img1", "img2"]
    for entry, (_, lr, hr) in zip(record["per_image"], dataset, strict=True):
        sr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)  # the model's output, exactly
        assert entry["psnr_rgb"] == pytest.approx(_plain_psnr(sr, hr, 4), abs=1e-9)
        assert entry["runtime_ms"] > 0
    assert record["psnr_rgb"] == pytest.approx(np.mean([e["psnr_rgb"] for e in record["per_image"]]))
    assert set(record["runtime_ms"]) >= {
        "mean",
        "median",
        "p90",
        "std",
        "mean_without_warmup",
        "first_call_ms",
    }
    assert record["max_memory_mb"] is None  # CPU: no device memory figure
    assert record["params"] == 1 and record["num_conv"] == 0
    assert run["dataset"]["num_images"] == 3 and run["device"]["device_type"] == "cpu"
    assert run["harness"]["version"] and "fingerprint_id" in run["device"]


def test_inference_only_split_has_runtime_but_no_fidelity(tmp_path: Path) -> None:
    run = evaluate_run([_submission(tmp_path, "near")], _dataset(with_hr=False), _config(tmp_path))
    (record,) = run["results"]
    assert record["status"] == "ok"
    assert record["psnr_rgb"] is None and record["ssim_y"] is None
    assert len(record["per_image"]) == 3 and record["runtime_ms"]["mean"] > 0


def test_failing_submissions_are_recorded_and_the_others_finish(tmp_path: Path) -> None:
    submissions = [
        _submission(tmp_path, "nan", mode="nan"),
        _submission(tmp_path, "small", mode="small"),
        _submission(tmp_path, "raises", mode="raise"),
        _submission(tmp_path, "good"),
    ]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "submission.yaml").write_text(
        "name: broken\nteam: t\ndescription: d\nmodel:\n  file: nowhere.py\n  class: X\ninput_range: 1.0\nscale: 4\n"
    )
    submissions.append(resolve_submission(str(broken)))
    run = evaluate_run(submissions, _dataset(), _config(tmp_path))
    by_name = {record["submission"]: record for record in run["results"]}
    assert "NaN" in by_name["nan"]["error"]
    assert "output shape" in by_name["small"]["error"]
    assert "cannot handle width 10" in by_name["raises"]["error"]
    assert "nowhere.py" in by_name["broken"]["error"]
    assert all(by_name[name]["status"] == "failed" for name in ("nan", "small", "raises", "broken"))
    assert by_name["good"]["status"] == "ok" and len(by_name["good"]["per_image"]) == 3


def test_results_are_cached_and_force_recomputes(tmp_path: Path) -> None:
    submission = _submission(tmp_path, "near")
    first = evaluate_run([submission], _dataset(), _config(tmp_path))["results"][0]
    second = evaluate_run([submission], _dataset(), _config(tmp_path))["results"][0]
    assert not first["cached"] and second["cached"]
    assert second["per_image"] == first["per_image"]
    forced = evaluate_run([submission], _dataset(), _config(tmp_path, force=True))["results"][0]
    assert not forced["cached"]
    other_data = evaluate_run([submission], FakeDataset(_dataset().pairs[:2]), _config(tmp_path))["results"][
        0
    ]
    assert not other_data["cached"] and other_data["num_images"] == 2


def test_runtimes_of_one_run_are_always_measured_in_one_session(tmp_path: Path) -> None:
    near, base = _submission(tmp_path, "near"), _submission(tmp_path, "base", offset=0.01)
    first = evaluate_run([near], _dataset(), _config(tmp_path))
    assert first["retimed"] == [] and first["results"][0]["timing_session"] == first["timing_session"]
    # "near" is cached from the first command, "base" is new: "near" is timed again beside it.
    second = evaluate_run([near], _dataset(), _config(tmp_path), baseline=base)
    assert second["retimed"] == ["near"]
    assert [r["cached"] for r in second["results"]] == [False, False]
    assert {r["timing_session"] for r in second["results"]} == {second["timing_session"]}
    # Both cached from the same command: reused as they are.
    third = evaluate_run([near], _dataset(), _config(tmp_path), baseline=base)
    assert third["retimed"] == [] and [r["cached"] for r in third["results"]] == [True, True]
    assert {r["timing_session"] for r in third["results"]} == {second["timing_session"]}


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    flag = tmp_path / "stop"
    flag.touch()  # the model raises on the second image (the one 10 pixels wide) while it exists
    submission = _submission(tmp_path, "near", flag=str(flag))
    dataset = _dataset()
    failed = evaluate_run([submission], dataset, _config(tmp_path))["results"][0]
    assert failed["status"] == "failed" and "interrupted" in failed["error"]
    flag.unlink()
    resumed = evaluate_run([submission], dataset, _config(tmp_path))["results"][0]
    assert resumed["status"] == "ok" and resumed["resumed"] is True
    assert [e["name"] for e in resumed["per_image"]] == ["img0", "img1", "img2"]
    assert resumed["runtime_ms"]["mean_without_warmup"] is None  # not a single cold run any more


def test_baseline_is_added_once_and_marked(tmp_path: Path) -> None:
    near = _submission(tmp_path, "near")
    base = _submission(tmp_path, "base", offset=0.01)
    run = evaluate_run([near], _dataset(), _config(tmp_path), baseline=base)
    assert [(r["submission"], r["role"]) for r in run["results"]] == [
        ("near", "submission"),
        ("base", "baseline"),
    ]
    again = evaluate_run([near, base], _dataset(), _config(tmp_path), baseline=base)
    assert [r["submission"] for r in again["results"]] == ["near", "base"]
    assert run["baseline"] == "base"


def _auto(**overrides) -> TimingSettings:
    settings = {
        "warmup_seconds": 0.0,
        "warmup_max_passes": 1,
        "rounds": None,
        "min_rounds": 2,
        "max_rounds": 3,
    }
    return TimingSettings(**{**settings, **overrides})


def test_rounds_auto_stops_a_decided_submission_and_its_baseline_at_the_minimum(tmp_path: Path) -> None:
    near, base = _submission(tmp_path, "near"), _submission(tmp_path, "base", offset=0.01)
    config = _config(tmp_path, timing=_auto(ratio_limit=1000.0))  # far over any ratio of these two
    run = evaluate_run([near], _dataset(), config, baseline=base)
    mine, baseline = run["results"]
    assert (mine["rounds_used"], mine["stop_reason"]) == (2, "decided")
    assert baseline["rounds_used"] == 2 and len(mine["pairing"]["round_ratios"]) == 2
    first, second = mine["rounds_until_decided"]
    assert first["interval"] is None and first["stop"] is None
    low, high = second["interval"]
    assert low <= second["ratio"] <= high <= 1000.0 and second["stop"] == "decided"


def test_rounds_auto_stops_at_the_cap_when_nothing_decides(tmp_path: Path) -> None:
    near, base = _submission(tmp_path, "near"), _submission(tmp_path, "base", offset=0.01)
    config = _config(tmp_path, timing=_auto(ratio_limit=None, resolution=1e-12))
    run = evaluate_run([near], _dataset(), config, baseline=base)
    mine, baseline = run["results"]
    assert (mine["rounds_used"], mine["stop_reason"]) == (3, "cap")
    assert baseline["rounds_used"] == 3
    assert [look["stop"] for look in mine["rounds_until_decided"]] == [None, None, "cap"]


def test_save_images_writes_the_uint8_output(tmp_path: Path) -> None:
    from PIL import Image

    dataset = _dataset()
    evaluate_run(
        [_submission(tmp_path, "near")], dataset, _config(tmp_path, save_images_dir=tmp_path / "img")
    )
    name, lr, _ = dataset.pairs[1]
    saved = np.asarray(Image.open(tmp_path / "img" / "near" / f"{name}.png"))
    np.testing.assert_array_equal(saved, np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1))


def test_tile_origins_follow_the_official_rule() -> None:
    assert tile_origins(10, 4, 1) == [0, 3, 6]  # range(0, 6, 3) + [6]
    assert tile_origins(8, 4, 2) == [0, 2, 4]
    assert tile_origins(4, 4, 2) == [0]
    with pytest.raises(ValueError):
        tile_origins(10, 4, 4)


def test_tiled_forward_matches_whole_image_for_a_local_model() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 48, 1)
    model = torch.nn.Sequential(conv, torch.nn.PixelShuffle(4))
    image = torch.rand(1, 3, 37, 29)
    whole = forward(model, image, scale=4)
    tiled = forward(model, image, scale=4, tile=16, tile_overlap=4)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-6)


def test_the_clock_is_recorded_and_a_cpu_time_result_is_never_a_wall_time_ones_cache_hit(
    tmp_path: Path,
) -> None:
    near = _submission(tmp_path, "near")
    wall_timing = TimingSettings(warmup_seconds=0.0, warmup_min_passes=1, warmup_max_passes=1, rounds=2)
    cpu_timing = TimingSettings(
        warmup_seconds=0.0, warmup_min_passes=1, warmup_max_passes=1, rounds=2, clock="cpu"
    )
    wall = evaluate_run([near], _dataset(), _config(tmp_path, timing=wall_timing))
    cpu = evaluate_run([near], _dataset(), _config(tmp_path, timing=cpu_timing))
    again = evaluate_run([near], _dataset(), _config(tmp_path, timing=cpu_timing))
    assert (wall["timing"]["clock"], cpu["timing"]["clock"]) == ("wall", "cpu")
    assert wall["results"][0]["runtime_clock"] == "perf_counter"
    assert cpu["results"][0]["runtime_clock"] == "process_time" and not cpu["results"][0]["cached"]
    assert again["results"][0]["cached"] and again["results"][0]["runtime_clock"] == "process_time"
