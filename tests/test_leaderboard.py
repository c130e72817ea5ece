"""Leaderboards: official rank reproduction, track and Table-2 layouts, published merge, renderers, plot."""

from __future__ import annotations

import argparse
import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.commands import leaderboard as command
from harness.errors import HarnessError
from harness.leaderboard import build_leaderboard, load_run, render, write_plot
from harness.leaderboard.plot import pareto_front
from harness.leaderboard.published import load_official_table
from harness.leaderboard.ranking import min_rank, rank_tracks, reproduce_ranks
from harness.leaderboard.render import display_frame

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published"
OFFICIAL_CSV = PUBLISHED / "ntire2022_esr_official_results.csv"
DIV2K_VAL = {"name": "DIV2K", "path": "/data/DIV2K", "split": "val", "num_images": 100, "scale": 4}
DIV2K_TEST = {**DIV2K_VAL, "split": "test", "content_sha256": "test-images"}
DIV2K_VAL = {**DIV2K_VAL, "content_sha256": "val-images"}

# --- the official table, read with the csv module: the independent reference -----------------------

METRICS = {
    "time": "ave_time_ms",
    "params": "params_m",
    "flops": "flops_g",
    "acts": "acts_m",
    "mem": "gpu_mem_mb",
}
PRINTED_RANK = {
    "time": "ave_time_rank",
    "params": "params_rank",
    "flops": "flops_rank",
    "acts": "acts_rank",
    "mem": "gpu_mem_rank",
}


def official_ranked_rows() -> list[dict[str, str]]:
    with OFFICIAL_CSV.open(newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["status"] == "ranked"]


def plain_min_rank(values: list[float]) -> list[int]:
    """1 + how many values are strictly smaller: the organisers' "ties share the lowest rank"."""
    return [1 + sum(other < value for other in values) for value in values]


def test_printed_per_metric_ranks_differ_from_plain_ranks_only_in_printed_precision_ties() -> None:
    rows = official_ranked_rows()
    assert len(rows) == 35
    mismatched = set()
    for metric, column in METRICS.items():
        values = [float(row[column]) for row in rows]
        for row, rank, value in zip(rows, plain_min_rank(values), values, strict=True):
            if rank != int(row[PRINTED_RANK[metric]]):
                # Only entries that share their printed value with another entry.
                assert values.count(value) == 2
                mismatched.add((metric, row["team"]))
    assert mismatched == {
        ("params", "NKU-ESR"),
        ("params", "Aselsan Research"),
        ("params", "Alpan Team"),
        ("params", "Express"),
        ("flops", "Dragon"),
    }


def test_official_ranks_are_reproduced_except_the_documented_misprint() -> None:
    table = load_official_table(PUBLISHED)
    result = table.reproduction
    assert (result.ranks_checked, result.ranks_reproduced) == (280, 279)
    assert (result.scores_checked, result.scores_reproduced) == (70, 70)
    assert [(d.name, d.column, d.printed, d.computed) for d in result.differences] == [
        ("Alpan Team", "sub_track1_rank", 10, 9)
    ]
    assert "sub-track-1" in result.differences[0].known  # labelled as the table's known misprint
    ties = {(tie.metric, tie.value): tie.entries for tie in result.printed_ties}
    assert ties == {
        ("params", 0.276): (("rainbow", 6), ("NKU-ESR", 7)),
        ("params", 0.317): (("ByteESR", 11), ("Aselsan Research", 12)),
        ("params", 0.326): (("Super", 14), ("Alpan Team", 15)),
        ("params", 0.339): (("cceNBgdd", 16), ("Express", 17)),
        ("flops", 21.11): (("cceNBgdd", 17), ("Dragon", 18)),
    }
    assert "279 of 280" in result.summary() and "1 of them known" in result.summary()


