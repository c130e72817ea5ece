"""Run options derived from the data: `--split` offers the splits the editions' protocol files name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import harness.protocols
from harness.commands import build_parser
from harness.commands._common import edition_splits

PROTOCOL_FILES = sorted(Path(harness.protocols.__file__).parent.glob("*.yaml"))


def _splits_in_the_files() -> dict[str, list[str]]:
    """Read straight from the YAML: each data split, with the editions whose files list it."""
    found: dict[str, list[str]] = {}
    for path in PROTOCOL_FILES:
        for mode in yaml.safe_load(path.read_text(encoding="utf-8"))["data"]:
            found.setdefault(mode["split"], []).append(path.stem)
    return found


def test_the_splits_are_those_of_the_protocol_files() -> None:
    assert edition_splits() == _splits_in_the_files()
    assert set(edition_splits()) >= {"val", "test"}  # what every edition has


@pytest.mark.parametrize("split", list(_splits_in_the_files()))
def test_split_accepts_each_split_an_edition_names(split: str) -> None:
    args = build_parser().parse_args(["evaluate", "clb_imdn", "--split", split])
    assert args.split == split


def test_split_refuses_a_split_no_edition_names() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "clb_imdn", "--split", "train"])
