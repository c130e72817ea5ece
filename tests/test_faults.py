"""Fault injection: bad inputs are one line and exit 2 with nothing written; a faulty submission is a
failed record with its reason, and the others are still evaluated and ranked.

Every case runs the real command line (`esr evaluate`) in this process; submissions run in their own
worker processes, so a segfault or ``sys.exit`` in one of them is contained there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.commands import run as esr
from harness.submissions import sha256_file

# ---------------------------------------------------------------- shared pieces

MODEL = """
import ctypes
import os
import sys
import time

import torch
from torch import nn

BEHAVIOUR = {behaviour!r}
if BEHAVIOUR == "import_error":
    import a_package_that_does_not_exist  # noqa: F401


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        if BEHAVIOUR == "constructor_error":
            raise ValueError("channels must be even")
        self.gain = nn.Parameter(torch.ones(1))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        up = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * self.gain
        if BEHAVIOUR == "nan":
            return up * float("nan")
        if BEHAVIOUR == "wrong_size":
            return up[..., :-4]
        if BEHAVIOUR == "other_device":
            return up.to("meta")
        if BEHAVIOUR == "other_dtype":
            return (up * 255).to(torch.int32)
        if BEHAVIOUR == "out_of_memory":
            torch.empty(1 << 52, dtype=torch.uint8)
        if BEHAVIOUR == "mid_dataset" and x.shape[-1] == 18:
            raise RuntimeError("cannot handle width 18")
        if BEHAVIOUR == "segfault":
            ctypes.string_at(0)
        if BEHAVIOUR == "exit":
            print("out of patience", file=sys.stderr)
            sys.exit(3)
        if BEHAVIOUR == "abort":
            os.abort()
        if BEHAVIOUR == "hang":
            time.sleep(3600)
        if BEHAVIOUR == "in_place":
            x.zero_()
        return up
"""


class Payload:
    """An object that only arbitrary unpickling can rebuild."""


def _tiny_data(root: Path) -> Path:
    """A BasicSR-layout folder: three LR/HR pairs, 16x16, 16x18 and 20x16 pixels."""
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X4").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate([(16, 16), (16, 18), (20, 16)]):
        lr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
        hr = np.clip(hr.astype(int) + rng.integers(-10, 11, hr.shape), 0, 255).astype(np.uint8)
        Image.fromarray(hr).save(root / "HR" / f"im{index}.png")
        Image.fromarray(lr).save(root / "LR_bicubic" / "X4" / f"im{index}x4.png")
    return root


def _submission(root: Path, name: str, behaviour: str = "ok", weights: dict | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "tiny.py").write_text(MODEL.format(behaviour=behaviour))
    manifest = f"name: {name}\nteam: test\ndescription: tiny\nmodel:\n  file: tiny.py\n  class: Tiny\n"
    if weights is not None:
        torch.save(weights, folder / "tiny.pth")
        manifest += f"weights:\n  file: tiny.pth\n  sha256: {sha256_file(folder / 'tiny.pth')}\n"
    (folder / "submission.yaml").write_text(manifest + "input_range: 1.0\nscale: 4\n")
    return folder


def _options(root: Path, zoo: Path, *extra: str) -> list[str]:
    return [
        "--device",
        "cpu",
        "--quiet",
        "--rounds",
        "1",
        "--warmup-seconds",
        "0",
        "--model-zoo",
        str(zoo),
        "--cache-dir",
        str(root / "cache"),
        "--out",
        str(root / "out"),
        *extra,
    ]


# ---------------------------------------------------------------- bad inputs: exit 2, nothing written


def _png16(path: Path, size: tuple[int, int]) -> None:
    Image.fromarray(np.full(size[::-1], 40000, np.uint16)).save(path)


def _paired(root: Path, hr_size: tuple[int, int], lr_size: tuple[int, int]) -> Path:
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X4").mkdir(parents=True)
    Image.new("RGB", hr_size, (90, 120, 30)).save(root / "HR" / "a.png")
    Image.new("RGB", lr_size, (90, 120, 30)).save(root / "LR_bicubic" / "X4" / "ax4.png")
    return root


def _hr_only(root: Path, files: dict[str, Callable[[Path], None]]) -> Path:
    root.mkdir(parents=True)
    Image.new("RGB", (64, 64), (10, 200, 30)).save(root / "good.png")
    for name, make in files.items():
        make(root / name)
    return root


def _truncated(path: Path) -> None:
    Image.new("RGB", (64, 64), (1, 2, 3)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _div2k_partial(root: Path) -> Path:
    (root / "DIV2K_valid_HR").mkdir(parents=True)
    (root / "DIV2K_valid_LR_bicubic" / "X4").mkdir(parents=True)
    for number in (801, 802):
        Image.new("RGB", (64, 64)).save(root / "DIV2K_valid_HR" / f"{number:04d}.png")
        Image.new("RGB", (16, 16)).save(root / "DIV2K_valid_LR_bicubic" / "X4" / f"{number:04d}x4.png")
    return root


def _symlink_loop(path: Path) -> None:
    path.symlink_to(path.with_name("other.png"))
    path.with_name("other.png").symlink_to(path)


def _manifest(root: Path, text: str) -> Path:
    folder = root / "sub"
    folder.mkdir(parents=True)
    (folder / "tiny.py").write_text(MODEL.format(behaviour="ok"))
    (folder / "submission.yaml").write_text(text)
    return folder


GOOD_MANIFEST = (
    "name: sub\nteam: t\ndescription: d\nmodel:\n  file: tiny.py\n  class: Tiny\ninput_range: 1.0\nscale: 4\n"
)


def _wrong_sha(root: Path) -> Path:
    folder = _submission(root, "sub", weights={"gain": torch.ones(1)})
    manifest = folder / "submission.yaml"
    digest = sha256_file(folder / "tiny.pth")
    manifest.write_text(manifest.read_text().replace(digest, "a" * 64))
    return folder


def _zoo_missing_weights(root: Path) -> list[str]:
    """A checkout with the official layout (models/, model_zoo/) whose model_zoo/ lacks team04's file."""
    checkout = root / "NTIRE2022_ESR"
    (checkout / "model_zoo").mkdir(parents=True)
    (checkout / "models").mkdir()
    return ["ntire2022:ByteESR", "--zoo", str(checkout)]