def test_track_ranks_match_a_plain_recomputation_from_the_printed_metric_ranks() -> None:
    rows = official_ranked_rows()
    rank = {metric: [int(row[column]) for row in rows] for metric, column in PRINTED_RANK.items()}
    score1 = [p + f for p, f in zip(rank["params"], rank["flops"], strict=True)]
    score2 = [sum(rank[m][i] for m in METRICS) for i in range(len(rows))]
    assert score1 == [int(row["sub_track1_score"]) for row in rows]
    assert score2 == [int(row["sub_track2_score"]) for row in rows]
    table = load_official_table(PUBLISHED)
    assert table.tracks.sub_track1_score == score1 and table.tracks.sub_track2_score == score2
    assert table.tracks.sub_track1_rank == plain_min_rank(score1)
    assert (
        table.tracks.sub_track2_rank
        == plain_min_rank(score2)
        == [int(row["sub_track2_rank"]) for row in rows]
    )
    assert table.tracks.main_rank == [int(row["main_track_rank"]) for row in rows]


def test_min_rank_shares_the_lowest_rank_and_skips_missing() -> None:
    assert min_rank([3.0, 1.0, 1.0, 2.0]) == [4, 1, 1, 3]
    assert min_rank([2.0, None, 1.0]) == [2, None, 1]


def test_tracks_sum_ranks_and_share_tied_scores() -> None:
    tracks = rank_tracks(
        ["a", "b", "c"],
        {
            "time": [1.0, 2.0, 3.0],
            "params": [1.0, 2.0, 3.0],
            "flops": [2.0, 1.0, 3.0],
            "acts": [1, 2, 3],
            "mem": [3, 2, 1],
        },
    )
    assert tracks.main_rank == [1, 2, 3]
    assert tracks.sub_track1_score == [3, 3, 6] and tracks.sub_track1_rank == [1, 1, 3]
    assert tracks.sub_track2_score == [1 + 1 + 2 + 1 + 3, 2 + 2 + 1 + 2 + 2, 3 + 3 + 3 + 3 + 1]


def test_a_missing_metric_leaves_the_tracks_that_need_it_unscored() -> None:
    tracks = rank_tracks(
        ["a", "b"],
        {"time": [1.0, 2.0], "params": [1.0, 2.0], "flops": [1.0, 2.0], "acts": [1, 2], "mem": [None, None]},
    )
    assert tracks.sub_track1_rank == [1, 2]
    assert tracks.sub_track2_score == [None, None] and tracks.sub_track2_rank == [None, None]


def test_a_printed_tie_is_adopted_only_when_its_ranks_span_it() -> None:
    names = ["a", "b", "c"]
    metrics = {key: [1.0, 1.0, 2.0] for key in ("time", "params", "flops", "acts", "mem")}
    # a and b tie at the printed precision everywhere; the table orders them on params only.
    printed = {key: [1, 1, 3] for key in metrics} | {"params": [1, 2, 3]}
    tracks = {
        "main_track_rank": [1, 1, 3],
        "sub_track1_score": [2, 3, 6],
        "sub_track1_rank": [1, 2, 3],
        "sub_track2_score": [5, 6, 15],
        "sub_track2_rank": [1, 2, 3],
    }
    _, good = reproduce_ranks(names, metrics, printed, tracks)
    assert not good.differences
    assert [(tie.metric, tie.entries) for tie in good.printed_ties] == [("params", (("a", 1), ("b", 2)))]
    # Ranks 1 and 3 do not span a two-way tie at rank 1: that is a difference, not a tie.
    _, bad = reproduce_ranks(names, metrics, printed | {"params": [1, 3, 3]}, tracks)
    assert ("b", "params_rank", 3, 1) in [(d.name, d.column, d.printed, d.computed) for d in bad.differences]
    assert not bad.printed_ties


# --- measured runs ---------------------------------------------------------------------------------


def result(
    name: str,
    *,
    psnr: float = 29.05,
    ms: float = 40.0,
    params: int = 500_000,
    flops: int = 30_000_000_000,
    acts: int = 100_000_000,
    mem: float | None = 300.0,
    images: int = 100,
    status: str = "ok",
) -> dict[str, Any]:
    """A result record following the design's schema (per-image list left short on purpose)."""
    return {
        "submission": name,
        "team": name,
        "weights_sha256": "0" * 64,
        "status": status,
        "error": None if status == "ok" else "ValueError: output contains NaN",
        "psnr_rgb": psnr if status == "ok" else None,
        "psnr_y": None if status != "ok" else psnr + 1.8,
        "ssim_rgb": 0.8,
        "ssim_y": 0.82,
        "runtime_ms": {"mean": ms, "median": ms, "p90": ms, "std": 0.1} if status == "ok" else None,
        "max_memory_mb": mem,
        "params": params,
        "flops": flops,
        "activations": acts,
        "num_conv": 40,
        "num_images": images if status == "ok" else 0,
        "per_image": [],
    }


