"""Editions are files: the zoo prefixes and the leaderboard's score styles come from the YAML shipped.

The expected lists are read here from the files themselves (file names, and ``yaml.safe_load`` of
each protocol), not through the harness's loaders; the per-edition tests are parametrised over
them, so a new edition's files get these tests without new test code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

import harness
from harness.errors import HarnessError
from harness.leaderboard import build_leaderboard, score_styles, styles
from harness.protocols import load_protocol
from harness.submissions.manifest import ZOO_EDITIONS, zoo_edition, zoo_env_variable
from harness.zoo import registry_for

HARNESS = Path(harness.__file__).resolve().parent
PROTOCOL_FILES = sorted((HARNESS / "protocols").glob("*.yaml"))
ZOO_FILES = sorted((HARNESS / "zoo").glob("*.yaml"))


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


SCORED = [path.stem for path in PROTOCOL_FILES if _yaml(path).get("score") is not None]


def test_the_zoo_editions_are_the_registry_files() -> None:
    assert tuple(path.stem for path in ZOO_FILES) == ZOO_EDITIONS
    assert len(ZOO_EDITIONS) >= 5  # 2022 ... 2026 at least


def test_the_score_styles_are_the_protocols_that_state_a_score() -> None:
    assert score_styles() == tuple(SCORED)
    assert styles() == ("ntire2022", "table2", *SCORED)


@pytest.mark.parametrize("edition", ZOO_EDITIONS)
def test_each_zoo_edition_has_its_protocol_registry_and_prefix(edition: str) -> None:
    assert load_protocol(edition).name == edition  # a zoo without rules could not be evaluated
    registry = registry_for(edition)
    assert registry.entries, f"{edition}: registry lists no model"
    assert registry.repository.startswith("https://github.com/")
    assert zoo_edition(f"{edition}:all") == edition
    assert zoo_env_variable(edition) == f"ESR_{edition.upper()}_ZOO"


@pytest.mark.parametrize("edition", SCORED)
def test_each_score_style_scores_its_published_table_against_its_baseline(edition: str) -> None:
    """The published baseline scores exp(factor) on every sub-score, so its final score is exp(factor)."""
    stated = _yaml(HARNESS / "protocols" / f"{edition}.yaml")
    board = build_leaderboard([], style=edition, published_dir=harness.PUBLISHED_DIR)
    if not (harness.PUBLISHED_DIR / f"{edition}_esr_results.csv").is_file():
        assert board.rows.empty
        assert f"published: the {edition} repository publishes no results table" in board.notes
        return
    rows = board.rows.set_index("team")
    baseline = stated["published_baseline"]["team"]
    assert rows.loc[baseline, "score_final"] == pytest.approx(math.exp(stated["score"]["factor"]))


def test_an_unknown_style_names_the_derived_ones() -> None:
    with pytest.raises(HarnessError, match="ntire2022, table2, " + ", ".join(SCORED)):
        build_leaderboard([], style="ntire2099", published_dir=harness.PUBLISHED_DIR)
