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