def write_run(
    path: Path,
    results: list[dict[str, Any]],
    *,
    dataset: dict[str, Any] = DIV2K_VAL,
    fingerprint: str = "gpu-a",
    version: int = 1,
) -> Path:
    document = {
        "harness": {"version": "0.1.0", "git_commit": "abc", "git_dirty": False},
        "protocol": "ntire2022",
        "protocol_version": version,
        "device": {"gpu_name": "Fake GPU", "fingerprint_id": fingerprint},
        "dataset": dataset,
        "timing": {"cudnn_benchmark": False},
        "baseline": "imdn_baseline",
        "results": results,
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(document))
    return path


BASELINE = result("imdn_baseline", psnr=29.13, ms=50.0, params=893_936, flops=58_530_000_000, mem=471.0)


@pytest.fixture
def val_run(tmp_path: Path) -> Path:
    return write_run(
        tmp_path / "val",
        [
            result("fast", psnr=29.01, ms=25.0, params=300_000),
            result("accurate", psnr=29.10, ms=45.0, params=800_000),
            result("low_psnr", psnr=28.90, ms=20.0),
            result("crashed", status="failed"),
            result("partial", images=60),
            result("too_slow", psnr=29.20, ms=60.0),
            BASELINE,
        ],
    )


def test_ntire2022_ranks_measured_entries_and_lists_the_rest_below(val_run: Path) -> None:
    board = build_leaderboard([load_run(val_run)], style="ntire2022")
    rows = board.rows.set_index("team")
    ranked = board.rows[board.rows["ranked"] == True]  # noqa: E712 - pandas element-wise comparison
    # too_slow meets the PSNR condition, so it is ranked on the tracks, though not valid overall.
    assert list(ranked["team"]) == ["fast", "accurate", "too_slow"]
    assert list(ranked["main_rank"]) == [1, 2, 3]
    assert not bool(rows.loc["too_slow", "valid"]) and bool(rows.loc["fast", "valid"])
    assert rows.loc["fast", "time_ratio"] == pytest.approx(0.5)
    assert rows.loc["fast", "params_m"] == pytest.approx(0.3) and rows.loc[
        "fast", "flops_g"
    ] == pytest.approx(30.0)
    below = board.rows[board.rows["ranked"] == False]  # noqa: E712
    assert list(below["team"]) == ["low_psnr", "crashed", "partial", "imdn_baseline"]
    assert rows.loc["imdn_baseline", "note"].startswith("baseline")
    assert rows.loc["crashed", "note"].startswith("failed: ValueError")
    assert "60 of 100 images" in rows.loc["partial", "note"]
    assert "psnr 28.9" in rows.loc["low_psnr", "note"]
    assert pd.isna(rows.loc["crashed", "main_rank"])


def test_runs_from_different_devices_or_protocol_versions_are_refused(tmp_path: Path) -> None:
    one = load_run(write_run(tmp_path / "a", [result("x"), BASELINE]))
    other_gpu = load_run(write_run(tmp_path / "b", [result("y"), BASELINE], fingerprint="gpu-b"))
    with pytest.raises(HarnessError, match="different devices"):
        build_leaderboard([one, other_gpu])
    old = load_run(write_run(tmp_path / "c", [result("z"), BASELINE], version=2))
    with pytest.raises(HarnessError, match="different protocol versions"):
        build_leaderboard([one, old])