# (id, how the input is made from a fresh folder -> (submission args, data argument, extra args),
#  words the one error line must contain)
BAD_INPUTS: list[tuple[str, Callable[[Path], tuple[list[str], str, list[str]]], list[str]]] = [
    (
        "truncated_png",
        lambda r: (["bicubic"], str(_hr_only(r / "d", {"a.png": _truncated})), []),
        ["a.png", "truncated"],
    ),
    (
        "not_an_image",
        lambda r: (["bicubic"], str(_hr_only(r / "d", {"a.png": lambda p: p.write_text("hello")})), []),
        ["a.png", "not a readable image"],
    ),
    (
        "png_16_bit",
        lambda r: (["bicubic"], str(_hr_only(r / "d", {"a.png": lambda p: _png16(p, (64, 64))})), []),
        ["a.png", "16-bit"],
    ),
    (
        "lr_hr_size_mismatch",
        lambda r: (["bicubic"], str(_paired(r / "d", (64, 64), (15, 16))), []),
        ["ax4.png", "LR is 15x16", "HR"],
    ),
    (
        "hr_not_divisible_by_scale",
        lambda r: (["bicubic"], str(_paired(r / "d", (66, 64), (17, 16))), []),
        ["ax4.png", "after cropping to a multiple of 4"],
    ),
    (
        "empty_folder",
        lambda r: (["bicubic"], str((r / "d").mkdir() or r / "d"), []),
        ["dataset folder is empty"],
    ),
    (
        "partial_div2k_split",
        lambda r: (["bicubic"], str(_div2k_partial(r / "d")), []),
        ["2 of 100 images", "--allow-partial"],
    ),
    (
        "duplicate_image_names",
        lambda r: (
            ["bicubic"],
            str(
                _hr_only(
                    r / "d",
                    {
                        "a.png": lambda p: Image.new("RGB", (64, 64)).save(p),
                        "a.bmp": lambda p: Image.new("RGB", (64, 64)).save(p),
                    },
                )
            ),
            [],
        ),
        ["two images named 'a'"],
    ),
    (
        "symlink_loop",
        lambda r: (["bicubic"], str(_hr_only(r / "d", {"a.png": _symlink_loop})), []),
        ["a.png", "symbolic link"],
    ),
    (
        "image_too_small",
        lambda r: (["bicubic"], str(_paired(r / "d", (16, 16), (4, 4))), []),
        ["a.png", "too small"],
    ),
    (
        "yaml_syntax_error",
        lambda r: ([str(_manifest(r, "name: [sub\nteam: t\n"))], "samples", []),
        ["submission.yaml", "invalid YAML"],
    ),
    (
        "unknown_key_with_suggestion",
        lambda r: ([str(_manifest(r, GOOD_MANIFEST.replace("class:", "clas:")))], "samples", []),
        ["model.clas: unknown key", "did you mean 'class'"],
    ),
    (
        "wrong_type",
        lambda r: (
            [str(_manifest(r, GOOD_MANIFEST.replace("input_range: 1.0", "input_range: one")))],
            "samples",
            [],
        ),
        ["submission.yaml", "input_range"],
    ),
    (
        "zero_scale",
        lambda r: ([str(_manifest(r, GOOD_MANIFEST.replace("scale: 4", "scale: 0")))], "samples", []),
        ["scale: must be a positive integer, got 0"],
    ),
    (
        "negative_scale",
        lambda r: ([str(_manifest(r, GOOD_MANIFEST.replace("scale: 4", "scale: -4")))], "samples", []),
        ["scale: must be a positive integer, got -4"],
    ),
    (
        "weights_sha256_mismatch",
        lambda r: ([str(_wrong_sha(r))], "samples", []),
        ["tiny.pth", "sha256"],
    ),
    (
        "unknown_submission",
        lambda r: (["clb_imbn"], "samples", []),
        ["unknown submission 'clb_imbn'", "did you mean clb_imdn"],
    ),
    (
        "zoo_checkout_missing_weights",
        lambda r: (_zoo_missing_weights(r), "samples", []),
        ["model_zoo/team04_rlfn.pth", "not found"],
    ),
    (
        "data_is_a_file",
        lambda r: (["bicubic"], str((r / "f.png").write_bytes(b"x") and r / "f.png"), []),
        ["f.png", "is a file"],
    ),
    (
        "data_folder_missing",
        lambda r: (["bicubic"], str(r / "nowhere"), []),
        ["nowhere", "no such dataset folder"],
    ),
    (
        "unknown_protocol",
        lambda r: (["bicubic"], "samples", ["--protocol", "ntire2o22"]),
        ["unknown protocol 'ntire2o22'"],
    ),
    (
        "zero_rounds",
        lambda r: (["bicubic"], "samples", ["--rounds", "0"]),
        ["--rounds: must be at least 1, got 0"],
    ),
]


