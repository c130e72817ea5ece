"""Each submission in a worker process of its own: isolation, crashes, hangs, and the timed loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.runner import RunConfig, TimingSettings, evaluate_run
from harness.runner.audit import REPEATED_CALLS
from harness.submissions import resolve_submission

# A tiny x4 model; `behaviour` picks a way to misbehave, `probe` names a file to write what it saw.
MODEL = """
import ctypes
import json
import os
import sys
import threading
import time
import traceback

import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, behaviour: str = "ok", probe: str = "", sleep_ms: float = 0.0) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))
        self.behaviour = behaviour
        self.probe = probe
        self.sleep_ms = sleep_ms
        if behaviour == "change_settings":
            torch.backends.cudnn.benchmark = True
            torch.set_num_threads(1)
        if behaviour == "watch":
            # Count the worker's accuracy outputs, to see whether any are made between timed passes.
            worker = sys.modules["harness.runner.worker"]
            original = worker.sr_pixels

            def counted(*args, **kwargs):
                counted.calls += 1
                return original(*args, **kwargs)

            counted.calls = 0
            worker.sr_pixels = counted

    def forward(self, x):
        if self.behaviour == "watch":
            stack = traceback.extract_stack()[:-1]
            seen = {
                "pid": os.getpid(),
                "threads": sorted(thread.name for thread in threading.enumerate()),
                "scored": sys.modules["harness.runner.worker"].sr_pixels.calls,
                "harness_frames": [f.name for f in stack if "/harness/" in f.filename.replace(os.sep, "/")],
            }
            with open(self.probe, "a") as handle:
                handle.write(json.dumps(seen) + "\\n")
        elif self.probe:
            with open(self.probe, "a") as handle:
                seen = {"threads": torch.get_num_threads(), "cudnn_benchmark": torch.backends.cudnn.benchmark}
                handle.write(json.dumps(seen) + "\\n")
        if self.behaviour == "abort":
            os.abort()
        if self.behaviour == "exit":
            print("giving up on this image", file=sys.stderr)
            sys.exit(3)
        if self.behaviour == "segfault":
            ctypes.string_at(0)
        if self.behaviour == "hang":
            time.sleep(3600)
        if self.behaviour == "in_place":
            x.mul_(0.5)
        if self.sleep_ms:
            time.sleep(self.sleep_ms / 1000.0)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * self.gain