def test_runs_on_one_device_merge_and_duplicates_are_refused(tmp_path: Path) -> None:
    one = load_run(write_run(tmp_path / "a", [result("x", ms=30.0), BASELINE]))
    two = load_run(write_run(tmp_path / "b", [result("y", ms=20.0), BASELINE]))
    board = build_leaderboard([one, two])
    assert list(board.rows[board.rows["ranked"] == True]["team"]) == ["y", "x"]  # noqa: E712
    assert list(board.rows["team"]).count("imdn_baseline") == 1
    again = load_run(write_run(tmp_path / "c", [result("x"), BASELINE]))
    with pytest.raises(HarnessError, match="'x' is also in"):
        build_leaderboard([one, again])


def test_load_run_accepts_a_directory_or_a_file_and_names_bad_input(tmp_path: Path, val_run: Path) -> None:
    assert load_run(val_run).path == load_run(val_run / "results.json").path
    with pytest.raises(HarnessError, match="no run file"):
        load_run(tmp_path / "nowhere")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(HarnessError, match="broken.json"):
        load_run(broken)
    no_device = tmp_path / "nodevice.json"
    no_device.write_text(
        json.dumps({"protocol": "ntire2022", "protocol_version": 1, "dataset": {}, "results": []})
    )
    with pytest.raises(HarnessError, match="'device'"):
        load_run(no_device)


def test_proxy_psnr_on_other_data_is_labelled(tmp_path: Path) -> None:
    set5 = {"name": "Set5", "split": None, "num_images": 5, "scale": 4, "content_sha256": "set5"}
    run = write_run(
        tmp_path / "s5",
        [
            result("a", psnr=30.25, images=5),
            result("b", psnr=30.0, images=5),
            {**BASELINE, "psnr_rgb": 30.34, "num_images": 5},
        ],
        dataset=set5,
    )
    board = build_leaderboard([load_run(run)])
    assert list(board.rows[board.rows["ranked"] == True]["team"]) == ["a"]  # noqa: E712
    assert any("proxy" in note for note in board.notes)
    assert board.panels[0].proxy and board.panels[0].psnr_limit == pytest.approx(30.21)


# --- Table 2 --------------------------------------------------------------------------------------


def test_table2_orders_by_val_psnr_merges_test_and_marks_missing_test(tmp_path: Path) -> None:
    val = write_run(
        tmp_path / "val",
        [
            result("fast", psnr=29.01, ms=25.0),
            result("best", psnr=29.06, ms=45.0),
            result("untested", psnr=29.09, ms=30.0),
            result("flaky", psnr=29.03, ms=30.0),
            result("too_slow", psnr=29.20, ms=60.0),
            BASELINE,
        ],
    )
    test = write_run(
        tmp_path / "test",
        [
            result("fast", psnr=28.71, ms=24.0),
            result("best", psnr=28.75, ms=44.0),
            result("flaky", status="failed"),
            {**BASELINE, "psnr_rgb": 28.78},
        ],
        dataset=DIV2K_TEST,
    )
    board = build_leaderboard([load_run(val), load_run(test)], style="table2")
    ranked = board.rows[board.rows["ranked"] == True]  # noqa: E712
    assert list(ranked["team"]) == ["best", "fast", "untested \N{DAGGER}", "flaky \N{DAGGER}"]
    assert ranked.iloc[3]["note"].startswith("test run failed: ValueError")
    best = ranked.iloc[0]
    assert best["avg_psnr"] == pytest.approx((29.06 + 28.75) / 2)
    assert best["val_ratio"] == pytest.approx(45 / 50) and best["test_ratio"] == pytest.approx(44 / 50)
    rows = board.rows.set_index("team")
    too_slow = rows.loc["too_slow \N{DAGGER}"]
    assert not bool(too_slow["ranked"]) and "runtime 1.2" in too_slow["note"]
    shown = display_frame(board)
    assert list(shown.iloc[0][["Team", "Val PSNR [dB]", "Val Time / IMDN"]]) == [
        "Target",
        ">= 29.00",
        "<= 1.00",
    ]
    assert shown.iloc[1]["Team"] == "best"


