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


# ----------------------------------------------------------------------------- measured runs

# Each edition's baseline and weights as its README states them (2024: RLFN, 0.7/0.15/0.15;
# 2025: EFDN, the same weights; 2026: SPAN, 0.8/0.1/0.1); the term is exp(2 X / X_baseline).
EDITION_SCORES = {
    "ntire2024": ("rlfn", (0.7, 0.15, 0.15)),
    "ntire2025": ("efdn", (0.7, 0.15, 0.15)),
    "ntire2026": ("span", (0.8, 0.1, 0.1)),
}
LSDIR_VAL = {"name": "DIV2K_LSDIR", "split": "val", "num_images": 3, "scale": 4, "content_sha256": "three"}


@pytest.fixture(scope="module")
def counted_on_cpu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The three bundled baselines counted on this CPU by `esr summary` (params and fvcore FLOPs)."""
    from harness.commands import run as esr

    path = tmp_path_factory.mktemp("summary") / "counts.json"
    assert esr(["summary", "rlfn", "efdn", "span", "--protocol", "ntire2026", "--json", str(path)]) == 0
    return {record["submission"]: record for record in json.loads(path.read_text())}


def _measured_record(counted: dict, ms: float) -> dict:
    """A result record with the counted params and FLOPs and a CPU runtime of ``ms``."""
    return {
        "submission": counted["submission"],
        "team": counted["submission"],
        "weights_sha256": "0" * 64,
        "status": "ok",
        "error": None,
        "psnr_rgb": 30.0,
        "psnr_y": 31.8,
        "ssim_rgb": 0.9,
        "ssim_y": 0.91,
        "runtime_ms": {"mean": ms, "median": ms, "p90": ms, "std": 0.1},
        "max_memory_mb": None,
        "params": counted["params"],
        "flops": counted["flops"],
        "flops_counter": counted["flops_counter"],
        "activations": counted["activations"],
        "num_conv": counted["num_conv"],
        "num_images": 3,
        "per_image": [],
    }


def _write_measured_run(path: Path, edition: str, records: list[dict]) -> Path:
    from harness.protocols import load_protocol

    document = {
        "harness": {"version": "0.1.0", "git_commit": "abc", "git_dirty": False},
        "protocol": edition,
        "protocol_version": load_protocol(edition).version,
        "device": {"cpu_name": "AMD EPYC", "fingerprint_id": "cpu-a"},
        "dataset": LSDIR_VAL,
        "timing": {"cudnn_benchmark": False},
        "baseline": EDITION_SCORES[edition][0],
        "results": records,
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(document))
    return path


def _expected_final(edition: str, entry: dict, ms: float, baseline: dict, baseline_ms: float) -> float:
    weights = EDITION_SCORES[edition][1]
    ratios = (ms / baseline_ms, entry["flops"] / baseline["flops"], entry["params"] / baseline["params"])
    return sum(weight * math.exp(2 * ratio) for weight, ratio in zip(weights, ratios, strict=True))


@pytest.mark.parametrize("edition", sorted(EDITION_SCORES))
def test_measured_runs_are_scored_against_the_baseline_counted_in_the_same_run(
    edition: str, counted_on_cpu: dict[str, dict], tmp_path: Path
) -> None:
    """Every edition's baseline counts on the CPU, and `esr leaderboard --style <edition>` scores a
    run's entries against that baseline's counted params and FLOPs and its runtime in the same run
    (CPU milliseconds, nothing like the published GPU figures), never the published row. Two runs
    on one device each keep their own baseline: an entry's runtime term divides by its run's."""
    from harness.commands import run as esr
    from harness.leaderboard import load_run

    base_name = EDITION_SCORES[edition][0]
    base, others = counted_on_cpu[base_name], [r for n, r in sorted(counted_on_cpu.items()) if n != base_name]
    assert base["status"] == "ok" and base["flops_counter"] == "fvcore"
    # run one: the baseline at 80 ms beside the first other model at 100 ms; run two: the
    # baseline at 40 ms (another load on the machine) beside the second at 60 ms
    timed = {others[0]["submission"]: (100.0, 80.0), others[1]["submission"]: (60.0, 40.0)}
    runs = [
        _write_measured_run(
            tmp_path / f"run{index}", edition, [_measured_record(other, ms), _measured_record(base, base_ms)]
        )
        for index, (other, (ms, base_ms)) in enumerate(zip(others, timed.values(), strict=True))
    ]
    board = build_leaderboard([load_run(run) for run in runs], style=edition)
    found = {row["team"]: row for row in board.rows.to_dict("records")}
    assert found[base_name]["score_final"] == pytest.approx(math.exp(2), rel=1e-12)
    for other in others:
        ms, base_ms = timed[other["submission"]]
        row = found[other["submission"]]
        assert row["time_ratio"] == pytest.approx(ms / base_ms, rel=1e-12)
        assert row["score_final"] == pytest.approx(
            _expected_final(edition, other, ms, base, base_ms), rel=1e-12
        )
    out = tmp_path / "board.csv"
    assert (
        esr(["leaderboard", "--style", edition, "--format", "csv", "--out", str(out), *map(str, runs)]) == 0
    )
    printed = {row["team"]: float(row["score_final"]) for row in csv.DictReader(out.open())}
    assert printed == pytest.approx({name: row["score_final"] for name, row in found.items()}, rel=1e-12)


def test_a_run_without_its_baseline_is_listed_unscored(
    counted_on_cpu: dict[str, dict], tmp_path: Path
) -> None:
    """No score from another source stands in for a missing baseline: not the published row."""
    from harness.leaderboard import load_run

    run = _write_measured_run(tmp_path / "run", "ntire2026", [_measured_record(counted_on_cpu["efdn"], 90.0)])
    [row] = build_leaderboard([load_run(run)], style="ntire2026").rows.to_dict("records")
    assert "no baseline result (span) in this run" in row["note"]
    assert not row["ranked"] and math.isnan(row["score_final"])
