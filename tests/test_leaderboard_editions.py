"""The 2024+ score leaderboards: the 2026 results.txt scored and ranked, and its per-image figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from harness.leaderboard import build_leaderboard, render
from harness.leaderboard.edition_tables import load_published_edition
from tests.conftest import edition_checkout

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published"


def _printed_rows() -> list[dict[str, str]]:
    with (PUBLISHED / "ntire2026_esr_results.csv").open() as file:
        return list(csv.DictReader(file))


def test_2026_scores_and_ranks_recomputed_from_the_printed_metrics() -> None:
    """Independent arithmetic: the README's formula with SPAN's printed row as the baseline."""
    rows = _printed_rows()
    assert len(rows) == 16
    base = next(row for row in rows if row["model"] == "00_SPAN")

    def term(row: dict[str, str], key: str) -> float:
        return math.exp(2 * float(row[key]) / float(base[key]))

    expected = {
        row["model"]: 0.8 * term(row, "ave_time_ms")
        + 0.1 * term(row, "flops_g")
        + 0.1 * term(row, "params_m")
        for row in rows
    }
    below = {
        row["model"]
        for row in rows
        if float(row["val_psnr_db"]) < 26.90 or float(row["test_psnr_db"]) < 26.99
    }
    assert below == {"21_SAFMN", "009_RFDN_SPAN"}
    order = sorted((name for name in expected if name not in below), key=expected.__getitem__)

    board = build_leaderboard([], style="ntire2026", published_dir=PUBLISHED)
    found = {row["team"]: row for row in board.rows.to_dict("records")}
    assert set(found) == set(expected)
    for name, value in expected.items():
        assert found[name]["score_final"] == pytest.approx(value, rel=1e-12)
    assert found["00_SPAN"]["score_final"] == pytest.approx(math.exp(2))  # the README's 7.3891
    assert [found[name]["rank"] for name in order] == list(range(1, len(order) + 1))
    for name in below:
        assert not found[name]["ranked"] and "not ranked" in found[name]["note"]
    assert order[:3] == ["22_SPANV2_ESR_C2", "01_PDS", "16_PKDSR_FINAL_CKPT"]


def test_2026_published_uncertainty_notes() -> None:
    board = build_leaderboard([], style="ntire2026", published_dir=PUBLISHED)
    text = render(board, "md")
    # Printed 26.90 / 26.99 over unrounded values below the thresholds.
    for model, split, exact in [
        ("01_PDS", "val", "26.8964"),
        ("04_ZenoSR", "val", "26.8971"),
        ("11_VSCINet", "val", "26.8967"),
        ("17_AMCANet", "val", "26.8972"),
        ("15_DSCF_Fused", "test", "26.9856"),
    ]:
        assert f"{model}: {split} PSNR printed" in text and f"unrounded {exact} dB" in text
    assert "published order not resolved: 15_DSCF_Fused (rank 5) before 00_SPAN (rank 6)" in text
    spans = {row["team"]: row["time_interval"] for row in board.rows.to_dict("records")}
    assert spans["00_SPAN"] == "[7.50, 7.97]"


def test_2026_interval_arithmetic() -> None:
    """SPAN's Ave Time interval by hand: mean of the split means +- t(0.975, 199) x standard error."""
    from scipy import stats

    published = load_published_edition(PUBLISHED, "ntire2026")
    assert published is not None
    figures = published.per_image["00_SPAN"]
    val, test = figures.runtime_ms["val"], figures.runtime_ms["test"]

    def variance(values: tuple[float, ...]) -> float:
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / (len(values) - 1)

    mean = (sum(val) / 200 + sum(test) / 200) / 2
    half = stats.t.ppf(0.975, 199) * math.sqrt((variance(val) / 200 + variance(test) / 200) / 4)
    interval = figures.ave_time()
    assert interval.mean == pytest.approx(mean, rel=1e-12)
    assert (interval.low, interval.high) == pytest.approx((mean - half, mean + half), rel=1e-9)
    assert round(interval.mean, 2) == 7.74  # the printed Ave Time


def test_2025_publishes_no_table() -> None:
    board = build_leaderboard([], style="ntire2025", published_dir=PUBLISHED)
    assert (
        board.rows.empty and "published: the ntire2025 repository publishes no results table" in board.notes
    )


def test_published_tables_are_the_checkouts_results(checkout_imports: None) -> None:
    """The transcriptions against the repository's results.txt and results.json (needs the checkout)."""
    root = edition_checkout("ntire2026")
    printed = (root / "results.txt").read_text().splitlines()[1:]
    for line, row in zip(printed, _printed_rows(), strict=True):
        cells = [cell.strip() for cell in line.split("\t")]
        assert cells[0] == row["model"]
        assert cells[1:12] == [row[key] for key in list(row)[2:]]
    document = json.loads((root / "results.json").read_text())
    published = load_published_edition(PUBLISHED, "ntire2026")
    assert published is not None
    for key, values in document.items():
        figures = published.per_image[key.strip()]
        assert list(figures.runtime_ms["val"]) == values["valid_runtime"]
        assert list(figures.psnr_db["test"]) == values["test_psnr"]
        assert figures.mean_psnr("val") == pytest.approx(values["valid_ave_psnr"], abs=1e-12)