def test_table2_published_rows_keep_the_seed_order_and_ratios() -> None:
    board = build_leaderboard([], style="table2", published_dir=PUBLISHED)
    teams = list(board.rows["team"])
    assert teams[0] == "Ours" and teams[-2:] == ["IPCV-IITM \N{DAGGER}", "AiriA-CG \N{DAGGER}"]
    ours = board.rows.set_index("team").loc["Ours"]
    assert ours["val_ratio"] == pytest.approx(48.86 / 49.42) and ours["params_m"] == pytest.approx(0.790)
    assert any("imglhl, IMGWLH, XPixel" in note for note in board.notes)


# --- published merge -------------------------------------------------------------------------------


def test_published_rows_use_the_published_imdn_as_ratio_base(val_run: Path) -> None:
    board = build_leaderboard([load_run(val_run)], published_dir=PUBLISHED)
    assert set(board.rows["source"]) == {"measured", "published"}
    published = board.rows[board.rows["source"] == "published"].set_index("team")
    assert published.loc["ByteESR", "time_ratio"] == pytest.approx(27.11 / 50.86)
    assert published.loc["IMDN_baseline", "time_ratio"] == pytest.approx(1.0)
    assert published.loc["Alpan Team", "sub_track1_rank"] == 9  # computed, the printed 10 is reported
    measured = board.rows[board.rows["source"] == "measured"].set_index("team")
    assert measured.loc["fast", "time_ratio"] == pytest.approx(25 / 50)
    # Measured on DIV2K val: one PSNR scale, one plot panel.
    assert len(board.panels) == 1 and board.panels[0].sources == ("measured", "published")


# --- renderers, plot, command ----------------------------------------------------------------------


class _TableCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.cells: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows += 1
            self.cells.append(0)
        elif tag in ("td", "th"):
            self.cells[-1] += 1


def test_renderers_produce_parseable_output(val_run: Path) -> None:
    board = build_leaderboard([load_run(val_run)], published_dir=PUBLISHED)
    parsed = pd.read_csv(io.StringIO(render(board, "csv")))
    assert len(parsed) == len(board.rows) and "sub_track1_rank" in parsed.columns
    counter = _TableCounter()
    counter.feed(render(board, "html"))
    assert counter.rows == len(board.rows) + 1 and len(set(counter.cells)) == 1
    latex = render(board, "latex")
    body = latex[latex.index(r"\midrule") : latex.index(r"\bottomrule")]
    lines = [line for line in body.splitlines() if line.endswith(r"\\")]
    assert len(lines) == len(board.rows)
    assert len({line.count("&") for line in lines}) == 1
    assert r"NJU\_Jet" in latex  # escaped for LaTeX
    markdown = render(board, "md")
    assert "| fast " in markdown and "27.11 (1)" in markdown and "279 of 280" in markdown
    with pytest.raises(HarnessError, match="--format"):
        render(board, "xlsx")


def test_pareto_front_keeps_points_nothing_beats() -> None:
    points = [(1.0, 29.0), (0.5, 28.9), (0.8, 29.1), (2.0, 29.05), (0.5, 28.8)]
    assert pareto_front(points) == [(0.5, 28.9), (0.8, 29.1)]


def test_plot_is_written(tmp_path: Path, val_run: Path) -> None:
    board = build_leaderboard([load_run(val_run)], published_dir=PUBLISHED)
    path = tmp_path / "plot.png"
    write_plot(board, path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000
    assert not list(tmp_path.glob(".plot.png.*"))  # no temporary left behind


def _run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="esr leaderboard")
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def test_command_prints_the_published_table_with_the_reproduction_check(capsys) -> None:
    assert _run_command(["--published"]) == 0
    out = capsys.readouterr().out
    assert "| published | ByteESR" in out
    assert "279 of 280 printed ranks" in out and "Alpan Team sub_track1_rank printed 10, computed 9" in out


def test_command_writes_files_atomically(tmp_path: Path, val_run: Path, capsys) -> None:
    out = tmp_path / "board.csv"
    plot = tmp_path / "board.png"
    assert _run_command([str(val_run), "--format", "csv", "--out", str(out), "--plot", str(plot)]) == 0
    assert pd.read_csv(out)["team"].iloc[0] == "fast"
    assert plot.stat().st_size > 0
    assert "note: measured" in capsys.readouterr().err