"""


class Pairs:
    """A dataset with the runner-facing interface, built from arrays."""

    def __init__(self, pairs: list[tuple[str, np.ndarray, np.ndarray | None]]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(pair[0] for pair in self.pairs)

    def __iter__(self):
        return iter(self.pairs)

    def describe(self) -> dict:
        digest = "".join(f"{name}{lr.sum()}" for name, lr, _ in self.pairs)
        return {
            "name": "pairs",
            "path": None,
            "split": None,
            "num_images": len(self.pairs),
            "expected_images": len(self.pairs),
            "scale": 4,
            "layout": "arrays",
            "content_sha256": str(abs(hash(digest))),
        }


def _pairs(count: int = 3) -> Pairs:
    rng = np.random.default_rng(0)
    pairs = []
    for index in range(count):
        lr = rng.integers(0, 256, size=(12, 14, 3), dtype=np.uint8)
        hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1).copy()
        hr[::3, ::5] = 255 - hr[::3, ::5]
        pairs.append((f"img{index}", lr, hr))
    return Pairs(pairs)


def _write_submission(
    folder: Path, name: str, model_source: str = MODEL, root: bool = False, **kwargs
) -> object:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.py").write_text(model_source)
    kwargs_yaml = "".join(f"\n    {key}: {value!r}" for key, value in kwargs.items()) or " {}"
    (folder / "submission.yaml").write_text(
        f"name: {name}\nteam: test\ndescription: tiny test model\n"
        f"model:\n  file: tiny.py\n  class: Tiny\n  kwargs:{kwargs_yaml}\n"
        + ("  root: .\n" if root else "")
        + "input_range: 1.0\nscale: 4\n"
    )
    return resolve_submission(str(folder))


def _config(tmp_path: Path, **overrides) -> RunConfig:
    timing = overrides.pop("timing", TimingSettings(warmup_seconds=0.0, warmup_max_passes=1, rounds=2))
    return RunConfig(
        protocol_name="ntire2022",
        protocol_version=1,
        border=4,
        device=torch.device("cpu"),
        timing=timing,
        cache_dir=tmp_path / "cache",
        quiet=True,
        **overrides,
    )


def _by_name(run: dict) -> dict[str, dict]:
    return {record["submission"]: record for record in run["results"]}


def test_two_submissions_with_their_own_top_level_utils_module(tmp_path: Path) -> None:
    # Both repositories have a top-level `utils` module with different contents; in one process the
    # second import would silently get the first one's module.
    uses_utils = MODEL.replace("import torch\n", "import torch\nimport utils\n", 1).replace(
        "* self.gain", "* self.gain + utils.OFFSET"
    )
    subs = []
    for name, offset in (("first", 0.0), ("second", 0.25)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "utils.py").write_text(f"OFFSET = {offset}\n")
        subs.append(_write_submission(folder, name, uses_utils, root=True))
    dataset = _pairs()
    run = evaluate_run(subs, dataset, _config(tmp_path))
    first, second = (_by_name(run)[name] for name in ("first", "second"))
    assert first["status"] == "ok" and second["status"] == "ok", (first["error"], second["error"])
    # The first one's utils adds nothing: its output is the nearest-neighbour upscale, exactly.
    for entry, (_, lr, hr) in zip(first["per_image"], dataset, strict=True):
        sr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1).astype(np.float64)
        mse = np.mean((sr[4:-4, 4:-4] - hr[4:-4, 4:-4]) ** 2)
        assert entry["psnr_rgb"] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-9)
    # The second one's adds 0.25 of the range (64 grey levels) to every pixel.
    assert second["psnr_rgb"] < first["psnr_rgb"] - 1


def test_a_submission_that_changes_torch_settings_leaves_the_next_one_alone(tmp_path: Path) -> None:
    probe = tmp_path / "probe.jsonl"
    changer = _write_submission(tmp_path / "changer", "changer", behaviour="change_settings")
    observer = _write_submission(tmp_path / "observer", "observer", probe=str(probe))
    run = evaluate_run([changer, observer], _pairs(), _config(tmp_path, threads=2))
    records = _by_name(run)
    assert records["changer"]["status"] == "ok" and records["observer"]["status"] == "ok"
    # The changer's own worker recorded the change and was timed under the protocol's settings again.
    assert records["changer"]["torch_settings_changed"] == {"cudnn_benchmark": True, "threads": 1}
    assert records["observer"]["torch_settings_changed"] == {}
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    assert seen and all(entry == {"threads": 2, "cudnn_benchmark": False} for entry in seen)
    assert run["timing"]["torch_settings"]["cudnn_benchmark"] is False
    assert run["timing"]["torch_settings"]["threads"] == 2


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("abort", "worker was killed by SIGABRT during the accuracy pass"),
        ("segfault", "worker was killed by SIGSEGV during the accuracy pass"),
        ("exit", "worker exited with code 3 during the accuracy pass"),
    ],
)
def test_a_dying_worker_becomes_a_failed_record_and_the_others_are_ranked(
    tmp_path: Path, behaviour: str, reason: str
) -> None:
    bad = _write_submission(tmp_path / "bad", "bad", behaviour=behaviour)
    good = _write_submission(tmp_path / "good", "good")
    run = evaluate_run([bad, good], _pairs(), _config(tmp_path))
    records = _by_name(run)
    assert records["bad"]["status"] == "failed" and reason in records["bad"]["error"]
    assert records["good"]["status"] == "ok" and len(records["good"]["runtime_ms"]["rounds"]) == 2
    if behaviour == "exit":
        assert "giving up on this image" in records["bad"]["error"]  # the last line it wrote


def test_a_hang_past_the_time_limit_is_stopped(tmp_path: Path) -> None:
    # The limit is each worker's whole budget: 20 s leaves the good one room on a loaded machine.
    hang = _write_submission(tmp_path / "hang", "hang", behaviour="hang")
    good = _write_submission(tmp_path / "good", "good")
    timing = TimingSettings(warmup_seconds=0.0, warmup_max_passes=1, rounds=2, timeout_seconds=20.0)
    run = evaluate_run([hang, good], _pairs(), _config(tmp_path, timing=timing))
    records = _by_name(run)
    assert records["hang"]["status"] == "failed"
    assert "timed out (no result within the 20 s limit) during the accuracy pass" in records["hang"]["error"]
    assert records["good"]["status"] == "ok"


def test_an_in_place_write_into_the_input_changes_nothing_that_is_scored(tmp_path: Path) -> None:
    in_place = _write_submission(tmp_path / "in_place", "in_place", behaviour="in_place")
    dataset = _pairs()
    run = evaluate_run([in_place], dataset, _config(tmp_path))
    (record,) = run["results"]
    assert record["status"] == "ok"
    # Each call halves its own copy of the input once: the output is the nearest-neighbour upscale
    # of half the input, whatever ran before (the cold call, other images, timing rounds).
    for entry, (_, lr, hr) in zip(record["per_image"], dataset, strict=True):
        half = np.round(lr.astype(np.float32) / np.float32(255.0) * np.float32(0.5) * np.float32(255.0))
        sr = np.repeat(np.repeat(half, 4, axis=0), 4, axis=1)
        mse = np.mean((sr[4:-4, 4:-4].astype(np.float64) - hr[4:-4, 4:-4]) ** 2)
        assert entry["psnr_rgb"] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-9)


def test_the_timed_loop_does_nothing_but_forward_passes(tmp_path: Path) -> None:
    # The model records, at each forward pass, the harness frames that called it, the threads alive
    # in its worker and how many accuracy outputs the worker has made so far.
    probe = tmp_path / "probe.jsonl"
    watched = [
        _write_submission(tmp_path / f"s{i}", f"s{i}", behaviour="watch", probe=str(probe)) for i in range(2)
    ]
    timing = TimingSettings(warmup_seconds=0.0, warmup_max_passes=1, rounds=3)
    run = evaluate_run(watched, _pairs(4), _config(tmp_path, timing=timing))
    assert [r["status"] for r in run["results"]] == ["ok", "ok"]
    assert len(run["timing"]["round_log"]) == 3
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    timed = [call for call in seen if "time_image" in call["harness_frames"]]
    scoring = [call for call in seen if "accuracy" in call["harness_frames"]]
    assert len(scoring) == 2 * 4  # each image of each submission once
    # The rounds' calls, then each submission's audit (harness.runner.audit): one re-run per image,
    # and the repeated-input round (its first sight of the input, then identical and fresh pairs).
    audit_calls = 4 + 1 + 2 * REPEATED_CALLS
    assert len(timed) == 2 * (3 * 4 * timing.repeats + audit_calls)
    for call in timed:
        # Between the timer and the model there is only the forward pass of the official script.
        frames = [name for name in call["harness_frames"] if name != "<listcomp>"]
        assert frames[frames.index("time_image") + 1 :] == ["time_call", "time", "call", "forward"], frames
        # No scoring or PNG-writing thread runs beside it.
        assert call["threads"] == ["MainThread", "esr-orphan-watch"], call["threads"]
    # No accuracy output is made between timed passes: each worker's count is the same at every one.
    for pid in {call["pid"] for call in timed}:
        assert len({call["scored"] for call in timed if call["pid"] == pid}) == 1


def test_rounds_are_interleaved_in_a_recorded_balanced_order(tmp_path: Path) -> None:
    subs = [_write_submission(tmp_path / name, name) for name in ("a", "b", "c")]
    timing = TimingSettings(warmup_seconds=0.0, warmup_max_passes=1, rounds=6)
    run = evaluate_run(subs, _pairs(2), _config(tmp_path, timing=timing, seed=1234))
    orders = [entry["order"] for entry in run["timing"]["round_log"]]
    assert run["timing"]["seed"] == 1234 and len(orders) == 6
    assert all(sorted(order) == ["a", "b", "c"] for order in orders)
    assert {order[0] for order in orders} == {"a", "b", "c"}  # no one is always first
    for record in run["results"]:
        runtime = record["runtime_ms"]
        assert len(runtime["rounds"]) == 6 and runtime["cv"] >= 0
        assert all(len(entry["runtime_ms_rounds"]) == 6 for entry in record["per_image"])
        # The protocol figure is the mean of every per-image latency of every round.
        every = [v for entry in record["per_image"] for v in entry["runtime_ms_rounds"]]
        assert runtime["mean"] == pytest.approx(sum(every) / len(every))
    again = evaluate_run(subs, _pairs(2), _config(tmp_path, timing=timing, seed=1234, force=True))
    assert [entry["order"] for entry in again["timing"]["round_log"]] == orders


def test_an_edited_model_file_is_never_served_from_the_cache(tmp_path: Path) -> None:
    folder = tmp_path / "edited"
    submission = _write_submission(folder, "edited")
    first = evaluate_run([submission], _pairs(), _config(tmp_path))["results"][0]
    assert evaluate_run([submission], _pairs(), _config(tmp_path))["results"][0]["cached"] is True
    (folder / "tiny.py").write_text(MODEL.replace("* self.gain", "* self.gain * 0.5"))
    edited = evaluate_run([submission], _pairs(), _config(tmp_path))["results"][0]
    assert edited["cached"] is False and edited["psnr_rgb"] < first["psnr_rgb"]


def test_the_run_document_records_the_settings_it_ran_under(tmp_path: Path) -> None:
    run = evaluate_run([_write_submission(tmp_path / "a", "a")], _pairs(), _config(tmp_path))
    settings = run["timing"]["torch_settings"]
    assert set(settings) >= {
        "cudnn_benchmark",
        "cudnn_deterministic",
        "cuda_matmul_allow_tf32",
        "cudnn_allow_tf32",
        "float32_matmul_precision",
        "threads",
        "interop_threads",
    }
    assert {"torch_version", "cuda_version", "cudnn_version"} <= set(run["device"])
    assert run["harness"]["version"] and "git_commit" in run["harness"]


def test_two_lanes_share_the_accuracy_work_and_each_times_its_own_baseline(tmp_path: Path) -> None:
    from harness.runner.lanes import LocalExecutor

    subs = [_write_submission(tmp_path / name, name) for name in ("a", "b", "c")]
    baseline = _write_submission(tmp_path / "base", "base", sleep_ms=1.0)
    one_lane = evaluate_run(subs, _pairs(4), _config(tmp_path / "one"), baseline=baseline)
    two = LocalExecutor([torch.device("cpu"), torch.device("cpu")])
    run = evaluate_run(subs, _pairs(4), _config(tmp_path / "two"), baseline=baseline, executor=two)
    records = _by_name(run)
    assert sorted(records) == ["a", "b", "base", "c"]  # nothing missing, nothing twice
    assert [lane["label"] for lane in run["lanes"]] == ["cpu", "cpu"]
    # a and c on lane 0, b on lane 1: each paired with the baseline timed on its own lane.
    assert {name: records[name]["timed_on"]["lane"] for name in "abc"} == {"a": 0, "b": 1, "c": 0}
    for name in "abc":
        assert records[name]["pairing"]["lane"] == records[name]["timed_on"]["lane"]
    assert {entry["lane"] for entry in run["timing"]["round_log"]} == {"cpu"} and len(
        run["timing"]["round_log"]
    ) == 4
    keys = ("name", "psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
    for name in ("a", "b", "c", "base"):
        scores = [[image[key] for key in keys] for image in records[name]["per_image"]]
        assert scores == [[image[key] for key in keys] for image in _by_name(one_lane)[name]["per_image"]]


def test_a_result_without_its_own_lanes_baseline_is_never_compared_across_devices() -> None:
    from harness.constraints import check_constraints
    from harness.protocols import load_protocol

    baseline = {"submission": "base", "status": "ok", "runtime_ms": {"mean": 10.0}, "timed_on": {"lane": 0}}
    result = {
        "submission": "b",
        "status": "ok",
        "runtime_ms": {"mean": 9.0},
        "timed_on": {"lane": 1},
        "pairing": None,
    }
    dataset = {"name": "pairs", "num_images": 3, "expected_images": 3}
    (runtime,) = [
        c
        for c in check_constraints(
            result, baseline=baseline, protocol=load_protocol("ntire2022"), dataset=dataset
        )
        if c.name == "runtime"
    ]
    assert not runtime.passed and "never compared" in runtime.note
