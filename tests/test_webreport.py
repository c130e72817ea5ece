"""`esr report`: the HTML page, its crops and tables, offline, and checked in a real (headless) browser."""

from __future__ import annotations

import html
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import Browser
from conftest import BLOTCH, SYNTHETIC_FAILURE, SYNTHETIC_IMAGES
from PIL import Image

from harness.commands import run as esr
from harness.errors import HarnessError
from harness.leaderboard import build_leaderboard, load_run
from harness.webreport.comparisons import choose_images
from harness.webreport.crops import Crop, enlarge, most_different_window, parse_crop

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published"

# --- crops ------------------------------------------------------------------------------------------


def test_the_automatic_crop_is_where_the_outputs_differ_most() -> None:
    hr = np.zeros((12, 16, 3), dtype=np.uint8)
    same = hr + 3  # both outputs are 3 levels off everywhere: no spread across outputs there
    other = same.copy()
    other[5:9, 10:14] = 60  # ...except this 4x4 block, where the second output is far off
    assert most_different_window(hr, [same, other], 4) == (10, 5, 4, 4)
    # The spread is measured, not the error: a block where both are equally wrong is not chosen.
    both_wrong = [same.copy(), other.copy()]
    for output in both_wrong:
        output[0:4, 0:4] = 200
    assert most_different_window(hr, both_wrong, 4) == (10, 5, 4, 4)
    # One output alone: the window of largest error; a window larger than the image is clipped.
    assert most_different_window(hr, [other], 4) == (10, 5, 4, 4)
    assert most_different_window(hr, [other], 64) == (0, 0, 16, 12)


def test_crops_are_parsed_checked_and_enlarged_pixel_by_pixel() -> None:
    crop = parse_crop("0801:120,64,96,80")
    assert crop == Crop("0801", 120, 64, 96, 80, by_hand=True)
    with pytest.raises(HarnessError, match="expected IMAGE:x,y,w,h"):
        parse_crop("0801:1,2,3")
    with pytest.raises(HarnessError, match="leaves the image, which is 200x100"):
        crop.check_inside(100, 200)
    with pytest.raises(HarnessError, match="at least 11x11"):
        Crop("a", 0, 0, 8, 40).check_inside(100, 100)
    tile = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    big = enlarge(tile, 3)
    assert (
        big.shape == (6, 6, 3) and (big[0:3, 3:6] == tile[0, 1]).all() and (big[3:6, 0:3] == tile[1, 0]).all()
    )


def test_images_compared_by_default_are_all_or_those_whose_psnr_varies_most() -> None:
    names = ["a", "b", "c", "d"]
    recorded = [{"a": 30.0, "b": 30.0, "c": 28.0, "d": 30.0}, {"a": 30.1, "b": 27.0, "c": 28.0, "d": 29.0}]
    assert choose_images(names, recorded, requested=[], limit=4) == names
    assert choose_images(names, recorded, requested=[], limit=2) == ["b", "d"]
    assert choose_images(names, recorded, requested=["c"], limit=2) == ["c"]
    with pytest.raises(HarnessError, match="--images e: no such image"):
        choose_images(names, recorded, requested=["e"], limit=2)


# --- the page -------------------------------------------------------------------------------------


def make_report(run_dir: Path, out: Path, *extra: str) -> tuple[int, str]:
    status = esr(["report", str(run_dir), "--out", str(out), "--crop-size", "32", *extra])
    return status, out.read_text(encoding="utf-8") if out.exists() else ""


def test_the_page_is_self_contained_with_every_section(synthetic_run: Path, tmp_path: Path, capsys) -> None:
    status, page = make_report(synthetic_run, tmp_path / "report.html")
    assert status == 0
    printed = capsys.readouterr().out
    assert "bundled MATLAB-exact bicubic" in printed and "3 comparison rows" in printed
    # Offline: every image is embedded, every link stays in the page; nothing is fetched.
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references and all(ref.startswith(("data:image/png;base64,", "#")) for ref in references)
    assert "http://" not in page and "https://" not in page
    # One comparison row per image: HR, bicubic (made for the report), then every submission that ran.
    rows = re.findall(r'<div class="comparison" data-image="([^"]+)">(.*?)</div>\n', page, re.S)
    assert [image for image, _ in rows] == list(SYNTHETIC_IMAGES)
    for _, row in rows:
        titles = re.findall(r"<figcaption>([^<]+)", row)[1:]
        assert titles == ["HR", "bicubic", "close", "blotched", "imdn_baseline"]
    # The automatic crop is the blotch: where the outputs differ most.
    x, y, side = BLOTCH
    assert page.count(f"crop x {x}, y {y}, {side}x{side}") == 3
    # The failed submission's long reason is a footnote, once; the inconclusive verdict is shown.
    assert page.count(html.escape(SYNTHETIC_FAILURE.strip())) == 1
    assert "INCONCLUSIVE 0.975 [0.900, 1.050]" in page
    # Provenance: versions, device, dataset hash, protocol and dates.
    run = json.loads((synthetic_run / "results.json").read_text())
    for fact in (
        run["dataset"]["content_sha256"],
        "esr-harness 0.1.0, git 0123456789ab",
        "gpu-test",
        "ntire2022 v1",
    ):
        assert fact in page
    assert page.count(" UTC") >= 2