def test_command_without_input_is_an_error() -> None:
    with pytest.raises(HarnessError, match="nothing to show"):
        _run_command([])


def test_corrections_of_published_figures_are_shown_beside_the_printed_value() -> None:
    from harness.leaderboard import annotate_published

    board = build_leaderboard([], style="ntire2022", published_dir=PUBLISHED)
    text = "flops printed 9.50G, the organisers' counter gives 2.02G"
    annotated = annotate_published(board, [("XPixel", text)])
    row = annotated.rows[annotated.rows["team"] == "XPixel"].iloc[0]
    assert text in row["note"]
    assert (
        row["flops_g"] == board.rows[board.rows["team"] == "XPixel"].iloc[0]["flops_g"] == 9.50
    )  # as printed
    assert any(text in note for note in annotated.notes)
    others = annotated.rows[annotated.rows["team"] != "XPixel"]["note"].fillna("")
    assert not others.str.contains("2.02G").any()


def test_published_command_lists_the_xpixel_flops_disagreement(capsys) -> None:
    args = argparse.Namespace(
        runs=[], published=True, style="ntire2022", format="md", out=None, plot=None, width=120
    )
    assert command.run(args) == 0
    printed = capsys.readouterr().out
    assert "XPixel (official model 18): flops printed 9.50G, the organisers' counter gives 2.02G" in printed


# --- verdicts and intervals of newer runs; Markdown for a terminal ---------------------------------


def with_interval(record: dict[str, Any], low: float, high: float, *, valid: bool | None = True) -> dict:
    """A record as a newer run writes it: the runtime verdict carries the ratio's 95% interval."""
    verdict = {"name": "runtime", "value": record["runtime_ms"]["mean"] / 50.0, "interval": [low, high]}
    return {**record, "constraints": [verdict], "valid": valid}


def test_intervals_and_inconclusive_verdicts_of_a_newer_run_are_shown(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "new",
        [
            with_interval(result("fast", psnr=29.01, ms=25.0), 0.48, 0.52),
            with_interval(result("close", psnr=29.02, ms=49.0), 0.95, 1.01, valid=None),
            BASELINE,
        ],
    )
    board = build_leaderboard([load_run(run)])
    rows = board.rows.set_index("team")
    assert (rows.loc["fast", "time_ratio_low"], rows.loc["fast", "time_ratio_high"]) == (0.48, 0.52)
    assert rows.loc["fast", "valid"] is True
    # Nothing failed, but the run could not decide the runtime: never shown as valid.
    assert rows.loc["close", "valid"] == "inconclusive"
    assert pd.isna(rows.loc["imdn_baseline", "time_ratio_low"])  # no interval recorded: none shown
    shown = display_frame(board).set_index("Team")
    assert shown.loc["fast", "Time / IMDN"] == "0.500 [0.480, 0.520]"
    assert shown.loc["close", "Valid"] == "inconclusive"
    assert shown.loc["imdn_baseline", "Time / IMDN"] == "1.000"
    csv_rows = pd.read_csv(io.StringIO(render(board, "csv"))).set_index("team")
    assert csv_rows.loc["fast", "time_ratio_high"] == 0.52


def test_table2_shows_the_interval_of_each_split(tmp_path: Path) -> None:
    val = write_run(tmp_path / "val", [with_interval(result("fast", ms=25.0), 0.45, 0.55), BASELINE])
    test = write_run(
        tmp_path / "test",
        [with_interval(result("fast", ms=24.0), 0.40, 0.56), {**BASELINE, "psnr_rgb": 28.78}],
        dataset=DIV2K_TEST,
    )
    board = build_leaderboard([load_run(val), load_run(test)], style="table2")
    fast = display_frame(board).set_index("Team").loc["fast"]
    assert fast["Val Time / IMDN"] == "0.500 [0.450, 0.550]"
    assert fast["Test Time / IMDN"] == "0.480 [0.400, 0.560]"


