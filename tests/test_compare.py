"""`esr compare`'s decision from fixed intervals, and its reading of a record."""

from __future__ import annotations

import json
import math

import pytest

from harness.comparison import compare_record, decide, load_comparisons


@pytest.mark.parametrize(
    ("interval", "decision"),
    [
        ((0.90, 0.95), "faster"),
        ((1.05, 1.10), "slower"),
        ((0.995, 1.008), "equivalent"),
        ((0.991, 0.998), "equivalent"),  # under 1, but by less than the 1% asked for
        ((0.985, 0.998), "faster"),
        ((1.002, 1.02), "slower"),
        ((0.98, 1.02), "undecided"),
        (None, "undecided"),
    ],
)
def test_decision_at_1_percent(interval, decision) -> None:
    assert decide(interval, 0.01) == decision


def test_equivalence_band_is_symmetric_on_the_log_scale() -> None:
    assert decide((1 / 1.01, 1.01), 0.01) == "equivalent"
    assert decide((1 / 1.0101, 1.0), 0.01) == "undecided"


def _record(**extra) -> dict:
    return {"submission": "b", "status": "ok", "pairing": {"round_ratios": [1.1, 1.2, 1.15]}, **extra}


def test_a_record_of_auto_rounds_uses_its_last_sequential_interval() -> None:
    looks = [{"rounds": 5, "ratio": 1.03, "interval": [1.02, 1.04], "stop": "decided"}]
    result = compare_record(_record(rounds_until_decided=looks, rounds_used=5, stop_reason="decided"), 0.01)
    assert result.round_ratios == (1.1, 1.2, 1.15)  # the record's, kept for whoever studies the rounds
    assert (result.decision, result.ratio, result.interval) == ("slower", 1.03, (1.02, 1.04))
    assert result.as_dict()["interval"] == [1.02, 1.04] and result.rounds_used == 5


def test_a_record_of_fixed_rounds_uses_the_t_interval() -> None:
    result = compare_record(_record(rounds_until_decided=[]), 0.01)
    logs = [math.log(r) for r in (1.1, 1.2, 1.15)]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # Student's t, 2 degrees of freedom, 97.5%
    assert result.ratio == pytest.approx(math.exp(mean))
    assert result.interval == pytest.approx((math.exp(mean - half), math.exp(mean + half)))
    assert result.decision == "slower"


def test_a_failed_record_is_undecided() -> None:
    result = compare_record({"submission": "b", "status": "error", "pairing": None}, 0.01)
    assert result.decision == "undecided" and result.ratio is None


def test_a_compare_document_reads_back_as_written(tmp_path) -> None:
    written = {
        "reference": "a",
        "resolution": 0.02,
        "compared": [
            {
                "submission": "b",
                "decision": "faster",
                "ratio": 0.9,
                "interval": [0.85, 0.95],
                "rounds_used": 5,
                "stop_reason": "decided",
                "round_ratios": [0.9, 0.88, 0.92, 0.91, 0.89],
            }
        ],
    }
    path = tmp_path / "compare.json"
    path.write_text(json.dumps(written))
    document = load_comparisons(path)
    assert document.compared[0].interval == (0.85, 0.95) and document.compared[0].decision == "faster"
    assert document.as_dict() == written