def test_per_image_table_highlights_the_best_of_each_row(synthetic_run: Path, tmp_path: Path) -> None:
    _, page = make_report(synthetic_run, tmp_path / "report.html", "--no-comparisons")
    table = page[
        page.index('id="per-image-table"') : page.index("</table>", page.index('id="per-image-table"'))
    ]
    rows = re.findall(r"<tr class=\"\">(.*?)</tr>", table, re.S)
    assert len(rows) == 3
    close_psnr = 10 * math.log10(255**2 / 0.5)  # one level on half the pixels: MSE 0.5
    for row in rows:
        best = re.findall(r'<span class="best">([^<]+)</span>', row)
        assert best[0] == f"{close_psnr:.2f}"  # the checkerboard beats the baseline's +1 everywhere
        assert len(best) == 2  # the best PSNR and the best SSIM
    assert "Visual comparisons were not asked for" in page


def test_a_hand_crop_replaces_the_automatic_one(synthetic_run: Path, tmp_path: Path, capsys) -> None:
    _, page = make_report(
        synthetic_run, tmp_path / "report.html", "--crop", "img_002:4,60,24,20", "--images", "img_002"
    )
    assert "crop x 4, y 60, 24x20<br>chosen by hand" in page
    assert re.findall(r'data-image="([^"]+)"', page) == ["img_002"]
    status, _ = make_report(synthetic_run, tmp_path / "bad.html", "--crop", "img_001:90,0,20,20")
    assert status == 2 and not (tmp_path / "bad.html").exists()
    error = capsys.readouterr().err
    assert error == "esr: error: --crop img_001:90,0,20,20: leaves the image, which is 96x96 (HR pixels)\n"


def test_a_run_whose_images_are_gone_is_one_clear_line(synthetic_run: Path, tmp_path: Path, capsys) -> None:
    shutil.rmtree(synthetic_run.parent / "Tiny")
    status, _ = make_report(synthetic_run, tmp_path / "report.html")
    assert status == 2 and not (tmp_path / "report.html").exists()
    error = capsys.readouterr().err
    assert error.startswith("esr: error: ") and error.count("\n") == 1 and "give --data" in error


# --- in a real browser ----------------------------------------------------------------------------


def check_in_browser(
    binary: str, page: Path, rows: int, comparisons: int, screenshot: Path | None = None
) -> None:
    """The DOM has one leaderboard row per result, sorting works, every image decodes, nothing is fetched."""
    with Browser(binary) as browser:
        browser.open(page)
        assert browser.evaluate("document.querySelectorAll('#leaderboard-table tbody tr').length") == rows
        assert browser.evaluate("document.querySelectorAll('.comparison').length") == comparisons
        # Every image has decoded (a broken data URI would leave naturalWidth at 0).
        widths = browser.evaluate(
            "Array.from(document.images).map(image => image.complete && image.naturalWidth)"
        )
        assert len(widths) >= 1 + comparisons * 2 and all(width > 0 for width in widths)
        # Sort the PSNR column by clicking its header: ascending, then descending.
        column = browser.evaluate(
            "Array.from(document.querySelectorAll('#leaderboard-table thead th')).findIndex(th => th.textContent.startsWith('PSNR [dB]'))"
        )
        read = (
            f"Array.from(document.querySelectorAll('#leaderboard-table tbody tr'))"
            f".map(row => row.cells[{column}].dataset.sort).filter(v => v !== undefined).map(Number)"
        )
        before = browser.evaluate(read)
        browser.click(f"#leaderboard-table thead th:nth-child({column + 1})")
        ascending = browser.evaluate(read)
        assert ascending == sorted(before) and ascending != before
        browser.click(f"#leaderboard-table thead th:nth-child({column + 1})")
        assert browser.evaluate(read) == sorted(before, reverse=True)
        assert (
            browser.evaluate(
                f"document.querySelectorAll('#leaderboard-table thead th')[{column}].getAttribute('aria-sort')"
            )
            == "descending"
        )
        urls = browser.requested_urls()
        assert urls and all(url.startswith(("file:", "data:")) for url in urls), urls
        browser.evaluate("window.scrollTo(0, 0)")
        shot = browser.screenshot()
    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))
    assert image.shape[0] > 500 and image.shape[1] > 1000
    # Not blank: many colours, and text (dark pixels) on the light page.
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 100
    assert (image.mean(axis=2) < 100).mean() > 0.005
    if screenshot is not None:
        screenshot.write_bytes(shot)