def test_markdown_fits_120_columns_with_long_notes_as_footnotes(val_run: Path) -> None:
    board = build_leaderboard([load_run(val_run)], published_dir=PUBLISHED)
    text = render(board, "md")
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert max(len(line) for line in table_lines) <= 120
    # Every column group repeats Source and Team, and holds every row.
    headers = [line for line in table_lines if line.startswith("| Source")]
    assert len(headers) > 1 and all("| Team " in line for line in headers)
    assert sum(1 for line in table_lines if line.startswith("| measured ")) == 7 * len(headers)
    # The crashed submission's reason is printed once, under the tables, and marked in its row.
    reason = "failed: ValueError: output contains NaN"
    assert text.count(reason) == 1
    footnote = next(line for line in text.splitlines() if line.endswith(reason))
    mark = footnote.split()[0]
    crashed_row = next(
        line for line in table_lines if "| crashed " in line and "Note" not in line and mark in line
    )
    assert reason not in crashed_row
    assert text.index(footnote) > text.rindex("\n|")
    single = render(board, "md", width=0)
    assert sum(1 for line in single.splitlines() if line.startswith("| Source")) == 1


# --- the plot: labels that do not overlap, error bars ----------------------------------------------


def rendered_labels(figure) -> dict[str, list[tuple[str, Any]]]:
    """Each panel's point labels with the bounding boxes of their rendered text (leader lines excluded)."""
    from matplotlib.text import Annotation, Text

    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return {
        axes.get_title(): [
            (text.get_text(), Text.get_window_extent(text, renderer))
            for text in axes.texts
            if isinstance(text, Annotation)
        ]
        for axes in figure.axes
    }


def overlapping(labels: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    return [
        (a, b)
        for index, (a, box_a) in enumerate(labels)
        for b, box_b in labels[index + 1 :]
        if min(box_a.x1, box_b.x1) > max(box_a.x0, box_b.x0)
        and min(box_a.y1, box_b.y1) > max(box_a.y0, box_b.y0)
    ]


def test_labels_of_the_published_panel_do_not_overlap(val_run: Path) -> None:
    from harness.leaderboard.plot import draw_figure

    for runs in ([], [load_run(val_run)]):
        figure = draw_figure(build_leaderboard(runs, published_dir=PUBLISHED))
        panels = rendered_labels(figure)
        published = next(labels for title, labels in panels.items() if "div2k val" in title.lower())
        names = [name for name, _ in published]
        # The three labels that used to lie on top of each other are all there, apart.
        assert {"VMCL_Taobao", "Alpan Team", "Dragon"} <= set(names)
        assert len(names) >= 40
        for title, labels in panels.items():
            assert not overlapping(labels), title
            frame = next(axes for axes in figure.axes if axes.get_title() == title).get_window_extent()
            assert all(frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1) for _, box in labels)


def test_plot_draws_the_interval_of_a_measured_ratio_as_an_error_bar(tmp_path: Path) -> None:
    from matplotlib.container import ErrorbarContainer

    from harness.leaderboard.plot import draw_figure

    run = write_run(tmp_path / "new", [with_interval(result("fast", ms=25.0), 0.42, 0.61), BASELINE])
    figure = draw_figure(build_leaderboard([load_run(run)]))
    bars = [container for container in figure.axes[0].containers if isinstance(container, ErrorbarContainer)]
    assert len(bars) == 1
    (segments,) = bars[0].lines[2]
    ((x0, y0), (x1, y1)) = segments.get_segments()[0]
    assert (x0, x1) == pytest.approx((0.42, 0.61)) and y0 == y1 == pytest.approx(29.05)


def test_a_run_timed_on_cpu_time_is_marked_not_official(tmp_path: Path, val_run: Path) -> None:
    wall = build_leaderboard([load_run(val_run)])
    assert any("time = mean per image," in note for note in wall.notes)
    document = json.loads((val_run / "results.json").read_text())
    document["timing"]["clock"] = "cpu"
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "results.json").write_text(json.dumps(document))
    cpu = build_leaderboard([load_run(tmp_path / "cpu")])
    assert any(
        "time = mean CPU time per image (--clock cpu: not the protocol's clock, not official)" in note
        for note in cpu.notes
    )
