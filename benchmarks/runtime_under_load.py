"""Robustness of the runtime verdict: the same evaluation, several times, under an intermittent load.

Starts ``benchmarks/load.py`` (3 s of a one-core busy loop, 3 s of sleep), runs
``esr evaluate SUBMISSION --data samples --device cpu --force`` N times while it runs, and prints each
run's runtime ratio to the baseline with its 95% interval, verdict, the rounds it used and why it
stopped (``--rounds auto`` is the default), then how far the ratios lie from their median. The target: every ratio within +-5% of the median, and one verdict for all runs
(or inconclusive for all).

    ESR_MODEL_ZOO=../shared/model_zoo .venv/bin/python benchmarks/runtime_under_load.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _record(results: Path, submission: str) -> dict:
    document = json.loads(results.read_text(encoding="utf-8"))
    record = next(r for r in document["results"] if r["submission"] == submission)
    if record["status"] != "ok":
        raise SystemExit(f"{submission} failed: {record['error']}")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="evaluations (default 5)")
    parser.add_argument("--submission", default="clb_imdn", help="submission (default clb_imdn)")
    parser.add_argument("--no-load", action="store_true", help="run without the load generator")
    parser.add_argument(
        "--keep", type=Path, help="keep each run's folder under this one (default: discarded)"
    )
    parser.add_argument("extra", nargs="*", help="more `esr evaluate` arguments, after --")
    args = parser.parse_args()
    load = None
    if not args.no_load:
        load = subprocess.Popen([sys.executable, str(HERE / "load.py"), "--seconds", "7200"])
    ratios: list[float] = []
    verdicts: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="esr-under-load-") as scratch:
            for run in range(1, args.runs + 1):
                out = (args.keep or Path(scratch)) / f"run{run}"
                command = [sys.executable, "-m", "harness.cli", "evaluate", args.submission]
                command += ["--data", "samples", "--device", "cpu"]
                command += [
                    "--force",
                    "--quiet",
                    "--out",
                    str(out),
                    "--cache-dir",
                    str(Path(scratch) / "cache"),
                ]
                started = time.monotonic()
                subprocess.run(command + args.extra, check=False, stdout=subprocess.DEVNULL)
                seconds = time.monotonic() - started
                record = _record(out / "results.json", args.submission)
                runtime = next(c for c in record["constraints"] if c["name"] == "runtime")
                ratios.append(runtime["value"])
                verdicts.append(runtime["verdict"])
                low, high = runtime["interval"] or (None, None)
                interval = f"[{low:.3f}, {high:.3f}]" if low is not None else "-"
                print(
                    f"run {run}: ratio {runtime['value']:.3f}, 95% interval {interval}, "
                    f"verdict {runtime['verdict']}, rounds {record.get('rounds_used')} "
                    f"({record.get('stop_reason') or 'fixed'}), {seconds:.0f} s"
                )
                sys.stdout.flush()
    finally:
        if load is not None:
            load.terminate()
            load.wait()
    median = statistics.median(ratios)
    spread = max(abs(r / median - 1) for r in ratios)
    print(f"median ratio {median:.3f}; largest distance from it {spread:.1%} (target: within 5%)")
    print(f"verdicts: {', '.join(sorted(set(verdicts)))} (target: one verdict in every run)")


if __name__ == "__main__":
    main()