@pytest.mark.parametrize(("case", "make", "words"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: str, make: Callable, words: list[str], tmp_path: Path, model_zoo_dir: Path, capsys
) -> None:
    submissions, data, extra = make(tmp_path)
    status = esr(["evaluate", *submissions, "--data", data, *_options(tmp_path, model_zoo_dir, *extra)])
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert status == 2, (error, captured.out)
    assert len(error.splitlines()) == 1 and error.startswith("esr: error: "), error
    for word in words:
        assert word in error, error
    assert not (tmp_path / "out").exists()
    cache = tmp_path / "cache"
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()], list(cache.rglob("*"))


def _unreadable_as(path: Path) -> list[str]:
    """How to run a command as a user who cannot read ``path`` ([] when already such a user)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot make a file unreadable")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def test_an_unreadable_image_is_one_line_exit_2() -> None:
    # Root reads any file, so as root the command runs as user nobody (with setpriv), in a folder
    # that user can reach (pytest's own temporary folders are private to root).
    root = Path(tempfile.mkdtemp(prefix="esr-unreadable-"))
    root.chmod(0o777)
    data = _hr_only(root / "d", {"a.png": lambda p: Image.new("RGB", (64, 64)).save(p)})
    data.chmod(0o777)
    (data / "a.png").chmod(0o000)
    (data / "good.png").chmod(0o644)
    command = [*_unreadable_as(data / "a.png"), sys.executable, "-m", "harness.cli", "evaluate", "bicubic"]
    command += ["--data", str(data), "--device", "cpu", "--quiet", "--cache-dir", str(root / "cache")]
    command += ["--out", str(root / "out")]
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "HOME": str(root)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=root)
        wrote_results = (root / "out").exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    error = done.stderr.strip()
    assert done.returncode == 2, (done.stdout, error)
    assert len(error.splitlines()) == 1 and "a.png" in error and "Permission denied" in error, error
    assert not wrote_results


# ---------------------------------------------------------------- faulty submissions: failed records

FAULTY: list[tuple[str, str, dict | None, str]] = [
    ("import_error", "import_error", None, "No module named 'a_package_that_does_not_exist'"),
    ("constructor_error", "constructor_error", None, "ValueError: channels must be even"),
    ("missing_and_unexpected_keys", "ok", {"other": torch.ones(1)}, "missing"),
    ("shape_mismatch", "ok", {"gain": torch.ones(3)}, "shape difference"),
    ("pickle_payload_refused", "ok", {"gain": torch.ones(1), "payload": Payload()}, "--trust-weights"),
    ("nan_output", "nan", None, "output contains NaN or Inf"),
    ("wrong_output_size", "wrong_size", None, "output shape (1, 3, 64, 60), expected (1, 3, 64, 64)"),
    ("output_on_another_device", "other_device", None, "output is on meta, the input was on cpu"),
    ("output_of_another_dtype", "other_dtype", None, "output dtype torch.int32 is not floating point"),
    ("out_of_memory", "out_of_memory", None, "out of memory"),
    ("exception_mid_dataset", "mid_dataset", None, "RuntimeError: cannot handle width 18"),
    ("segfault", "segfault", None, "worker was killed by SIGSEGV during the accuracy pass"),
    (
        "sys_exit",
        "exit",
        None,
        "worker exited with code 3 during the accuracy pass; its last output: out of patience",
    ),
    ("abort", "abort", None, "worker was killed by SIGABRT"),
    (
        "hang_past_timeout",
        "hang",
        None,
        "timed out (no result within the 30 s limit) during the accuracy pass",
    ),
]


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    """One `esr evaluate` of every faulty submission beside a good one and the protocol baseline."""
    zoo = os.environ.get("ESR_MODEL_ZOO")
    if not zoo or not Path(zoo).is_dir():
        pytest.skip("ESR_MODEL_ZOO is not set to a folder (export ESR_MODEL_ZOO=../shared/model_zoo)")
    root = tmp_path_factory.mktemp("faulty")
    data = _tiny_data(root / "data")
    folders = [_submission(root, name, behaviour, weights) for name, behaviour, weights, _ in FAULTY]
    folders.append(_submission(root, "in_place", "in_place"))
    folders.append(_submission(root, "good"))
    argv = [
        "evaluate",
        *map(str, folders),
        "--data",
        str(data),
        *_options(root, Path(zoo), "--timeout", "30"),
    ]
    status = esr(argv)
    document = json.loads((root / "out" / "results.json").read_text())
    return status, {record["submission"]: record for record in document["results"]}, root


@pytest.mark.parametrize(("case", "reason"), [(c[0], c[3]) for c in FAULTY], ids=[c[0] for c in FAULTY])
def test_a_faulty_submission_is_a_failed_record_with_its_reason(faulty_run, case: str, reason: str) -> None:
    status, records, _ = faulty_run
    assert status == 1  # some submissions failed; the run itself completed
    record = records[case]
    assert record["status"] == "failed" and record["valid"] is False
    assert reason in record["error"], record["error"]
    assert record["psnr_rgb"] is None and record["runtime_ms"] is None


def test_the_others_are_still_evaluated_and_ranked(faulty_run) -> None:
    from harness.leaderboard import build_leaderboard, load_run

    _, records, root = faulty_run
    for name in ("good", "in_place", "imdn_baseline"):
        assert records[name]["status"] == "ok" and records[name]["num_images"] == 3
    board = build_leaderboard([load_run(root / "out")], style="ntire2022")
    ranked = board.rows[board.rows["team"] == "good"]
    assert ranked["main_rank"].notna().all() if "main_rank" in ranked else len(ranked) == 1


def test_an_in_place_write_into_the_input_is_scored_on_the_untouched_input(faulty_run) -> None:
    # The model zeroes its input after upscaling it: every call gets a fresh copy, so every image is
    # scored as the plain nearest-neighbour upscale, exactly as the good model's.
    _, records, _ = faulty_run
    keys = ("name", "psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")
    scores = {
        name: [[image[key] for key in keys] for image in records[name]["per_image"]]
        for name in ("in_place", "good")
    }
    assert scores["in_place"] == scores["good"]
