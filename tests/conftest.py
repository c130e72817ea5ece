"""Shared fixtures: where the read-only inputs are, and skips with a reason when they are not."""

from __future__ import annotations

import os
from pathlib import Path

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