def test_the_page_works_in_a_browser(synthetic_run: Path, tmp_path: Path, chromium: str) -> None:
    page = tmp_path / "report.html"
    assert make_report(synthetic_run, page)[0] == 0
    board = build_leaderboard([load_run(synthetic_run)], published_dir=PUBLISHED)
    check_in_browser(chromium, page, rows=len(board.rows), comparisons=len(SYNTHETIC_IMAGES))


def test_acceptance_set5_report_in_a_browser(set5_run: Path, tmp_path: Path, chromium: str, capsys) -> None:
    page = tmp_path / "set5.html"
    assert esr(["report", str(set5_run), "--out", str(page)]) == 0
    assert "ran the submissions again" not in capsys.readouterr().out  # the run saved its images
    html = page.read_text(encoding="utf-8")
    images = re.findall(r'<div class="comparison" data-image="([^"]+)">', html)
    assert images == ["img_001", "img_002", "img_003", "img_004", "img_005"]  # a row for every image
    assert html.count("<figcaption>clb_imdn<br>") == 5 and html.count("<figcaption>bicubic<br>") == 5
    board = build_leaderboard([load_run(set5_run)], published_dir=PUBLISHED)
    check_in_browser(chromium, page, rows=len(board.rows), comparisons=5, screenshot=tmp_path / "set5.png")


