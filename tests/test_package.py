"""`esr package`: the challenge zip's file list and readme.txt against the organisers' format, and refusals."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import SYNTHETIC_IMAGES

from harness.commands import run as esr

# The organisers' readme.txt (NTIRE CodaLab submission instructions), written out here as the
# reference: four lines, in this order, each "<field> : <value>".
README_LINES = (
    re.compile(r"runtime per image \[s\] : (\d+\.\d+)"),
    re.compile(r"CPU\[1\] / GPU\[0\] : ([01])"),
    re.compile(r"Extra Data \[1\] / No Extra Data \[0\] : ([01])"),
    re.compile(r"Other description : (\S.*)"),
)


def read_package(path: Path) -> tuple[list[str], list[str]]:
    """The zip's member names and its readme's lines (matched against the format)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        readme = archive.read("readme.txt").decode("utf-8")
    assert readme.endswith("\n")
    lines = readme.splitlines()
    assert len(lines) == len(README_LINES)
    values = []
    for line, pattern in zip(lines, README_LINES, strict=True):
        match = pattern.fullmatch(line)
        assert match, line
        values.append(match.group(1))
    return names, values


def package(run_dir: Path, out: Path, *extra: str) -> int:
    return esr(["package", str(run_dir), "--out", str(out), *extra])


def test_the_package_holds_the_sr_images_named_after_hr_and_the_readme(
    synthetic_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "close.zip"
    status = package(
        synthetic_run, out, "--submission", "close", "--extra-data", "1", "--description", "A ramp."
    )
    assert status == 0
    names, values = read_package(out)
    # The HR file names of the split (SelfExSR: img_001_SRF_4_HR.png), then readme.txt; no folders.
    assert names == [f"{image}_SRF_4_HR.png" for image in SYNTHETIC_IMAGES] + ["readme.txt"]
    # 20 ms per image on a GPU (the run's timing device is cuda), extra data as stated.
    assert values[:3] == ["0.020000", "0", "1"]
    assert values[3].startswith(
        "A ramp. close (team close): runtime = mean over 3 images of Tiny on Test GPU"
    )
    with zipfile.ZipFile(out) as archive:
        saved = (synthetic_run / "images" / "close" / "img_002.png").read_bytes()
        assert archive.read("img_002_SRF_4_HR.png") == saved  # the run's PNG, untouched
    # The same run gives the same zip, byte for byte.
    again = tmp_path / "again.zip"
    assert (
        package(
            synthetic_run, again, "--submission", "close", "--extra-data", "1", "--description", "A ramp."
        )
        == 0
    )
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize(
    ("submission", "damage", "reason"),
    [
        ("broken", None, "broken failed in this run (RuntimeError: the forward pass"),
        ("nobody", None, "no result for 'nobody' (the run has: close, blotched, broken, imdn_baseline)"),
        ("close", "partial", "close ran on 2 of 3 images of the split; the organisers expect every one"),
        ("close", "no images", "the run saved no SR images for close"),
        ("close", "one image missing", "img_003.png: missing; the run did not save every SR image of close"),
    ],
)
def test_a_run_that_cannot_be_handed_in_is_refused_in_one_line(
    synthetic_run: Path, tmp_path: Path, capsys, submission: str, damage: str | None, reason: str
) -> None:
    if damage == "partial":
        document = json.loads((synthetic_run / "results.json").read_text())
        document["results"][0]["num_images"] = 2
        (synthetic_run / "results.json").write_text(json.dumps(document))
    elif damage == "no images":
        shutil.rmtree(synthetic_run / "images" / "close")
    elif damage == "one image missing":
        (synthetic_run / "images" / "close" / "img_003.png").unlink()
    out = tmp_path / "refused.zip"
    assert package(synthetic_run, out, "--submission", submission, "--extra-data", "0") == 2
    error = capsys.readouterr().err
    assert error.startswith("esr: error: ") and error.count("\n") == 1 and reason in error
    assert not out.exists() and not list(tmp_path.glob(".refused.zip.*"))


def test_extra_data_must_be_stated(synthetic_run: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        package(synthetic_run, tmp_path / "x.zip", "--submission", "close")
    assert "--extra-data" in capsys.readouterr().err


def test_acceptance_set5_package(set5_run: Path, tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "clb_imdn.zip"
    assert package(set5_run, out, "--submission", "clb_imdn", "--extra-data", "0") == 0
    names, values = read_package(out)
    hr_names = sorted(path.name for path in (data_dir / "Set5" / "image_SRF_4").glob("*_HR.png"))
    assert names == hr_names + ["readme.txt"] and len(hr_names) == 5
    run = json.loads((set5_run / "results.json").read_text())
    record = next(result for result in run["results"] if result["submission"] == "clb_imdn")
    assert values[0] == f"{record['runtime_ms']['mean'] / 1000:.6f}"
    assert values[1:3] == ["1", "0"]  # measured on the CPU, no extra data
    with zipfile.ZipFile(out) as archive:
        for image in ("img_001", "img_005"):
            saved = (set5_run / "images" / "clb_imdn" / f"{image}.png").read_bytes()
            assert archive.read(f"{image}_SRF_4_HR.png") == saved
