"""The wheel carries what the harness needs at run time: bundled manifests and published tables."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        str(ROOT),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 and "No module named pip" in done.stderr:
        pytest.skip("pip is not installed in this environment")
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("esr_harness-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_carries_every_bundled_manifest_and_published_table(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for manifest in sorted((ROOT / "submissions").glob("*/submission.yaml")):
        assert f"harness/_bundled/submissions/{manifest.parent.name}/submission.yaml" in names
    for table in sorted((ROOT / "results" / "published").iterdir()):
        assert f"harness/_bundled/published/{table.name}" in names
    assert {"harness/protocols/ntire2022.yaml", "harness/zoo/ntire2022.yaml"} <= names
    # The files themselves, not links to where a checkout keeps them.
    shipped = wheel.read("harness/_bundled/submissions/clb_imdn/submission.yaml")
    assert shipped == (ROOT / "submissions" / "clb_imdn" / "submission.yaml").read_bytes()


def test_a_checkout_reads_the_repository_folders() -> None:
    assert (ROOT / "submissions").resolve() == harness.BUNDLED_SUBMISSIONS_DIR
    assert (ROOT / "results" / "published").resolve() == harness.PUBLISHED_DIR
    assert harness.CHECKOUT == ROOT


def test_the_help_and_the_package_description_name_every_edition_not_only_2022() -> None:
    """`esr --help` lists every protocol file; pyproject's description spans the first to the last year."""
    from harness.commands import build_parser

    stems = sorted(path.stem for path in (ROOT / "harness" / "protocols").glob("*.yaml"))
    assert len(stems) > 1
    help_text = " ".join(build_parser().format_help().split())
    assert all(stem in help_text for stem in stems), help_text
    description = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["description"]
    years = sorted(stem.removeprefix("ntire") for stem in stems)
    assert f"{years[0]}-{years[-1]}" in description, description