def test_outputs_missing_from_a_run_are_made_again_and_checked(
    set5_run: Path, tmp_path: Path, model_zoo_dir: Path, capsys
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(set5_run, copy, ignore=shutil.ignore_patterns("clb_imdn"))
    page = tmp_path / "report.html"
    argv = ["report", str(copy), "--out", str(page), "--images", "img_002", "--model-zoo", str(model_zoo_dir)]
    assert esr(argv) == 0
    printed = capsys.readouterr().out
    assert (
        "ran the submissions again on the images shown: clb_imdn (1 image); each agrees with the PSNR"
        in printed
    )
    assert "ran the submissions again" in page.read_text(encoding="utf-8")


def test_deployment_cells_appear_as_a_matrix_of_psnr_drop_and_ratio(
    synthetic_run: Path, tmp_path: Path
) -> None:
    status, page = make_report(synthetic_run, tmp_path / "plain.html")
    assert status == 0 and 'id="cells"' not in page  # no cells measured: no section
    results = synthetic_run / "results.json"
    run = json.loads(results.read_text())
    close = next(record for record in run["results"] if record["submission"] == "close")
    bf16 = {"psnr_rgb": 30.0, "psnr_y": 31.0, "ssim_rgb": 0.9, "ssim_y": 0.9, "runtime_ms": 0.6}
    bf16 |= {"drop": {"psnr_rgb": 0.0123, "psnr_y": 0.02, "ssim_rgb": 0.0, "ssim_y": 0.0}}
    bf16 |= {
        "runtime_ratio": 0.61,
        "runtime_interval": [0.58, 0.64],
        "passes_threshold": True,
        "reason": None,
    }
    fp16 = dict.fromkeys(bf16) | {"reason": "needs a GPU (the run was on a CPU)"}
    close["cells"] = {"bf16": bf16, "fp16": fp16}
    results.write_text(json.dumps(run))
    status, page = make_report(synthetic_run, tmp_path / "cells.html")
    assert status == 0 and 'id="cells"' in page and 'href="#cells"' in page
    table = page[page.index('id="cells"') : page.index('id="per-image"')]
    assert "+0.0123" in table  # the protocol's channel (RGB for ntire2022) is the drop shown
    assert "0.610 [0.580, 0.640]" in table
    assert "needs a GPU (the run was on a CPU)" in table


def test_rounds_until_decided_are_plotted_when_a_run_timed_them(synthetic_run: Path, tmp_path: Path) -> None:
    status, page = make_report(synthetic_run, tmp_path / "fixed.html")
    assert status == 0 and 'id="rounds"' not in page  # fixed rounds: no plot
    results = synthetic_run / "results.json"
    run = json.loads(results.read_text())
    close = next(record for record in run["results"] if record["submission"] == "close")
    close["rounds_until_decided"] = [
        {"rounds": 5, "ratio": 0.52, "interval": [0.40, 0.68], "stop": None},
        {"rounds": 6, "ratio": 0.51, "interval": [0.45, 0.58], "stop": "decided"},
    ]
    close |= {"rounds_used": 6, "stop_reason": "decided"}
    results.write_text(json.dumps(run))
    status, page = make_report(synthetic_run, tmp_path / "auto.html")
    section = page[page.index('id="rounds"') :]
    assert status == 0 and 'href="#rounds"' in page
    assert section.index('src="data:image/png;base64,') < section.index("</section>")


# --- esr compare documents --------------------------------------------------------------------------

COMPARE_DOCUMENT = {
    "reference": "known_cost",
    "resolution": 0.01,
    "compared": [
        {
            "submission": "known_cost_plus2",
            "decision": "slower",
            "ratio": 1.0213,
            "interval": [1.0102, 1.0325],
            "rounds_used": 9,
            "stop_reason": "decided",
        },
        {
            "submission": "known_cost_copy",
            "decision": "equivalent",
            "ratio": 1.001,
            "interval": [0.995, 1.007],
            "rounds_used": 12,
            "stop_reason": "resolution",
        },
        {
            "submission": "broken",
            "decision": "undecided",
            "ratio": None,
            "interval": None,
            "rounds_used": None,
            "stop_reason": None,
        },
    ],
}


def _rows(page: str, table_id: str) -> list[list[str]]:
    """The text of every body cell of one table, row by row."""
    start = page.index(f'id="{table_id}"')
    body = page[page.index("<tbody>", start) : page.index("</tbody>", start)]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [[html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


def test_an_esr_compare_document_is_a_section_of_decision_rows(tmp_path: Path) -> None:
    document = tmp_path / "compare.json"
    document.write_text(json.dumps(COMPARE_DOCUMENT))
    out = tmp_path / "compare.html"
    assert esr(["report", "--compare", str(document), "--out", str(out), "--no-published"]) == 0
    page = out.read_text(encoding="utf-8")
    assert 'href="#runtime-comparisons"' in page
    assert 'id="leaderboard"' not in page and 'id="per-image"' not in page  # no run: nothing to rank
    source = str(document)
    assert _rows(page, "runtime-comparisons-table") == [
        [
            "known_cost_plus2",
            "known_cost",
            "1.0213",
            "[1.0102, 1.0325]",
            "slower",
            "9 (decided)",
            "±1.0%",
            source,
        ],
        [
            "known_cost_copy",
            "known_cost",
            "1.0010",
            "[0.9950, 1.0070]",
            "equivalent",
            "12 (resolution)",
            "±1.0%",
            source,
        ],
        ["broken", "known_cost", "-", "-", "undecided", "-", "±1.0%", source],
    ]
    assert '<td class="slower">slower</td>' in page and '<td class="equivalent">equivalent</td>' in page


def test_a_run_report_has_no_comparison_section_unless_given_one(synthetic_run: Path, tmp_path: Path) -> None:
    status, page = make_report(synthetic_run, tmp_path / "run.html", "--no-comparisons")
    assert status == 0 and "runtime-comparisons" not in page
    document = tmp_path / "compare.json"
    document.write_text(json.dumps(COMPARE_DOCUMENT))
    status, page = make_report(
        synthetic_run, tmp_path / "both.html", "--no-comparisons", "--compare", str(document)
    )
    assert status == 0 and len(_rows(page, "runtime-comparisons-table")) == 3
    assert len(_rows(page, "per-image-table")) == 3  # the run's own sections are still there


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"compared": []}, "compared: must be a non-empty list, got []"),
        ({"resolution": "1%"}, "resolution: must be a number, got '1%'"),
        (
            {"compared": [{**COMPARE_DOCUMENT["compared"][0], "decision": "quicker"}]},
            "compared[0].decision: must be one of faster, slower, equivalent, undecided, got 'quicker'",
        ),
        (
            {"compared": [{**COMPARE_DOCUMENT["compared"][0], "interval": [1.1, 1.0]}]},
            "compared[0].interval: low 1.1 is over high 1.0",
        ),
    ],
)
def test_a_bad_compare_document_is_one_line_naming_the_field(tmp_path: Path, capsys, change, message) -> None:
    document = tmp_path / "compare.json"
    document.write_text(json.dumps(COMPARE_DOCUMENT | change))
    out = tmp_path / "bad.html"
    assert esr(["report", "--compare", str(document), "--out", str(out)]) == 2 and not out.exists()
    assert capsys.readouterr().err == f"esr: error: {document}: {message}\n"


def test_a_report_of_nothing_is_refused(tmp_path: Path, capsys) -> None:
    assert esr(["report", "--out", str(tmp_path / "empty.html")]) == 2
    assert "give run directories or JSON files, or --compare JSON" in capsys.readouterr().err
